// The side screens: room details (members, roles, invitations, leave), new
// direct message from the directory, new group, the forum directory, and
// the profile with devices.

import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, Device } from '../api';
import { calls } from '../call/call';
import { e2e, e2eChunk, e2eState } from '../crypto';
import { formatDateTime, lang, langs, t } from '../i18n';
import { errorText, Profile, store } from '../store';
import { switchLang } from './Auth';
import { Avatar, ErrorBox, ExtBadge, Field, Icon, namesakes, PaneHeader, Person, Tag } from './common';
import { useLang, useTopics } from './hooks';
import { navigate } from './router';

/** useDirectory searches agents by name as the user types, here and in
 * the peered administrations; partial says one of them did not answer. */
function useDirectory(q: string): [Profile[] | null, string, boolean] {
  const [res, setRes] = useState<Profile[] | null>(null);
  const [err, setErr] = useState('');
  const [partial, setPartial] = useState(false);
  useEffect(() => {
    const query = q.trim();
    if (!query) {
      setRes(null);
      setPartial(false);
      return;
    }
    let live = true;
    const timer = setTimeout(() => {
      store.request<{ users: Profile[] | null; partial?: boolean }>({ t: 'directory', q: query }).then(
        (r) => {
          if (!live) return;
          for (const p of r.users ?? []) store.profiles.set(p.id, p);
          setRes((r.users ?? []).filter((p) => p.id !== store.me?.id));
          setPartial(!!r.partial);
          setErr('');
        },
        (e) => live && setErr(errorText(e)),
      );
    }, 150);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [q]);
  return [res, err, partial];
}

/** PersonOrg is a person's service and, for someone of a peered
 * administration, that administration. */
function PersonOrg({ p }: { p: Profile }): JSX.Element | null {
  const parts = [p.org, p.admin && t('dir.admin', { name: p.admin })].filter(Boolean);
  return parts.length ? <span class="person-org">{parts.join(' · ')}</span> : null;
}

function PersonRow({ p, action, tag = false }: { p: Profile; action?: JSX.Element; tag?: boolean }): JSX.Element {
  return (
    <li class="person-row">
      <Avatar id={p.id} name={p.name} size={36} />
      <span class="person-main">
        <span class="person-name">
          {p.name}
          {tag && <Tag p={p} />}
          {p.ext && <ExtBadge />}
        </span>
        <PersonOrg p={p} />
      </span>
      {action}
    </li>
  );
}

export function NewDM(): JSX.Element {
  useLang();
  const [q, setQ] = useState('');
  const [res, err, partial] = useDirectory(q);
  const dups = namesakes(res ?? []);
  const [busy, setBusy] = useState('');
  const [err2, setErr2] = useState('');
  const open = async (p: Profile) => {
    setBusy(p.id);
    try {
      const id = await store.openDM(p.id, !!p.admin_id);
      await store.waitRoom(id);
      navigate('/room/' + id, true);
    } catch (e) {
      setErr2(errorText(e));
    } finally {
      setBusy('');
    }
  };
  return (
    <section class="panel">
      <PaneHeader title={t('dm.title')} onBack={() => navigate('/')} />
      <div class="panel-body">
        <Field id="dm-q" label={t('dm.search')} hint={t('dm.hint')}>
          <input id="dm-q" type="search" autoFocus autoComplete="off" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </Field>
        <ErrorBox text={err || err2} />
        {res && res.length === 0 && <p class="empty">{t('dm.none')}</p>}
        {partial && <p class="hint">{t('dir.partial')}</p>}
        {res && res.length > 0 && (
          <ul class="people" aria-label={t('dm.results')}>
            {res.map((p) => (
              <li key={p.id} class="person-pick">
                <button class="person-btn" disabled={busy === p.id} onClick={() => void open(p)} data-user={p.id}>
                  <Avatar id={p.id} name={p.name} size={36} />
                  <span class="person-main">
                    <span class="person-name">
                      {p.name}
                      {dups.has(p.id) && <Tag p={p} />}
                    </span>
                    <PersonOrg p={p} />
                  </span>
                </button>
              </li>
            ))}
          </ul>
        )}
      </div>
    </section>
  );
}

export function NewGroup(): JSX.Element {
  useLang();
  const [name, setName] = useState('');
  const [topic, setTopic] = useState('');
  const [externals, setExternals] = useState(false);
  const [forum, setForum] = useState(false);
  const [q, setQ] = useState('');
  const [picked, setPicked] = useState<Profile[]>([]);
  const [res, err] = useDirectory(q);
  const dups = namesakes(res ?? []);
  const [busy, setBusy] = useState(false);
  const [err2, setErr2] = useState('');
  const create = async () => {
    setBusy(true);
    setErr2('');
    try {
      const id = await store.createRoom(forum ? 'forum' : 'group', name.trim(), topic.trim(), externals && !forum, picked.map((p) => p.id));
      await store.waitRoom(id);
      navigate('/room/' + id, true);
    } catch (e) {
      setErr2(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel">
      <PaneHeader title={t('group.title')} onBack={() => navigate('/')} />
      <form
        class="panel-body"
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <Field id="g-name" label={t('group.name')}>
          <input id="g-name" required maxLength={100} autoFocus value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field id="g-topic" label={t('group.topic')}>
          <input id="g-topic" maxLength={500} value={topic} onInput={(e) => setTopic(e.currentTarget.value)} />
        </Field>
        <label class="check">
          <input type="checkbox" checked={forum} onChange={(e) => setForum(e.currentTarget.checked)} /> {t('group.forum')}
        </label>
        {!forum && (
          <label class="check">
            <input type="checkbox" checked={externals} onChange={(e) => setExternals(e.currentTarget.checked)} /> {t('group.externals')}
          </label>
        )}
        <Field id="g-q" label={t('group.people')} hint={t('dm.hint')}>
          <input id="g-q" type="search" autoComplete="off" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </Field>
        <ErrorBox text={err} />
        {res && res.length > 0 && (
          <ul class="people" aria-label={t('dm.results')}>
            {res
              .filter((p) => !picked.some((x) => x.id === p.id))
              .map((p) => (
                <li key={p.id} class="person-pick">
                  <button
                    type="button"
                    class="person-btn"
                    data-user={p.id}
                    onClick={() => {
                      setPicked([...picked, p]);
                      setQ('');
                    }}
                  >
                    <Avatar id={p.id} name={p.name} size={32} />
                    <span class="person-main">
                      <span class="person-name">
                        {p.name}
                        {dups.has(p.id) && <Tag p={p} />}
                      </span>
                      <PersonOrg p={p} />
                    </span>
                    <Icon name="plus" />
                  </button>
                </li>
              ))}
          </ul>
        )}
        {picked.length > 0 && (
          <div class="picked" aria-label={t('group.selected')}>
            {picked.map((p) => (
              <span class="chip" key={p.id}>
                {p.name}
                <button type="button" class="icon-btn" aria-label={t('common.delete') + ' ' + p.name} onClick={() => setPicked(picked.filter((x) => x.id !== p.id))}>
                  <Icon name="close" size={14} />
                </button>
              </span>
            ))}
          </div>
        )}
        <ErrorBox text={err2} />
        <button class="primary" type="submit" disabled={busy || !name.trim()}>
          {t('group.create')}
        </button>
      </form>
    </section>
  );
}

interface Forum {
  id: string;
  name: string;
  topic?: string;
  count: number;
  joined: boolean;
}

export function Forums(): JSX.Element {
  useLang();
  const [q, setQ] = useState('');
  const [res, setRes] = useState<Forum[] | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    const timer = setTimeout(() => {
      store.request<{ forums: Forum[] | null }>({ t: 'forums', q: q.trim() }).then(
        (r) => setRes(r.forums ?? []),
        (e) => setErr(errorText(e)),
      );
    }, 150);
    return () => clearTimeout(timer);
  }, [q]);
  const join = async (f: Forum) => {
    try {
      if (!f.joined) await store.request({ t: 'join', room: f.id });
      await store.waitRoom(f.id);
      navigate('/room/' + f.id);
    } catch (e) {
      setErr(errorText(e));
    }
  };
  return (
    <section class="panel">
      <PaneHeader title={t('forums.title')} onBack={() => navigate('/')} />
      <div class="panel-body">
        <Field id="f-q" label={t('forums.search')}>
          <input id="f-q" type="search" autoFocus value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </Field>
        <ErrorBox text={err} />
        {res && res.length === 0 && <p class="empty">{t('forums.none')}</p>}
        <ul class="people">
          {(res ?? []).map((f) => (
            <li key={f.id} class="person-row">
              <Avatar id={f.id} name={f.name} group size={36} />
              <span class="person-main">
                <span class="person-name">{f.name}</span>
                <span class="person-org">
                  {t('forums.members', { count: f.count })}
                  {f.topic ? ' · ' + f.topic : ''}
                </span>
              </span>
              <button class={f.joined ? 'secondary' : 'primary small'} onClick={() => void join(f)}>
                {f.joined ? t('forums.open') : t('forums.join')}
              </button>
            </li>
          ))}
        </ul>
      </div>
    </section>
  );
}

/** callMember calls a group's member from their row: in the direct
 * conversation with them (opened if need be, its group founded first). */
async function callMember(user: string): Promise<void> {
  const dm = await store.openDM(user);
  navigate('/room/' + dm);
  for (let i = 0; i < 100 && !store.rooms.get(dm)?.epoch; i++) await new Promise((ok) => setTimeout(ok, 100));
  await calls.start(dm, user, 'audio');
}

export function RoomInfo({ id }: { id: string }): JSX.Element {
  useTopics('room:' + id, 'profiles', 'rooms', 'e2e');
  useLang();
  const r = store.rooms.get(id);
  const [q, setQ] = useState('');
  const [res] = useDirectory(q);
  const [email, setEmail] = useState('');
  const [err, setErr] = useState('');
  const [note, setNote] = useState('');
  const [leaving, setLeaving] = useState(false);
  const [name, setName] = useState(r?.name ?? '');
  const [topic, setTopic] = useState(r?.topic ?? '');
  if (!r) return <section class="panel" />;
  const me = store.me!.id;
  const can = (roles: string[]) => r.kind !== 'direct' && roles.includes(r.role);
  // ok is the note once done, or makes it from the node's answer.
  const run = (f: Record<string, unknown>, ok: string | ((res: Record<string, unknown>) => string) = '') =>
    store.request(f).then(
      (res) => {
        setErr('');
        setNote(typeof ok === 'string' ? ok : ok((res ?? {}) as Record<string, unknown>));
      },
      (e) => {
        setNote('');
        setErr(errorText(e));
      },
    );
  const members = (r.members ?? []).slice().sort((a, b) => store.name(a.user).localeCompare(store.name(b.user), lang()));
  const dups = namesakes(members.map((m) => store.profile(m.user)));
  const resDups = namesakes(res ?? []);
  const rank: Record<string, number> = { owner: 3, moderator: 2, member: 1 };
  return (
    <section class="panel">
      <PaneHeader title={store.roomName(r)} onBack={() => navigate('/room/' + id)} />
      <div class="panel-body">
        {r.topic && <p class="lead">{r.topic}</p>}
        {can(['owner', 'moderator']) && (
          <details class="settings">
            <summary>{t('room.settings')}</summary>
            <form
              onSubmit={(e) => {
                e.preventDefault();
                const f: Record<string, unknown> = { t: 'update_room', room: id };
                if (name.trim() && name.trim() !== r.name) f.name = name.trim();
                if (topic.trim() !== (r.topic ?? '')) f.topic = topic.trim();
                if (Object.keys(f).length > 2) void run(f, t('profile.saved'));
              }}
            >
              <Field id="ri-name" label={t('room.name')}>
                <input id="ri-name" maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
              </Field>
              <Field id="ri-topic" label={t('room.topic')}>
                <input id="ri-topic" maxLength={500} value={topic} onInput={(e) => setTopic(e.currentTarget.value)} />
              </Field>
              {r.kind === 'group' && r.role === 'owner' && (
                <label class="check">
                  <input type="checkbox" checked={!!r.externals} onChange={(e) => void run({ t: 'update_room', room: id, externals: e.currentTarget.checked })} /> {t('room.allowExternals')}
                </label>
              )}
              <button class="secondary" type="submit">
                {t('common.save')}
              </button>
            </form>
          </details>
        )}
        <h3>
          {t('room.membersTitle')} · {t('room.members', { count: r.count })}
        </h3>
        <ul class="people members">
          {members.map((m) => {
            const canRole = r.role === 'owner' && m.user !== me && m.state === 'joined' && !store.profile(m.user)?.ext;
            const canKick = can(['owner', 'moderator']) && m.user !== me && rank[r.role] > (rank[m.role] ?? 1);
            return (
              <li key={m.user} class="person-row" data-user={m.user}>
                <Avatar id={m.user} name={store.name(m.user)} size={36} />
                <span class="person-main">
                  <Person id={m.user} tag={dups.has(m.user)} />
                  <span class="person-org">
                    {store.profile(m.user)?.org}
                    {m.state === 'invited' ? ' · ' + t('room.state.invited') : ''}
                  </span>
                </span>
                {r.kind !== 'direct' &&
                  (canRole ? (
                    <select aria-label={t('room.roleOf', { name: store.name(m.user) })} value={m.role} onChange={(e) => void run({ t: 'set_role', room: id, user: m.user, role: e.currentTarget.value })}>
                      {['owner', 'moderator', 'member'].map((ro) => (
                        <option key={ro} value={ro}>
                          {t(('room.role.' + ro) as 'room.role.member')}
                        </option>
                      ))}
                    </select>
                  ) : (
                    <span class="role">{t(('room.role.' + m.role) as 'room.role.member')}</span>
                  ))}
                {r.encrypted && m.user !== me && m.state === 'joined' && (
                  <button
                    class={'link-btn verify-btn' + (e2eState.changed.has(m.user) ? ' warn' : '')}
                    data-verified={e2eState.verified.has(m.user) && !e2eState.changed.has(m.user) ? 'yes' : 'no'}
                    aria-label={t('room.verifyOf', { name: store.name(m.user) })}
                    onClick={() => navigate('/room/' + id + '/verify/' + m.user)}
                  >
                    {e2eState.verified.has(m.user) && !e2eState.changed.has(m.user) ? '✓ ' + t('room.verified') : t('room.verify')}
                  </button>
                )}
                {canKick && (
                  <button class="link-btn" onClick={() => void run({ t: 'kick', room: id, user: m.user })}>
                    {t('room.remove')}
                  </button>
                )}
                {r.kind === 'group' && r.encrypted && m.user !== me && m.state === 'joined' && !store.me?.ext && (
                  <button class="link-btn" data-call-member={m.user} aria-label={t('call.start') + ' ' + store.name(m.user)} onClick={() => void callMember(m.user)}>
                    {t('call.member')}
                  </button>
                )}
              </li>
            );
          })}
        </ul>
        {can(['owner', 'moderator']) && !store.me?.ext && (
          <>
            <Field id="ri-q" label={t('room.invite')} hint={t('dm.hint')}>
              <input id="ri-q" type="search" autoComplete="off" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
            </Field>
            {res && res.length > 0 && (
              <ul class="people">
                {res
                  .filter((p) => !members.some((m) => m.user === p.id))
                  .map((p) => (
                    <PersonRow
                      key={p.id}
                      p={p}
                      tag={resDups.has(p.id)}
                      action={
                        <button
                          class="primary small"
                          data-user={p.id}
                          onClick={() => {
                            setQ('');
                            store.invite(id, p.id).then(
                              () => (setErr(''), setNote(t('room.invited'))),
                              (e) => (setNote(''), setErr(errorText(e))),
                            );
                          }}
                        >
                          {t('room.invite')}
                        </button>
                      }
                    />
                  ))}
              </ul>
            )}
            {r.kind === 'group' && r.externals && (
              <form
                onSubmit={(e) => {
                  e.preventDefault();
                  const addr = email.trim();
                  // Said as it happened: a mail went out, an administrator
                  // must hand the link over, or a pending invitation got
                  // this room too.
                  void run({ t: 'invite_external', room: id, email: addr }, (res) =>
                    res.invitation === 'approval'
                      ? t('room.inviteExternalApproval', { email: addr })
                      : res.invitation === 'pending'
                        ? t('room.inviteExternalPending', { email: addr })
                        : res.invitation === 'peer'
                          ? t('room.inviteExternalPeer', { email: addr })
                          : t('room.inviteExternalDone', { email: addr }),
                  ).then(() => setEmail(''));
                }}
              >
                <Field id="ri-ext" label={t('room.inviteExternal')}>
                  <input id="ri-ext" type="email" placeholder={t('room.inviteExternalHint')} required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
                </Field>
                <button class="secondary" type="submit">
                  {t('room.inviteExternal')}
                </button>
              </form>
            )}
          </>
        )}
        {note && (
          <p class="notice" role="status">
            {note}
          </p>
        )}
        <ErrorBox text={err} />
        <div class="danger-zone">
          {leaving ? (
            <>
              <p>{t('room.leaveConfirm', { name: store.roomName(r) })}</p>
              <button
                class="danger"
                onClick={() =>
                  store.request({ t: 'leave', room: id }).then(
                    () => navigate('/'),
                    (e) => (setErr(errorText(e)), setLeaving(false)),
                  )
                }
              >
                {t('common.confirm')}
              </button>{' '}
              <button class="secondary" onClick={() => setLeaving(false)}>
                {t('common.cancel')}
              </button>
            </>
          ) : (
            <button class="danger" onClick={() => setLeaving(true)}>
              {t('room.leave')}
            </button>
          )}
        </div>
      </div>
    </section>
  );
}

export function ProfileView(): JSX.Element {
  useTopics('me');
  useLang();
  const me = store.me!;
  const [name, setName] = useState(me.name);
  const [devices, setDevices] = useState<Device[]>([]);
  const [note, setNote] = useState('');
  const [err, setErr] = useState('');
  const [revoking, setRevoking] = useState('');
  const [renaming, setRenaming] = useState('');
  const [newName, setNewName] = useState('');
  const [perm, setPerm] = useState(typeof Notification === 'undefined' ? 'unsupported' : Notification.permission);
  const loaded = useRef(false);
  const load = () => api.devices().then((d) => setDevices(d.devices), (e) => setErr(errorText(e)));
  useEffect(() => {
    if (!loaded.current) {
      loaded.current = true;
      void load();
    }
  }, []);
  return (
    <section class="panel">
      <PaneHeader title={t('profile.title')} onBack={() => navigate('/')} />
      <div class="panel-body">
        <div class="profile-card">
          <Avatar id={me.id} name={me.name} size={64} />
          <div>
            <p class="person-name big">
              {me.name} {me.ext && <ExtBadge />}
            </p>
            <p class="person-org">{me.org}</p>
            <p class="muted">{me.email}</p>
          </div>
        </div>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            api.setName(name.trim()).then(
              () => {
                me.name = name.trim();
                store.emit('me');
                setNote(t('profile.saved'));
              },
              (e) => setErr(errorText(e)),
            );
          }}
        >
          <Field id="p-name" label={t('profile.name')}>
            <input id="p-name" maxLength={100} required value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </Field>
          <button class="secondary" type="submit">
            {t('common.save')}
          </button>
        </form>
        {note && (
          <p class="notice" role="status">
            {note}
          </p>
        )}
        <ErrorBox text={err} />
        <h3>{t('lang.label')}</h3>
        <div class="segmented" role="group" aria-label={t('lang.label')}>
          {langs.map((l) => (
            <button key={l} lang={l} aria-pressed={lang() === l} class={lang() === l ? 'on' : ''} onClick={() => switchLang(l)}>
              {l === 'fr' ? 'Français' : 'English'}
            </button>
          ))}
        </div>
        <p class="muted">{t('profile.appearance')}</p>
        <h3>{t('profile.notifications')}</h3>
        {perm === 'granted' && <p>{t('profile.notifOn')}</p>}
        {perm === 'denied' && <p>{t('profile.notifDenied')}</p>}
        {perm === 'unsupported' && <p>{t('profile.notifUnsupported')}</p>}
        {perm === 'default' && (
          <button class="secondary" onClick={() => Notification.requestPermission().then((p) => setPerm(p))}>
            {t('profile.notifEnable')}
          </button>
        )}
        <E2ESection />
        <h3>{t('profile.devices')}</h3>
        <ul class="people devices">
          {devices.map((d) => (
            <li key={d.id} class="person-row" data-device={d.id}>
              {renaming === d.id ? (
                <form
                  class="device-rename"
                  onSubmit={(e) => {
                    e.preventDefault();
                    setErr('');
                    api.renameDevice(d.id, newName).then(
                      () => {
                        setRenaming('');
                        void load();
                      },
                      (e) => setErr(errorText(e)),
                    );
                  }}
                >
                  <Field id={'dev-name-' + d.id} label={t('profile.deviceName')}>
                    <input id={'dev-name-' + d.id} class="device-name-input" maxLength={60} required value={newName} onInput={(e) => setNewName(e.currentTarget.value)} />
                  </Field>
                  <button class="secondary small" type="submit">
                    {t('common.save')}
                  </button>
                </form>
              ) : (
                <span class="person-main">
                  <span class="person-name device-name">
                    {d.name || t('profile.thisDevice')}
                    {d.current && <span class="chip">{t('profile.thisDevice')}</span>}
                  </span>
                  <span class="person-org">{t('profile.lastSeen', { when: formatDateTime(Date.parse(d.last_seen)) })}</span>
                </span>
              )}
              {renaming !== d.id && (
                <button
                  class="link-btn rename-device"
                  onClick={() => {
                    setRenaming(d.id);
                    setNewName(d.name);
                  }}
                  aria-label={t('profile.renameDevice', { name: d.name })}
                >
                  {t('profile.rename')}
                </button>
              )}
              {!d.current &&
                (revoking === d.id ? (
                  <button class="danger small" onClick={() => api.revokeDevice(d.id).then(load, (e) => setErr(errorText(e))).finally(() => setRevoking(''))}>
                    {t('common.confirm')}
                  </button>
                ) : (
                  <button class="link-btn" onClick={() => setRevoking(d.id)} aria-label={t('profile.revoke') + ' ' + d.name}>
                    {t('profile.revoke')}
                  </button>
                ))}
            </li>
          ))}
        </ul>
        <PasswordChange onChanged={load} />
        <div class="danger-zone">
          <button class="danger" onClick={() => void store.signOut()}>
            {t('profile.signOut')}
          </button>
        </div>
      </div>
    </section>
  );
}

/** PasswordChange changes the password from Settings: the current one is
 * required, and the node signs the other devices out. */
function PasswordChange({ onChanged }: { onChanged: () => void }): JSX.Element {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [note, setNote] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <form
      id="password"
      class="password-change"
      onSubmit={(e) => {
        e.preventDefault();
        setErr('');
        setNote('');
        setBusy(true);
        api
          .changePassword(current, next)
          .then(
            () => {
              setCurrent('');
              setNext('');
              setNote(t('profile.passwordChanged'));
              onChanged();
            },
            (e) => setErr(errorText(e)),
          )
          .finally(() => setBusy(false));
      }}
    >
      <h3>{t('profile.password')}</h3>
      <input type="email" autocomplete="username" value={store.me?.email ?? ''} hidden readOnly />
      <Field id="pw-current" label={t('profile.currentPassword')}>
        <input id="pw-current" type="password" autocomplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
      </Field>
      <Field id="pw-new" label={t('profile.newPassword')}>
        <input id="pw-new" type="password" autocomplete="new-password" required value={next} onInput={(e) => setNext(e.currentTarget.value)} />
      </Field>
      <button class="secondary" type="submit" disabled={busy}>
        {t('profile.changePassword')}
      </button>
      {note && (
        <p class="notice" role="status">
          {note}
        </p>
      )}
      <ErrorBox text={err} />
    </form>
  );
}

/** QR draws a QR code of text as SVG (the encoder is in the MLS chunk). */
function QR({ text, label }: { text: string; label: string }): JSX.Element | null {
  const [m, setM] = useState<boolean[][] | null>(null);
  useEffect(() => {
    let live = true;
    void e2eChunk().then((c) => live && setM(c.qr(text)));
    return () => {
      live = false;
    };
  }, [text]);
  if (!m) return null;
  const n = m.length + 8;
  let d = '';
  m.forEach((row, y) => row.forEach((dark, x) => dark && (d += `M${x + 4} ${y + 4}h1v1h-1z`)));
  return (
    <svg class="qr" viewBox={`0 0 ${n} ${n}`} width={n * 5} height={n * 5} role="img" aria-label={label} shape-rendering="crispEdges">
      <rect width={n} height={n} fill="#fff" />
      <path d={d} fill="#000" />
    </svg>
  );
}

interface ShownDevice {
  device: string;
  created: number;
  listed: boolean;
}

interface Safety {
  groups: string[];
  mine: ShownDevice[];
  theirs: ShownDevice[];
}

/** VerifyView shows the safety number of the user and someone else, and
 * lets the user mark them verified. */
export function VerifyView({ room, user }: { room: string; user: string }): JSX.Element {
  useTopics('e2e', 'profiles');
  useLang();
  const [s, setS] = useState<Safety | null>(null);
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  // The names of this user's own devices: the node tells them to their
  // owner only, so another person's devices are numbered instead.
  const [ownNames, setOwnNames] = useState(new Map<string, string>());
  const name = store.name(user);
  const load = () =>
    e2e()
      .then((m) => m.safety(user, room))
      .then(setS, (e) => setErr(errorText(e)));
  useEffect(() => {
    store.needProfile(user);
    void load();
    api.devices().then(
      (d) => setOwnNames(new Map(d.devices.map((x) => [x.id, x.name]))),
      () => {},
    );
  }, [user]);
  const row = (d: ShownDevice, i: number, mine: boolean) => {
    const device = (mine && ownNames.get(d.device)) || t('verify.nth', { n: i + 1 });
    return (
      <li key={d.device} class="person-row" data-device={d.device}>
        <span class={'person-main device-name' + (d.listed ? '' : ' warn')}>
          {d.listed ? t('verify.device', { device, when: formatDateTime(d.created) }) : t('verify.notListed', { device })}
        </span>
      </li>
    );
  };
  const verified = e2eState.verified.has(user);
  const changed = e2eState.changed.has(user);
  const mark = async (on: boolean) => {
    setBusy(true);
    try {
      await (await e2e()).setVerified(user, on, room);
      await load();
    } catch (e) {
      setErr(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel verify">
      <PaneHeader title={t('verify.title', { name })} onBack={() => navigate('/room/' + room)} />
      <div class="panel-body">
        <p class="lead">{t('verify.lead', { name })}</p>
        <ErrorBox text={err} />
        {s && (
          <>
            <h3>{t('verify.number')}</h3>
            <p class="safety-number" aria-label={t('verify.number')} data-number={s.groups.join('')}>
              {s.groups.map((g, i) => (
                <span key={i}>{g}</span>
              ))}
            </p>
            <QR text={s.groups.join('')} label={t('verify.qr')} />
            <h3>{t('verify.devices', { name })}</h3>
            <ul class="people devices">
              {s.theirs.map((d, i) => row(d, i, user === store.me?.id))}
            </ul>
            <h3>{t('verify.mine')}</h3>
            <ul class="people devices">
              {s.mine.map((d, i) => row(d, i, true))}
            </ul>
          </>
        )}
        {verified && !changed && (
          <p class="notice" role="status">
            <Icon name="check" size={16} /> {t('verify.done', { name })}
          </p>
        )}
        {changed && (
          <p class="error" role="alert">
            {t('verify.changed', { name })}
          </p>
        )}
        <div class="actions">
          {(!verified || changed) && (
            <button class="primary" disabled={busy || !s} onClick={() => void mark(true)}>
              {t('verify.mark')}
            </button>
          )}
          {verified && (
            <button class="secondary" disabled={busy} onClick={() => void mark(false)}>
              {t('verify.unmark')}
            </button>
          )}
        </div>
      </div>
    </section>
  );
}

/** RecoveryView takes the recovery key on a new device and restores the
 * encrypted history from the backups. */
export function RecoveryView(): JSX.Element {
  useTopics('e2e');
  useLang();
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState('');
  const [err, setErr] = useState('');
  const submit = async () => {
    setBusy(true);
    setErr('');
    setNote('');
    try {
      const n = await (await e2e()).restore(key);
      setNote(t('recovery.restored', { count: n }));
      setKey('');
    } catch (e) {
      const code = e instanceof Error ? e.message : '';
      setErr(code === 'bad_recovery_key' ? t('recovery.bad') : code === 'no_backup' ? t('recovery.none') : errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel">
      <PaneHeader title={t('recovery.enterTitle')} onBack={() => navigate('/')} />
      <form
        class="panel-body"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <p class="lead">{t('recovery.enterLead')}</p>
        <Field id="recovery-key" label={t('recovery.key')}>
          <input id="recovery-key" autoComplete="off" spellcheck={false} autoFocus required value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        </Field>
        <ErrorBox text={err} />
        {note && (
          <p class="notice" role="status" data-restored="yes">
            {note}
          </p>
        )}
        <button class="primary" type="submit" disabled={busy || !key.trim()}>
          {t('recovery.restore')}
        </button>
      </form>
    </section>
  );
}

/** RecoveryKeyView shows a new recovery key, to be written down; the
 * sidebar leads here until the user says it is done. */
export function RecoveryKeyView(): JSX.Element {
  useTopics('e2e');
  useLang();
  return (
    <section class="panel">
      <PaneHeader title={t('recovery.title')} onBack={() => navigate('/')} />
      <div class="panel-body">
        <p class="lead">{t('recovery.lead')}</p>
        {e2eState.key && (
          <>
            <p class="recovery-key" data-key={e2eState.key}>
              {e2eState.key}
            </p>
            <button class="primary" onClick={() => void e2e().then((m) => (m.confirmRecoveryShown(), navigate('/')))}>
              {t('recovery.done')}
            </button>
          </>
        )}
      </div>
    </section>
  );
}

/** E2ESection is the profile's part on encryption: the recovery key. */
function E2ESection(): JSX.Element {
  useTopics('e2e');
  const [key, setKey] = useState('');
  return (
    <>
      <h3>{t('profile.e2e')}</h3>
      <p class="muted">{t('profile.e2eLead')}</p>
      {e2eState.recovery === 'needed' && (
        <button class="secondary" onClick={() => navigate('/recovery')}>
          {t('profile.enterKey')}
        </button>
      )}
      {e2eState.recovery === 'ok' &&
        (key ? (
          <>
            <p class="recovery-key">{key}</p>
            <p class="muted">{t('profile.keyWarning')}</p>
            <button class="secondary" onClick={() => setKey('')}>
              {t('profile.hideKey')}
            </button>
          </>
        ) : (
          <button class="secondary" onClick={() => void e2e().then((m) => m.recoveryKey().then(setKey))}>
            {t('profile.showKey')}
          </button>
        ))}
    </>
  );
}
