// A room: header, invitation card, timeline, who is typing, composer.

import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Ev } from '../codec';
import { confirmFlags, e2eState, unconfirmed } from '../crypto';
import { t } from '../i18n';
import { errorText, store } from '../store';
import { scansEncryptedFiles, sendFiles } from '../uploads';
import { Avatar, ErrorBox, ExtBadge, Icon } from './common';
import { CallButtons, GroupCallButton } from './Call';
import { Composer } from './Composer';
import { hasFiles } from './Files';
import { useLang, useTopics } from './hooks';
import { navigate } from './router';
import { Timeline } from './Timeline';

function Typing({ roomID }: { roomID: string }): JSX.Element {
  const r = store.rooms.get(roomID);
  const users = r ? Object.keys(r.typing) : [];
  let text = '';
  if (users.length === 1) text = t('tl.typing1', { a: store.name(users[0]) });
  else if (users.length === 2) text = t('tl.typing2', { a: store.name(users[0]), b: store.name(users[1]) });
  else if (users.length > 2) text = t('tl.typingMany');
  return (
    <div class="typing" aria-live="polite">
      {text}
    </div>
  );
}

function Invitation({ id }: { id: string }): JSX.Element {
  const r = store.rooms.get(id)!;
  const [err, setErr] = useState('');
  return (
    <div class="invitation">
      <Avatar id={r.id} name={store.roomName(r)} group={r.kind !== 'direct'} size={64} />
      <h3>{store.roomName(r)}</h3>
      {r.topic && <p>{r.topic}</p>}
      <p>{t('room.invitation', { name: store.name(r.invited_by ?? '') })}</p>
      <ErrorBox text={err} />
      <div class="actions">
        <button class="primary" onClick={() => store.request({ t: 'join', room: id }).catch((e) => setErr(errorText(e)))}>
          {t('room.accept')}
        </button>
        <button
          class="secondary"
          onClick={() =>
            store.request({ t: 'leave', room: id }).then(
              () => navigate('/'),
              (e) => setErr(errorText(e)),
            )
          }
        >
          {t('room.decline')}
        </button>
      </div>
    </div>
  );
}

/** DeviceWarning tells, in an encrypted room, that someone verified has a
 * device that was not there when they were verified. */
function DeviceWarning({ roomID }: { roomID: string }): JSX.Element | null {
  const r = store.rooms.get(roomID);
  if (!r?.encrypted) return null;
  const me = store.me?.id;
  const changed = (r.members ?? []).filter((m) => m.user !== me && m.state === 'joined' && e2eState.changed.has(m.user));
  // Leaves of the group itself that the node does not vouch for: shown
  // whoever they belong to, verified or not.
  const odd = (e2eState.flags.get(roomID) ?? []).filter((f) => f.why !== 'unverified');
  if (!changed.length && !odd.length) return null;
  return (
    <div class="banner warn" role="alert" data-warning={odd.length ? 'ghost' : 'device'}>
      {odd.map((f) => (
        <p key={f.user + '/' + f.device + f.why} data-flag={f.why}>
          <Icon name="alert" size={16} /> {t(f.why === 'inactive' ? 'room.inactiveDevice' : 'room.ghostDevice', { name: store.name(f.user), device: f.tag })}
        </p>
      ))}
      {changed.map((m) => (
        <p key={m.user}>
          <Icon name="alert" size={16} /> {t('room.changedDevices', { name: store.name(m.user) })}{' '}
          <button class="link-btn" onClick={() => navigate('/room/' + roomID + '/verify/' + m.user)}>
            {t('room.verify')}
          </button>
        </p>
      ))}
    </div>
  );
}

export function RoomView({ id }: { id: string }): JSX.Element {
  useTopics('room:' + id, 'profiles', 'presence', 'rooms', 'e2e', 'scanner');
  useLang();
  const [replyTo, setReplyTo] = useState<Ev | null>(null);
  const [editing, setEditing] = useState<Ev | null>(null);
  const [dragging, setDragging] = useState(false);
  const drags = useRef(0);
  useEffect(() => {
    setReplyTo(null);
    setEditing(null);
  }, [id]);
  const r = store.rooms.get(id);
  if (!r) {
    return (
      <section class="room">
        <p class="empty">{t('common.loading')}</p>
      </section>
    );
  }
  const name = store.roomName(r);
  const droppable = r.state === 'joined';
  const peer = r.kind === 'direct' ? store.dmPeer(r) : undefined;
  const pp = peer ? store.profile(peer) : undefined;
  let sub = '';
  if (r.kind === 'direct') sub = peer && store.presence.get(peer) === 'online' ? t('room.online') : (pp?.org ?? '');
  else sub = t('room.members', { count: r.count });
  // Asked of the node only in encrypted rooms, where it changes what
  // end-to-end encryption means for files.
  const scanned = r.encrypted ? scansEncryptedFiles() : null;
  return (
    <section
      class={'room' + (dragging ? ' dragging' : '')}
      aria-label={name}
      data-room={id}
      data-scanning={String(scanned)}
      onDragEnter={(e) => {
        if (!droppable || !hasFiles(e)) return;
        e.preventDefault();
        drags.current++;
        setDragging(true);
      }}
      onDragOver={(e) => {
        if (!droppable || !hasFiles(e)) return;
        e.preventDefault();
        e.dataTransfer!.dropEffect = 'copy';
      }}
      onDragLeave={() => {
        if (--drags.current <= 0) {
          drags.current = 0;
          setDragging(false);
        }
      }}
      onDrop={(e) => {
        drags.current = 0;
        setDragging(false);
        const files = Array.from(e.dataTransfer?.files ?? []);
        if (!droppable || !files.length) return;
        e.preventDefault();
        // Like the composer: flagged devices would read the files.
        const flagged = r.encrypted ? unconfirmed(id) : [];
        if (flagged.length) {
          const names = [...new Set(flagged.map((f) => store.name(f.user) + ' (' + f.device + ')'))].join(', ');
          if (!confirm(t('composer.confirmUnverified', { names }))) return;
          confirmFlags(id);
        }
        sendFiles(id, files);
      }}
    >
      {dragging && (
        <div class="drop-overlay" aria-hidden="true">
          <Icon name="attach" size={32} />
          <span>{t('room.dropHere')}</span>
        </div>
      )}
      <header class="room-header">
        <button class="icon-btn back" onClick={() => navigate('/')} aria-label={t('room.back')}>
          <Icon name="back" />
        </button>
        <Avatar id={peer ?? r.id} name={name} group={r.kind !== 'direct'} size={36} />
        <div class="room-title">
          <h2>
            {name}
            {pp?.ext && <ExtBadge />}
          </h2>
          <p class="room-sub">
            <span class="room-sub-text">{sub}</span>
            {r.externals && <span class="chip">{t('room.externals')}</span>}
            {r.encrypted && (
              <span class="chip">
                <Icon name="lock" size={12} /> {t('room.encrypted')}
              </span>
            )}
            {r.encrypted && scanned && (
              <span class="chip" data-notice="scanned" title={t('room.scannedFilesHint')}>
                {t('room.scannedFiles')}
              </span>
            )}
          </p>
        </div>
        {r.state === 'joined' && r.kind === 'direct' && r.encrypted && peer && <CallButtons room={id} peer={peer} />}
        {r.state === 'joined' && r.kind === 'group' && r.encrypted && <GroupCallButton room={id} members={r.count} />}
        {r.state === 'joined' && (
          <button class="icon-btn" id="room-search" onClick={() => navigate('/search?room=' + id)} aria-label={t('search.open')} title={t('search.open')}>
            <Icon name="search" />
          </button>
        )}
        {r.state === 'joined' && (
          <button class="icon-btn" onClick={() => navigate('/room/' + id + '/info')} aria-label={t('room.info')} title={t('room.info')}>
            <Icon name="info" />
          </button>
        )}
      </header>
      {r.state === 'invited' ? (
        <Invitation id={id} />
      ) : (
        <>
          <DeviceWarning roomID={id} />
          <Timeline
            key={id}
            room={r}
            onReply={(ev) => {
              setEditing(null);
              setReplyTo(ev);
            }}
            onEdit={(ev) => {
              setReplyTo(null);
              setEditing(ev);
            }}
          />
          <Typing roomID={id} />
          <Composer
            key={id}
            room={r}
            replyTo={replyTo}
            editing={editing}
            onCancel={() => {
              setReplyTo(null);
              setEditing(null);
            }}
            onEditLast={(ev) => setEditing(ev)}
          />
        </>
      )}
    </section>
  );
}
