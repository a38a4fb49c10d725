// The admin page (administrators only; the node refuses every admin
// endpoint to anyone else): the node's state and a live chart of its
// activity, accounts, allowed domains, rooms, and the audit log with its
// filters and CSV export. Each tab is a route: /admin, /admin/users, …

import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { admin, AdminRoom, AdminUser, AuditEntry, AuditFilter, bucket, growth, Invitation, linePath, niceMax, Overview, peak, Series, UserAction } from '../admin';
import { formatDateTime, formatSize, has, MessageKey, t } from '../i18n';
import { errorText } from '../store';
import { ErrorBox, ExtBadge, Field, PaneHeader } from './common';
import { useLang } from './hooks';
import { navigate } from './router';

const tabs = ['overview', 'users', 'domains', 'rooms', 'audit'] as const;
type Tab = (typeof tabs)[number];

const when = (s?: string) => (s ? formatDateTime(Date.parse(s)) : '');

/** usePoll calls load now and every `every` ms while the component lives. */
function usePoll<T>(load: () => Promise<T>, every: number, deps: unknown[]): [T | null, string, () => void] {
  const [v, setV] = useState<T | null>(null);
  const [err, setErr] = useState('');
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    const run = () =>
      load().then(
        (r) => {
          if (live) {
            setV(r);
            setErr('');
          }
        },
        (e) => live && setErr(errorText(e)),
      );
    void run();
    const timer = every > 0 ? setInterval(run, every) : 0;
    return () => {
      live = false;
      if (timer) clearInterval(timer);
    };
  }, [...deps, n]);
  return [v, err, () => setN((x) => x + 1)];
}

export function AdminView({ tab }: { tab?: string }): JSX.Element {
  useLang();
  const current: Tab = (tabs as readonly string[]).includes(tab ?? '') ? (tab as Tab) : 'overview';
  let body: JSX.Element;
  switch (current) {
    case 'users':
      body = <UsersTab />;
      break;
    case 'domains':
      body = <DomainsTab />;
      break;
    case 'rooms':
      body = <RoomsTab />;
      break;
    case 'audit':
      body = <AuditTab />;
      break;
    default:
      body = <OverviewTab />;
  }
  return (
    <section class="panel admin" data-tab={current}>
      <PaneHeader title={t('admin.title')} onBack={() => navigate('/')} />
      <nav class="segmented admin-tabs" aria-label={t('admin.title')}>
        {tabs.map((k) => (
          <button key={k} id={'admin-tab-' + k} class={k === current ? 'on' : ''} aria-current={k === current ? 'page' : undefined} onClick={() => navigate(k === 'overview' ? '/admin' : '/admin/' + k, true)}>
            {t(('admin.tab.' + k) as MessageKey)}
          </button>
        ))}
      </nav>
      <div class="panel-body admin-body">{body}</div>
    </section>
  );
}

// ---- Overview -------------------------------------------------------------

function Chart({ id, label, values, unit }: { id: string; label: string; values: number[]; unit: string }): JSX.Element {
  const w = 320;
  const h = 90;
  const top = niceMax(Math.max(0, ...values));
  const d = linePath(values, w, h, top);
  const total = values.reduce((a, b) => a + b, 0);
  return (
    <figure class="chart" id={id} data-total={total} data-last={values[values.length - 1] ?? 0}>
      <figcaption>
        <span>{label}</span>
        <span class="muted">{t('admin.chartMax', { max: top + unit })}</span>
      </figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" role="img" aria-label={label}>
        <line x1="0" y1={h - 0.5} x2={w} y2={h - 0.5} class="axis" />
        <line x1="0" y1="0.5" x2={w} y2="0.5" class="grid" />
        {d && <path d={d + ` L${w} ${h} L0 ${h} Z`} class="area" />}
        {d && <path d={d} class="line" />}
      </svg>
    </figure>
  );
}

function Activity(): JSX.Element {
  const [range, setRange] = useState<'hour' | 'day'>('hour');
  const [s, err] = usePoll<Series>(() => admin.series(range === 'hour' ? 60 : 1440), 3000, [range]);
  // The day is drawn in groups of 15 minutes: messages averaged per
  // minute, connections at their peak.
  const group = range === 'hour' ? 1 : 15;
  const msgs = s ? bucket(s.msgs, group).map((v) => Math.round((v / group) * 10) / 10) : [];
  const conns = s ? peak(s.conns, group) : [];
  return (
    <div class="admin-card" id="admin-activity">
      <h3>{t('admin.activity')}</h3>
      <div class="segmented" role="group" aria-label={t('admin.activity')}>
        {(['hour', 'day'] as const).map((r) => (
          <button key={r} id={'admin-range-' + r} class={r === range ? 'on' : ''} aria-pressed={r === range} onClick={() => setRange(r)}>
            {t(r === 'hour' ? 'admin.hour' : 'admin.day')}
          </button>
        ))}
      </div>
      <ErrorBox text={err} />
      {s && (
        <>
          <p class="muted" id="admin-now">
            {t('admin.now', { conns: s.conns[s.conns.length - 1] ?? 0, msgs: s.msgs[s.msgs.length - 1] ?? 0 })}
          </p>
          <Chart id="chart-conns" label={t('admin.conns')} values={conns} unit="" />
          <Chart id="chart-msgs" label={t('admin.msgsPerMin')} values={msgs} unit="" />
        </>
      )}
    </div>
  );
}

function daysLeft(iso: string): number {
  return Math.floor((Date.parse(iso) - Date.now()) / 86400e3);
}

function uptime(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? t('admin.uptimeDays', { d, h }) : h > 0 ? `${h} h ${m} min` : `${m} min`;
}

/** Federation lists what the node's health reports under "federation". */
function Federation({ value }: { value: unknown }): JSX.Element {
  const rows: [string, string][] = [];
  const show = (v: unknown) => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v));
  if (Array.isArray(value)) value.forEach((v, i) => rows.push([String(i + 1), show(v)]));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) rows.push([k, show(v)]);
  else rows.push(['', show(value)]);
  return (
    <div class="admin-card" id="admin-federation">
      <h3>{t('admin.federation')}</h3>
      <dl class="admin-dl">
        {rows.map(([k, v]) => (
          <>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </>
        ))}
      </dl>
    </div>
  );
}

function OverviewTab(): JSX.Element {
  const [o, err] = usePoll<Overview>(() => admin.overview(), 30000, []);
  const [day, setDay] = useState<Series | null>(null);
  useEffect(() => {
    admin.series(1440).then(setDay, () => setDay(null));
  }, []);
  const tls = o?.health.tls;
  const av = o?.antivirus;
  return (
    <>
      <Activity />
      <ErrorBox text={err} />
      {o && (
        <>
          <div class="admin-card" id="admin-disk">
            <h3>{t('admin.disk')}</h3>
            <p>{t('admin.diskStore', { size: formatSize(o.disk.store) })}</p>
            <p>{t('admin.diskMedia', { size: formatSize(o.disk.media) })}</p>
            {o.disk.total > 0 && <p>{t('admin.diskFree', { free: formatSize(o.disk.free), total: formatSize(o.disk.total) })}</p>}
            {day && <p class="muted">{t('admin.growth', { hour: formatSize(Math.max(0, growth(day.disk, 60))), day: formatSize(Math.max(0, growth(day.disk, 1440))) })}</p>}
          </div>
          <div class="admin-card" id="admin-cert">
            <h3>{t('admin.cert')}</h3>
            {!tls || tls.mode === 'off' ? (
              <p>{t('admin.certNone')}</p>
            ) : (
              <>
                <p>{t('admin.certMode', { mode: tls.mode })}</p>
                {tls.names && <p class="muted">{tls.names.join(', ')}</p>}
                {tls.not_after && <p>{t('admin.certExpires', { date: when(tls.not_after), days: daysLeft(tls.not_after) })}</p>}
                {tls.not_after && daysLeft(tls.not_after) < 14 && <p class="error">{t('admin.certSoon', { days: daysLeft(tls.not_after) })}</p>}
                {tls.temporary && <p class="error">{t('admin.certTemporary')}</p>}
                {tls.last_error && <p class="error">{tls.last_error}</p>}
              </>
            )}
          </div>
          <div class="admin-card" id="admin-av">
            <h3>{t('admin.av')}</h3>
            {!av || !av.clamd ? (
              <p>{t('admin.avPolicy')}</p>
            ) : av.up ? (
              <p>{t('admin.avUp', { addr: av.clamd, version: av.version ?? '' })}</p>
            ) : (
              <p class="error">{t('admin.avDown', { addr: av.clamd, error: av.error ?? '' })}</p>
            )}
            {av && <p class="muted">{t('admin.avPending', { count: av.pending })}</p>}
          </div>
          <div class="admin-card" id="admin-node">
            <h3>{t('admin.node')}</h3>
            <p>{t('admin.version', { version: String(o.health.version ?? ''), uptime: uptime(Number(o.health.uptime_s ?? 0)) })}</p>
          </div>
          {o.health.federation !== undefined && o.health.federation !== null && <Federation value={o.health.federation} />}
        </>
      )}
    </>
  );
}

// ---- Users ----------------------------------------------------------------

type UserFilter = 'all' | 'pending' | 'external' | 'admin';

/** maxShown bounds the accounts listed at once; the search finds the others. */
const maxShown = 200;

function UserRow({ u, onDone }: { u: AdminUser; onDone: () => void }): JSX.Element {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState('');
  const [note, setNote] = useState('');
  const [link, setLink] = useState('');
  const act = (f: () => Promise<unknown>) => {
    setBusy(true);
    setErr('');
    setNote('');
    setLink('');
    f().then(
      () => onDone(),
      (e) => setErr(errorText(e)),
    ).finally(() => setBusy(false));
  };
  const user = (a: UserAction) => act(() => admin.user(a, u.email).then(() => setNote(t('admin.done'))));
  const reset = () =>
    act(() =>
      admin.reset(u.email).then((r) => {
        if (r.link) setLink(r.link);
        else setNote(t('admin.resetMailed'));
      }),
    );
  const waiting = u.state === 'pending' || u.state === 'unverified';
  return (
    <li class="admin-user" data-email={u.email} data-state={u.state}>
      <div class="admin-user-main">
        <span class="person-name">
          {u.name} {u.external && <ExtBadge />} {u.admin && <span class="admin-badge">{t('admin.adminBadge')}</span>}
        </span>
        <span class="muted admin-email">{u.email}</span>
        <span class="admin-badges">
          <span class={'admin-badge state-' + u.state}>{t(('admin.state.' + u.state) as MessageKey)}</span>
          {u.unproven ? <span class="admin-badge unproven" title={t('admin.unprovenHint')}>{t('admin.unproven')}</span> : <span class="admin-badge proven">{t('admin.proven')}</span>}
        </span>
        {waiting && u.unproven && <span class="hint">{t('admin.unprovenHint')}</span>}
      </div>
      <div class="admin-actions">
        {waiting && (
          <button class="primary admin-approve" disabled={busy} onClick={() => user('approve')}>
            {t('admin.approve')}
          </button>
        )}
        {u.state === 'active' && !u.admin && !u.external && (
          <button class="secondary admin-promote" disabled={busy} onClick={() => user('promote')}>
            {t('admin.promote')}
          </button>
        )}
        {u.state === 'active' && (
          <button class="secondary admin-reset" disabled={busy} onClick={reset}>
            {t('admin.reset')}
          </button>
        )}
        {u.state === 'deactivated' ? (
          <button class="secondary admin-reactivate" disabled={busy} onClick={() => user('reactivate')}>
            {t('admin.reactivate')}
          </button>
        ) : (
          u.state !== 'invited' && (
            <button class="danger admin-deactivate" disabled={busy} onClick={() => user('deactivate')}>
              {t('admin.deactivate')}
            </button>
          )
        )}
      </div>
      <ErrorBox text={err} />
      {note && (
        <p class="notice" role="status">
          {note}
        </p>
      )}
      {link && (
        <p class="notice admin-link" role="status">
          {t('admin.resetLink')} <input readOnly value={link} onFocus={(e) => e.currentTarget.select()} />
        </p>
      )}
    </li>
  );
}

function Invitations(): JSX.Element {
  const [inv, err] = usePoll(() => admin.invitations(), 0, []);
  const [links, setLinks] = useState<Record<string, string>>({});
  const [err2, setErr2] = useState('');
  const list: Invitation[] = inv?.invitations ?? [];
  return (
    <div class="admin-card" id="admin-invitations">
      <h3>{t('admin.invitations')}</h3>
      <ErrorBox text={err || err2} />
      {inv && list.length === 0 && <p class="muted">{t('admin.noInvitations')}</p>}
      <ul class="admin-list">
        {list.map((i) => (
          <li key={i.UserID + i.RoomID}>
            <span>{i.Email}</span> <span class="muted">{t('admin.inviteExpires', { date: when(i.Expires) })}</span>{' '}
            <button class="secondary" onClick={() => admin.approveInvitation(i.Email).then((r) => setLinks({ ...links, [i.Email]: r.link }), (e) => setErr2(errorText(e)))}>
              {t('admin.makeLink')}
            </button>
            {links[i.Email] && (
              <p class="notice admin-link">
                {t('admin.inviteLink', { email: i.Email })} <input readOnly value={links[i.Email]} />
              </p>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}

function UsersTab(): JSX.Element {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const [filter, setFilter] = useState<UserFilter>('all');
  useEffect(() => {
    const timer = setTimeout(() => setQuery(q.trim()), 200);
    return () => clearTimeout(timer);
  }, [q]);
  const [res, err, reload] = usePoll(() => admin.users(query), 0, [query]);
  const users = (res?.users ?? []).filter((u) =>
    filter === 'pending' ? u.state === 'pending' || u.state === 'unverified' : filter === 'external' ? u.external : filter === 'admin' ? u.admin : true,
  );
  const labels: Record<UserFilter, MessageKey> = { all: 'admin.filterAll', pending: 'admin.filterPending', external: 'admin.filterExternal', admin: 'admin.filterAdmin' };
  return (
    <>
      <Field id="admin-q" label={t('admin.search')}>
        <input id="admin-q" type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
      </Field>
      <div class="segmented" role="group">
        {(Object.keys(labels) as UserFilter[]).map((f) => (
          <button key={f} id={'admin-filter-' + f} class={f === filter ? 'on' : ''} aria-pressed={f === filter} onClick={() => setFilter(f)}>
            {t(labels[f])}
          </button>
        ))}
      </div>
      <ErrorBox text={err} />
      {res && users.length === 0 && <p class="muted">{t('admin.noUsers')}</p>}
      <ul class="admin-list" id="admin-users">
        {users.slice(0, maxShown).map((u) => (
          <UserRow key={u.id} u={u} onDone={reload} />
        ))}
      </ul>
      {users.length > maxShown && <p class="muted">{t('admin.more', { count: users.length - maxShown })}</p>}
      {(filter === 'external' || filter === 'all') && <Invitations />}
    </>
  );
}

// ---- Domains --------------------------------------------------------------

function DomainsTab(): JSX.Element {
  const [res, err, reload] = usePoll(() => admin.domains(), 0, []);
  const [add, setAdd] = useState('');
  const [err2, setErr2] = useState('');
  const run = (p: Promise<unknown>) =>
    p.then(
      () => {
        setErr2('');
        reload();
      },
      (e) => setErr2(errorText(e)),
    );
  return (
    <>
      <p class="muted">{t('admin.domainsLead')}</p>
      <ErrorBox text={err || err2} />
      <ul class="admin-list" id="admin-domains">
        {(res?.domains ?? []).map((d) => (
          <li key={d} data-domain={d}>
            <span>{d}</span>{' '}
            <button class="secondary" onClick={() => run(admin.removeDomains([d]))}>
              {t('admin.remove')}
            </button>
          </li>
        ))}
      </ul>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const ds = add.split(/[\s,]+/).filter(Boolean);
          if (ds.length) void run(admin.addDomains(ds).then(() => setAdd('')));
        }}
      >
        <Field id="admin-domain" label={t('admin.domainAdd')}>
          <input id="admin-domain" value={add} placeholder="*.exemple.gouv.fr" onInput={(e) => setAdd(e.currentTarget.value)} />
        </Field>
        <button class="primary" type="submit">
          {t('admin.add')}
        </button>
      </form>
    </>
  );
}

// ---- Rooms ----------------------------------------------------------------

function RoomsTab(): JSX.Element {
  const [res, err] = usePoll(() => admin.rooms(), 0, []);
  const rooms: AdminRoom[] = res?.rooms ?? [];
  return (
    <>
      <p class="muted">{t('admin.roomsLead')}</p>
      <ErrorBox text={err} />
      {res && <p>{t('admin.roomsTotal', { count: res.total })}</p>}
      <ul class="admin-list" id="admin-rooms">
        {rooms.map((r) => (
          <li key={r.id} data-room={r.id}>
            <span class="person-name">
              {t(('admin.kind.' + r.kind) as MessageKey)}
              {r.name ? ' « ' + r.name + ' »' : ''}
              {r.encrypted ? ' · ' + t('admin.encrypted') : ''}
            </span>
            <span class="muted">
              {t('admin.members', { count: r.members })} · {r.last ? t('admin.lastActivity', { date: when(r.last) }) : t('admin.noActivity')}
            </span>
          </li>
        ))}
      </ul>
    </>
  );
}

// ---- Audit ----------------------------------------------------------------

function actionLabel(a: string): string {
  const k = 'admin.action.' + a;
  return has(k) ? t(k) : a;
}

function AuditRow({ e }: { e: AuditEntry }): JSX.Element {
  const who = e.actor === 'cli' ? t('admin.auditCLI') + (e.unix ? ', ' + e.unix : '') : (e.actor_email ?? e.actor);
  const target = e.target_email || e.target || '';
  return (
    <li class="audit-row" data-action={e.action} data-outcome={e.outcome} data-actor={e.actor}>
      <span class="person-name">
        {actionLabel(e.action)}
        {target && <span class="audit-target"> — {target}</span>}
      </span>
      <span class="muted">
        {formatDateTime(Date.parse(e.time))} · {t('admin.auditBy', { who, addr: e.addr })} · {e.outcome === 'ok' ? t('admin.outcomeOk') : t('admin.outcomeRefused', { code: e.outcome })}
      </span>
    </li>
  );
}

function AuditTab(): JSX.Element {
  const [f, setF] = useState<AuditFilter>({});
  const [res, err] = usePoll(() => admin.audit(f), 10000, [f.action, f.actor, f.from, f.to]);
  const [all] = usePoll(() => admin.audit({}), 0, []);
  const actors = [...new Map((all?.entries ?? []).map((e) => [e.actor, e.actor === 'cli' ? t('admin.auditCLI') : (e.actor_email ?? e.actor)])).entries()];
  const set = (k: keyof AuditFilter, v: string) => setF({ ...f, [k]: v || undefined });
  const entries = res?.entries ?? [];
  return (
    <>
      <p class="muted">{t('admin.auditLead')}</p>
      <div class="audit-filters">
        <Field id="audit-action" label={t('admin.auditAction')}>
          <select id="audit-action" value={f.action ?? ''} onChange={(e) => set('action', e.currentTarget.value)}>
            <option value="">{t('admin.auditAny')}</option>
            {(res?.actions ?? all?.actions ?? []).map((a) => (
              <option key={a} value={a}>
                {actionLabel(a)}
              </option>
            ))}
          </select>
        </Field>
        <Field id="audit-actor" label={t('admin.auditActor')}>
          <select id="audit-actor" value={f.actor ?? ''} onChange={(e) => set('actor', e.currentTarget.value)}>
            <option value="">{t('admin.auditAny')}</option>
            {actors.map(([id, label]) => (
              <option key={id} value={id}>
                {label}
              </option>
            ))}
          </select>
        </Field>
        <Field id="audit-from" label={t('admin.auditFrom')}>
          <input id="audit-from" type="date" value={f.from ?? ''} onChange={(e) => set('from', e.currentTarget.value)} />
        </Field>
        <Field id="audit-to" label={t('admin.auditTo')}>
          <input id="audit-to" type="date" value={f.to ?? ''} onChange={(e) => set('to', e.currentTarget.value)} />
        </Field>
      </div>
      <a class="secondary audit-export" id="audit-export" href={admin.csvURL(f)} download>
        {t('admin.auditExport')}
      </a>
      <ErrorBox text={err} />
      {res && entries.length === 0 && <p class="muted">{t('admin.auditEmpty')}</p>}
      <ul class="admin-list" id="audit-list">
        {entries.map((e) => (
          <AuditRow key={e.time + e.action + e.actor} e={e} />
        ))}
      </ul>
    </>
  );
}
