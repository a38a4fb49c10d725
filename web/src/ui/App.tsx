// The application shell: chooses between the account screens and the
// messenger from the session and the route, and lays the messenger out
// (list and room side by side on wide screens, one at a time on phones).

import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, Me } from '../api';
import { formatDateTime, t } from '../i18n';
import { errorText, store, wasSignedIn } from '../store';
import { Forgot, Invite, Login, Register, Renew, Reset, Setup, Verify } from './Auth';
import { Avatar, Icon } from './common';
import { useLang, useTopics } from './hooks';
import { e2eState } from '../crypto';
import { PictureViewer } from './Files';
import { CallScreen, GroupCallScreen } from './Call';
import { Forums, NewDM, NewGroup, ProfileView, RecoveryKeyView, RecoveryView, RoomInfo, VerifyView } from './Panels';
import { RoomList } from './RoomList';
import { RoomView } from './Room';
import { SearchView } from './Search';
import { navigate, onRoute, route } from './router';

const publicPages = ['setup', 'verify', 'reset', 'renew', 'invite', 'register', 'forgot', 'login'];

function Sidebar({ active }: { active: string | null }): JSX.Element {
  useTopics('me', 'status', 'e2e');
  useLang();
  const me = store.me!;
  return (
    <aside class="sidebar">
      <header class="sidebar-header">
        <button class="me-btn" onClick={() => navigate('/profile')} aria-label={t('profile.open')} title={t('profile.open')}>
          <Avatar id={me.id} name={me.name} size={36} />
        </button>
        <h1 class="sidebar-title">{t('rooms.title')}</h1>
        <button class="icon-btn" id="search-open" onClick={() => navigate('/search')} aria-label={t('search.open')} title={t('search.open')}>
          <Icon name="search" />
        </button>
        {me.admin && !me.ext && (
          <button class="icon-btn" id="admin-open" onClick={() => navigate('/admin')} aria-label={t('admin.open')} title={t('admin.open')}>
            <Icon name="shield" />
          </button>
        )}
        {!me.ext && (
          <>
            <button class="icon-btn" onClick={() => navigate('/forums')} aria-label={t('rooms.forums')} title={t('rooms.forums')}>
              <Icon name="forum" />
            </button>
            <button class="icon-btn" onClick={() => navigate('/group')} aria-label={t('rooms.newGroup')} title={t('rooms.newGroup')}>
              <Icon name="group" />
            </button>
            <button class="icon-btn" onClick={() => navigate('/new')} aria-label={t('rooms.newDM')} title={t('rooms.newDM')}>
              <Icon name="chat" />
            </button>
          </>
        )}
      </header>
      {store.status !== 'online' && (
        <div class={'conn conn-' + store.status} role="status" data-status={store.status}>
          {store.status === 'connecting' && !store.synced ? t('conn.connecting') : t('conn.offline')}
        </div>
      )}
      {e2eState.recovery === 'needed' && (
        <button class="banner recovery-banner" onClick={() => navigate('/recovery')}>
          <Icon name="lock" size={16} /> {t('recovery.needed')}
        </button>
      )}
      {e2eState.recovery === 'show' && (
        <button class="banner recovery-new" onClick={() => navigate('/recovery-key')}>
          <Icon name="lock" size={16} /> {t('recovery.writeDown')}
        </button>
      )}
      <SignInAlerts />
      <RoomList active={active} />
    </aside>
  );
}

/** SignInAlerts shows the new sessions of the account, each with "it was
 * me" and "this wasn't me" (which signs that session out and asks for a
 * new password). It is at the top of the room list, and on phones also at
 * the top of the open screen, where the list is hidden. */
function SignInAlerts(): JSX.Element | null {
  useTopics('signin');
  const [revoked, setRevoked] = useState('');
  const [err, setErr] = useState('');
  // Always there, so that one can tell the check of missed sign-ins ran.
  return (
    <div class="signin-alerts" hidden={!store.signIns.length && !revoked && !err} data-checked={store.signInsChecked ? 'yes' : 'no'}>
      {store.signIns.map((a) => (
        <div key={a.device} class="signin-alert" role="alert" data-device={a.device}>
          <p>{t('signin.alert', { name: a.name, when: formatDateTime(a.at) })}</p>
          <div class="signin-actions">
            <button class="secondary small signin-mine" onClick={() => void store.answerSignIn(a.device, false)}>
              {t('signin.mine')}
            </button>
            <button
              class="danger small signin-not-me"
              onClick={() => {
                setErr('');
                store.answerSignIn(a.device, true).then(
                  () => setRevoked(a.name),
                  (e) => setErr(errorText(e)),
                );
              }}
            >
              {t('signin.notMe')}
            </button>
          </div>
        </div>
      ))}
      {revoked && (
        <div class="signin-alert signin-revoked" role="status">
          <p>{t('signin.revoked', { name: revoked })}</p>
          <button
            class="primary small"
            onClick={() => {
              setRevoked('');
              navigate('/profile');
              requestAnimationFrame(() => document.getElementById('pw-current')?.focus());
            }}
          >
            {t('signin.changePassword')}
          </button>
        </div>
      )}
      {err && (
        <p class="error signin-alert" role="alert">
          {err}
        </p>
      )}
    </div>
  );
}

type AdminViewT = typeof import('./Admin').AdminView;

/** LazyAdmin loads the admin page's chunk: only administrators need it. */
function LazyAdmin({ tab }: { tab?: string }): JSX.Element {
  const [View, setView] = useState<AdminViewT | null>(null);
  useEffect(() => {
    void import('./Admin').then((m) => setView(() => m.AdminView));
  }, []);
  return View ? <View tab={tab} /> : <div class="boot" aria-busy="true" />;
}

function Messenger(): JSX.Element {
  useTopics('e2e');
  const [r, setR] = useState(route());
  useEffect(() => onRoute(() => setR(route())), []);
  useEffect(() => {
    store.onOpenRoom = (id) => navigate('/room/' + id);
  }, []);
  const [a, b, c] = r.parts;
  const roomID = a === 'room' ? (b ?? null) : null;
  useEffect(() => {
    store.open(roomID);
  }, [roomID]);
  let pane: JSX.Element;
  if (roomID && c === 'info') pane = <RoomInfo id={roomID} />;
  else if (roomID && c === 'verify' && r.parts[3]) pane = <VerifyView room={roomID} user={r.parts[3]} />;
  else if (roomID) pane = <RoomView id={roomID} />;
  else if (a === 'new') pane = <NewDM />;
  else if (a === 'group') pane = <NewGroup />;
  else if (a === 'forums') pane = <Forums />;
  else if (a === 'search') pane = <SearchView key={r.query.get('room') ?? ''} room={r.query.get('room')} />;
  else if (a === 'profile') pane = <ProfileView />;
  else if (a === 'recovery') pane = <RecoveryView />;
  else if (a === 'recovery-key') pane = <RecoveryKeyView />;
  else if (a === 'admin' && store.me?.admin) pane = <LazyAdmin tab={b} />;
  else
    pane = (
      <div class="placeholder">
        <img src="/icon.svg" alt="" width={72} height={72} />
        <p>{t('rooms.select')}</p>
      </div>
    );
  const view = a && a !== 'login' ? 'pane' : 'list';
  return (
    <div class="app" data-view={view} data-e2e={e2eState.ready ? e2eState.recovery : 'off'}>
      <Sidebar active={roomID} />
      <main class="main">
        <SignInAlerts />
        {pane}
      </main>
      <PictureViewer />
      <CallScreen />
      <GroupCallScreen />
    </div>
  );
}

export function App(): JSX.Element {
  useLang();
  const [r, setR] = useState(route());
  const [phase, setPhase] = useState<'boot' | 'out' | 'in'>('boot');
  const [notice, setNotice] = useState('');
  useEffect(() => onRoute(() => setR(route())), []);
  const signedIn = (me: Me) => {
    void store.start(me).then(() => setPhase('in'));
    const p = route().parts[0];
    if (!p || publicPages.includes(p)) navigate('/', true);
  };
  useEffect(() => {
    store.onSignedOut = () => {
      setNotice(t('auth.signedOut'));
      setPhase('out');
      navigate('/login', true);
    };
    const p = route().parts[0];
    if (['setup', 'verify', 'reset', 'renew', 'invite'].includes(p ?? '') || !wasSignedIn()) {
      setPhase('out');
      return;
    }
    api.me().then(signedIn, (e) => {
      if (e?.status === 401 || e?.status === 403) setPhase('out');
      else {
        // Offline: start from the cache with what we knew.
        const me = JSON.parse(localStorage.getItem('relais.me') ?? 'null') as Me | null;
        if (me) signedIn(me);
        else setPhase('out');
      }
    });
  }, []);
  useEffect(() => {
    if (store.me) localStorage.setItem('relais.me', JSON.stringify(store.me));
  }, [phase]);
  if (phase === 'boot') return <div class="boot" aria-busy="true" />;
  const p = r.parts[0] ?? '';
  switch (p) {
    case 'setup':
      return <Setup />;
    case 'verify':
      return <Verify />;
    case 'reset':
      return <Reset />;
    case 'renew':
      return <Renew />;
    case 'invite':
      return <Invite onSignedIn={signedIn} />;
  }
  if (phase === 'in') return <Messenger />;
  if (p === 'register') return <Register />;
  if (p === 'forgot') return <Forgot />;
  return <Login onSignedIn={signedIn} notice={notice || (r.query.get('verified') ? t('auth.verified') : '')} />;
}
