// The screens before the messenger: sign in, register, verify, password
// reset, account renewal, external invitation, and the first-run setup.

import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, deviceName, Me } from '../api';
import { Lang, lang, setLang, t } from '../i18n';
import { errorText } from '../store';
import { ErrorBox, Field } from './common';
import { useLang, useNodeName } from './hooks';
import { navigate, route } from './router';

export function switchLang(l: Lang): void {
  localStorage.setItem('relais.lang', l);
  setLang(l);
}

function LangSwitch(): JSX.Element {
  const other: Lang = lang() === 'fr' ? 'en' : 'fr';
  return (
    <button type="button" class="link-btn lang-switch" lang={other} onClick={() => switchLang(other)}>
      {t('lang.switch')}
    </button>
  );
}

function Card({ title, lead, children }: { title: string; lead?: string; children: ComponentChildren }): JSX.Element {
  useLang();
  const name = useNodeName();
  return (
    <div class="auth">
      <main class="auth-card">
        <div class="brand">
          <img src="/icon.svg" alt="" width={40} height={40} />
          <span>{name}</span>
          <LangSwitch />
        </div>
        <h1>{title}</h1>
        {lead && <p class="lead">{lead}</p>}
        {children}
      </main>
    </div>
  );
}

function useDomains(): string[] {
  const [d, setD] = useState<string[]>([]);
  useEffect(() => {
    api.config().then((c) => setD(c.domains ?? []), () => {});
  }, []);
  return d;
}

function domainList(ds: string[]): string {
  return ds.map((d) => '@' + d).join(', ');
}

function Notice({ text }: { text: string }): JSX.Element | null {
  if (!text) return null;
  return (
    <p class="notice" role="status">
      {text}
    </p>
  );
}

function Link({ to, children }: { to: string; children: ComponentChildren }): JSX.Element {
  return (
    <a
      href={to}
      onClick={(e) => {
        e.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}

function useForm(): [boolean, string, (f: () => Promise<void>, params?: Record<string, string>) => Promise<void>, (s: string) => void] {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState('');
  const run = async (f: () => Promise<void>, params: Record<string, string> = {}) => {
    setBusy(true);
    setErr('');
    try {
      await f();
    } catch (e) {
      setErr(errorText(e, params));
    } finally {
      setBusy(false);
    }
  };
  return [busy, err, run, setErr];
}

export function Login({ onSignedIn, notice = '' }: { onSignedIn: (me: Me) => void; notice?: string }): JSX.Element {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, err, run] = useForm();
  return (
    <Card title={t('auth.signInTitle')} lead={t('auth.signInLead')}>
      <Notice text={notice} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => onSignedIn(await api.login(email.trim(), password, deviceName())));
        }}
      >
        <Field id="login-email" label={t('auth.email')}>
          <input id="login-email" name="email" type="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </Field>
        <Field id="login-password" label={t('auth.password')}>
          <input id="login-password" name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </Field>
        <ErrorBox text={err} />
        <button class="primary" type="submit" disabled={busy}>
          {t('auth.signIn')}
        </button>
      </form>
      <p class="alt">
        {t('auth.noAccount')} <Link to="/register">{t('auth.register')}</Link>
      </p>
      <p class="alt">
        <Link to="/forgot">{t('auth.forgot')}</Link>
      </p>
    </Card>
  );
}

export function Register(): JSX.Element {
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [status, setStatus] = useState('');
  const [code, setCode] = useState('');
  const [done, setDone] = useState('');
  const [busy, err, run] = useForm();
  const domains = useDomains();
  const [lastErr, setLastErr] = useState<unknown>(null);
  useLang();
  if (status === 'pending_approval') {
    return (
      <Card title={t('auth.pendingTitle')}>
        <p class="lead" role="status">
          {t('auth.pendingBody')}
        </p>
        <p class="alt">
          <Link to="/login">{t('auth.signIn')}</Link>
        </p>
      </Card>
    );
  }
  if (status === 'verification_sent') {
    return (
      <Card title={t('auth.verifyTitle')} lead={t('auth.verifyBody', { email })}>
        <Notice text={done} />
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              await api.verifyCode(email, code.replace(/[\s-]/g, ''), password);
              setDone(t('auth.verified'));
              navigate('/login?verified=1');
            });
          }}
        >
          <Field id="verify-code" label={t('auth.code')}>
            <input id="verify-code" inputMode="numeric" autoComplete="one-time-code" pattern="[0-9 \-]{10,14}" maxLength={14} required value={code} onInput={(e) => setCode(e.currentTarget.value)} />
          </Field>
          <ErrorBox text={err} />
          <button class="primary" type="submit" disabled={busy}>
            {t('auth.verify')}
          </button>
        </form>
      </Card>
    );
  }
  // The error is rendered from the code at each render, so that switching
  // the language translates it.
  const shown = lastErr ? errorText(lastErr, { domains: domainList(domains) }) : err;
  return (
    <Card title={t('auth.registerTitle')} lead={domains.length ? t('auth.registerLead', { domains: domainList(domains) }) : undefined}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setLastErr(null);
          void run(async () => {
            try {
              const res = await api.register(email.trim(), password, name.trim() || undefined);
              setStatus(res.status);
            } catch (e) {
              setLastErr(e);
            }
          });
        }}
      >
        <Field id="reg-email" label={t('auth.email')}>
          <input id="reg-email" name="email" type="email" autoComplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </Field>
        <Field id="reg-name" label={t('auth.displayName')} hint={t('auth.displayNameHint')}>
          <input id="reg-name" name="name" autoComplete="name" maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} aria-describedby="reg-name-hint" />
        </Field>
        <Field id="reg-password" label={t('auth.password')} hint={t('auth.passwordHint')}>
          <input id="reg-password" name="password" type="password" autoComplete="new-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} aria-describedby="reg-password-hint" />
        </Field>
        <ErrorBox text={shown} />
        <button class="primary" type="submit" disabled={busy}>
          {t('auth.register')}
        </button>
      </form>
      <p class="alt">
        {t('auth.haveAccount')} <Link to="/login">{t('auth.signIn')}</Link>
      </p>
    </Card>
  );
}

/** TokenAction runs a one-time link (renewal) as the page opens. */
function TokenAction({ title, working, ok, action }: { title: string; working: string; ok: string; action: (token: string) => Promise<unknown> }): JSX.Element {
  const [state, setState] = useState<'busy' | 'ok' | 'err'>('busy');
  const [err, setErr] = useState('');
  useEffect(() => {
    action(route().query.get('token') ?? '').then(
      () => setState('ok'),
      (e) => {
        setErr(errorText(e));
        setState('err');
      },
    );
  }, []);
  return (
    <Card title={title}>
      {state === 'busy' && <p role="status">{working}</p>}
      {state === 'ok' && <Notice text={ok} />}
      <ErrorBox text={err} />
      <p class="alt">
        <Link to="/login">{t('auth.signIn')}</Link>
      </p>
    </Card>
  );
}

/**
 * LinkPassword is the page of a one-time link that needs a password as
 * well: a registration's (verify) or a new one (reset).
 */
function LinkPassword(props: {
  title: string;
  lead?: string;
  id: string;
  label: string;
  hint: string;
  autoComplete: string;
  submit: string;
  ok: string;
  action: (token: string, password: string) => Promise<unknown>;
}): JSX.Element {
  const [password, setPassword] = useState('');
  const [done, setDone] = useState(false);
  const [busy, err, run] = useForm();
  useLang();
  return (
    <Card title={props.title} lead={done ? undefined : props.lead}>
      {done ? (
        <Notice text={props.ok} />
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              await props.action(route().query.get('token') ?? '', password);
              setDone(true);
            });
          }}
        >
          <Field id={props.id} label={props.label} hint={props.hint}>
            <input id={props.id} type="password" autoComplete={props.autoComplete} required value={password} onInput={(e) => setPassword(e.currentTarget.value)} aria-describedby={props.id + '-hint'} />
          </Field>
          <ErrorBox text={err} />
          <button class="primary" type="submit" disabled={busy}>
            {props.submit}
          </button>
        </form>
      )}
      <p class="alt">
        <Link to="/login">{t('auth.signIn')}</Link>
      </p>
    </Card>
  );
}

/**
 * Verify completes a registration from the mail's link. The link alone
 * proves the address, not who registered: the registration's password is
 * asked too, so that following the mail of a registration someone else
 * made in your name activates nothing.
 */
export function Verify(): JSX.Element {
  return (
    <LinkPassword
      title={t('auth.verifyTitle')}
      lead={t('auth.verifyPasswordLead')}
      id="verify-password"
      label={t('auth.password')}
      hint={t('auth.verifyPasswordHint')}
      autoComplete="current-password"
      submit={t('auth.verify')}
      ok={t('auth.verified')}
      action={(tok, pw) => api.verifyToken(tok, pw)}
    />
  );
}

export function Renew(): JSX.Element {
  return <TokenAction title={t('auth.renewTitle')} working={t('common.loading')} ok={t('auth.renewed')} action={(tok) => api.renew(tok)} />;
}

export function Forgot(): JSX.Element {
  const [email, setEmail] = useState('');
  const [sent, setSent] = useState(false);
  // A node without a mail relay cannot send a link: only an administrator
  // can reset the password, and the page says so instead of offering a form.
  const [noMail, setNoMail] = useState(false);
  const [busy, err, run] = useForm();
  useEffect(() => {
    api.config().then((c) => setNoMail(!c.mail), () => {});
  }, []);
  return (
    <Card title={t('auth.resetTitle')}>
      {noMail ? (
        <Notice text={t('auth.resetNoMail')} />
      ) : sent ? (
        <Notice text={t('auth.resetSent')} />
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              await api.requestReset(email.trim());
              setSent(true);
            });
          }}
        >
          <Field id="forgot-email" label={t('auth.email')}>
            <input id="forgot-email" type="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          </Field>
          <ErrorBox text={err} />
          <button class="primary" type="submit" disabled={busy}>
            {t('auth.resetRequest')}
          </button>
        </form>
      )}
      <p class="alt">
        <Link to="/login">{t('auth.signIn')}</Link>
      </p>
    </Card>
  );
}

export function Reset(): JSX.Element {
  return (
    <LinkPassword
      title={t('auth.resetTitle')}
      id="reset-password"
      label={t('auth.newPassword')}
      hint={t('auth.passwordHint')}
      autoComplete="new-password"
      submit={t('common.save')}
      ok={t('auth.resetDone')}
      action={(tok, pw) => api.confirmReset(tok, pw)}
    />
  );
}

export function Invite({ onSignedIn }: { onSignedIn: (me: Me) => void }): JSX.Element {
  const token = route().query.get('token') ?? '';
  const [info, setInfo] = useState<{ room_name: string; by: string; name: string } | null>(null);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [busy, err, run, setErr] = useForm();
  useEffect(() => {
    api.invitation(token).then(
      (i) => {
        setInfo(i);
        setName(i.name);
      },
      (e) => setErr(errorText(e)),
    );
  }, []);
  return (
    <Card title={t('auth.inviteTitle')} lead={info ? t('auth.inviteBody', { by: info.by, room: info.room_name }) : undefined}>
      {info && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => onSignedIn(await api.acceptInvitation(token, password, name.trim() || undefined)));
          }}
        >
          <Field id="inv-name" label={t('profile.name')}>
            <input id="inv-name" maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </Field>
          <Field id="inv-password" label={t('auth.password')} hint={t('auth.passwordHint')}>
            <input id="inv-password" type="password" autoComplete="new-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          </Field>
          <ErrorBox text={err} />
          <button class="primary" type="submit" disabled={busy}>
            {t('auth.inviteAccept')}
          </button>
        </form>
      )}
      {!info && <ErrorBox text={err} />}
    </Card>
  );
}

export function Setup(): JSX.Element {
  const token = route().query.get('token') ?? '';
  const [status, setStatus] = useState<{ needed: boolean; domains: string[]; ca_fingerprint?: string } | null>(null);
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [domains, setDomains] = useState('');
  const [done, setDone] = useState(false);
  const [busy, err, run, setErr] = useForm();
  useEffect(() => {
    api.setupStatus().then(
      (s) => {
        setStatus(s);
        setDomains((s.domains ?? []).join(', '));
      },
      (e) => setErr(errorText(e)),
    );
  }, []);
  if (done || (status && !status.needed)) {
    return (
      <Card title={t('setup.title')}>
        <Notice text={done ? t('setup.done') : t('setup.notNeeded')} />
        <p class="alt">
          <Link to="/login">{t('auth.signIn')}</Link>
        </p>
      </Card>
    );
  }
  return (
    <Card title={t('setup.title')} lead={t('setup.lead')}>
      {status?.ca_fingerprint && (
        <div class="fingerprint">
          <p>{t('setup.fingerprint')}</p>
          <code>{status.ca_fingerprint}</code>
        </div>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const ds = domains
            .split(/[\s,;]+/)
            .map((d) => d.trim().replace(/^@/, ''))
            .filter(Boolean);
          void run(
            async () => {
              await api.setup({ token, email: email.trim(), password, display_name: name.trim() || undefined, domains: ds.length ? ds : undefined });
              setDone(true);
            },
            { domains: domainList(ds) },
          );
        }}
      >
        <Field id="setup-domains" label={t('setup.domains')}>
          <input id="setup-domains" required value={domains} onInput={(e) => setDomains(e.currentTarget.value)} />
        </Field>
        <Field id="setup-email" label={t('auth.email')}>
          <input id="setup-email" type="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </Field>
        <Field id="setup-name" label={t('auth.displayName')}>
          <input id="setup-name" maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field id="setup-password" label={t('auth.password')} hint={t('auth.passwordHint')}>
          <input id="setup-password" type="password" autoComplete="new-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </Field>
        <ErrorBox text={err} />
        <button class="primary" type="submit" disabled={busy || !token}>
          {t('setup.submit')}
        </button>
      </form>
    </Card>
  );
}

export { ApiError };
