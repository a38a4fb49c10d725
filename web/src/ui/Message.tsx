// One row of the timeline: a message (with its reply preview, reactions,
// status and actions), a membership or settings line, or a day separator.

import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { decode, Ev, referable, removedByServer, shown } from '../codec';
import { e2eState, Note, plainOf } from '../crypto';
import { CallLine, callText } from './Call';
import { formatTime, t } from '../i18n';
import { plain } from '../markdown';
import type { OutEntry } from '../outbox';
import { Room, store } from '../store';
import { Avatar, ExtBadge, Icon } from './common';
import { FileBlock } from './Files';
import { useTopics } from './hooks';
import { Markdown } from './Markdown';

export const quickReactions = ['👍', '❤️', '😂', '😮', '😢', '🙏', '✅'];

export type Status = 'pending' | 'sent' | 'read' | 'failed';

export function StatusIcon({ status, label }: { status: Status; label?: string }): JSX.Element {
  const icon = { pending: 'clock', sent: 'check', read: 'checks', failed: 'alert' }[status];
  const text = label ?? t(('tl.' + status) as 'tl.sent');
  return (
    <span class={'status status-' + status} role="img" aria-label={text} title={text} data-status={status}>
      <Icon name={icon} size={16} />
    </span>
  );
}

function noteText(n: Note): string {
  const me = store.me?.id;
  switch (n.k) {
    case 'add':
      return t('tl.e2e.add', { name: store.name(n.by), target: store.name(n.user) });
    case 'remove':
      return n.user === me ? t('tl.e2e.removedMe', { name: store.name(n.by) }) : t('tl.e2e.remove', { name: store.name(n.by), target: store.name(n.user) });
    case 'device':
      return t('tl.e2e.device', { name: store.name(n.user), device: n.name || n.tag || n.device });
    case 'device_remove':
      return t('tl.e2e.deviceRemove', { name: store.name(n.user), device: n.tag || n.device });
    case 'welcome':
      return t('tl.e2e.welcome');
    case 'founded':
      return t('tl.e2e.founded', { name: store.name(n.by) });
  }
}

/** CommitLine shows what a commit changed in who can read the room, or
 * that it was refused. */
function CommitLine({ ev }: { ev: Ev }): JSX.Element | null {
  const p = plainOf(ev.room, ev.seq);
  if (!p) return null;
  if (!p.ok) {
    return (
      <div class="sys warn" role="note" data-commit="refused">
        <span>
          <Icon name="alert" size={14} /> {p.reason === 'refused' ? t('tl.e2e.refused') : t('tl.e2e.lost')}
          {p.detail && <span class="sys-detail"> ({p.detail})</span>}
        </span>
      </div>
    );
  }
  if (p.kind !== 'commit') return null;
  return (
    <div class="sys e2e" data-commit="ok">
      {p.notes.map((n, i) => (
        <span key={i} class={n.k === 'device' && n.unverified ? 'warn' : undefined}>
          <Icon name={n.k === 'device' && n.unverified ? 'alert' : 'lock'} size={12} /> {noteText(n)}
          {n.k === 'device' && n.unverified ? ' ' + t('tl.e2e.unverified') : ''}
        </span>
      ))}
    </div>
  );
}

export function SystemLine({ ev }: { ev: Ev }): JSX.Element {
  if (ev.type === 'mls_commit') return <CommitLine ev={ev} />;
  const name = store.name(ev.from);
  let text = '';
  if (ev.type === 'create') text = t('tl.created', { name });
  else if (ev.type === 'member') {
    const target = store.name(ev.user ?? '');
    const key = ('tl.member.' + ev.action) as 'tl.member.join';
    text = t(key, { name, target, role: t(('room.role.' + (ev.role || 'member')) as 'room.role.member').toLowerCase() });
  } else if (ev.type === 'settings') {
    if (ev.name !== undefined) text = t('tl.settings.name', { name, value: ev.name });
    else if (ev.topic !== undefined) text = t('tl.settings.topic', { name });
    else text = t('tl.settings.externals', { name });
  }
  return (
    <div class="sys">
      <span>{text}</span>
    </div>
  );
}

function ReplyQuote({ room, seq }: { room: Room; seq: number }): JSX.Element {
  const first = room.timeline[0]?.seq ?? 0;
  const target = seq >= first ? room.timeline[seq - first] : undefined;
  if (!target || target.seq !== seq) return <div class="reply-quote">{t('tl.replyUnknown')}</div>;
  const c = decode(target);
  return (
    <div class="reply-quote">
      <span class="reply-name">{store.name(target.from)}</span>
      <span class="reply-text">
        {c.kind === 'text' ? plain(c.body).slice(0, 160) : c.kind === 'deleted' ? t('tl.deleted') : c.kind === 'file' ? t('tl.file', { name: c.file.name }) : c.kind === 'call' ? callText(c.call, c.from === store.me?.id) : t('rooms.encryptedPreview')}
      </span>
    </div>
  );
}

interface Props {
  room: Room;
  ev: Ev;
  grouped: boolean;
  status?: Status;
  readers?: string[];
  selected: boolean;
  onSelect: (seq: number | null) => void;
  onReply: (ev: Ev) => void;
  onEdit: (ev: Ev) => void;
}

/** unreadableText explains why a message cannot be read, rarely. */
function unreadableText(reason: string): string {
  switch (reason) {
    case 'before_join':
      return t('tl.unreadable.beforeJoin') + (e2eState.recovery === 'needed' ? ' ' + t('tl.unreadable.restoreHint') : '');
    case 'missing_key':
      return t('tl.unreadable.missingKey');
    case 'forged':
      return t('tl.unreadable.forged');
    case 'removed':
      return t('tl.unreadable.removed');
    case 'pending':
      return t('tl.unreadable.pending');
    default:
      return t('tl.unreadable.invalid');
  }
}

export function Message({ room, ev: raw, grouped, status, readers, selected, onSelect, onReply, onEdit }: Props): JSX.Element {
  const me = store.me?.id;
  const ev = shown(raw);
  const mine = ev.from === me;
  const c = decode(raw);
  const [picking, setPicking] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const profile = store.profile(ev.from);
  // A message the node already removed can still be deleted by its
  // author (inside the encryption), by nobody else.
  const canDelete = !ev.deleted && (mine || (!raw.deleted && room.kind !== 'direct' && (room.role === 'owner' || room.role === 'moderator')));
  const showName = !grouped && !mine && room.kind !== 'direct';
  const reactions = Object.entries(ev.reactions ?? {});
  // Encrypted messages of payload version 1 have no id to be referred to.
  const refs = referable(raw);
  const authorLabel = store.name(ev.from) + (profile?.ext ? ' (' + t('common.external') + ')' : '');
  return (
    <div
      class={'msg' + (mine ? ' mine' : '') + (grouped ? ' grouped' : '') + (selected ? ' selected' : '') + (ev.deleted ? ' deleted' : '')}
      data-seq={ev.seq}
      data-from={mine ? 'me' : 'other'}
      tabIndex={0}
      aria-label={authorLabel + ', ' + formatTime(ev.ts)}
      onClick={(e) => {
        if ((e.target as HTMLElement).closest('a,button')) return;
        onSelect(selected ? null : ev.seq);
      }}
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          setPicking(false);
          setConfirming(false);
          onSelect(null);
        }
      }}
    >
      {!mine && <div class="msg-avatar">{!grouped && <Avatar id={ev.from} name={store.name(ev.from)} size={32} />}</div>}
      <div class="bubble">
        {showName && (
          <div class="msg-author">
            <span class="author-name">{store.name(ev.from)}</span>
            {profile?.ext && <ExtBadge />}
            {profile?.org && <span class="person-org">{profile.org}</span>}
          </div>
        )}
        {!showName && profile?.ext && !mine && !grouped && (
          <div class="msg-author">
            <ExtBadge />
          </div>
        )}
        {ev.reply_to && !ev.deleted ? <ReplyQuote room={room} seq={ev.reply_to} /> : null}
        {c.kind === 'text' && <Markdown src={c.body} mentions={ev.mentions} />}
        {c.kind === 'deleted' && <p class="muted">{t('tl.deleted')}</p>}
        {c.kind === 'call' && <CallLine c={c.call} mine={c.from === store.me?.id} />}
        {c.kind === 'unreadable' &&
          (c.reason === 'pending' ? (
            <p class="muted decrypting">{unreadableText(c.reason)}</p>
          ) : (
            <p class="muted unreadable" data-reason={c.reason}>
              <Icon name="lock" size={14} /> {unreadableText(c.reason)}
            </p>
          ))}
        {c.kind === 'file' && <FileBlock f={c.file} room={room.id} mine={mine} />}
        {c.kind === 'file' && c.body && <Markdown src={c.body} mentions={ev.mentions} />}
        <div class="msg-meta">
          {ev.edited && !ev.deleted ? <span class="edited">{t('tl.edited')}</span> : null}
          {removedByServer(raw) && (
            <span class="removed-mark" title={t('tl.removedByServerHint')}>
              {t('tl.removedByServer')}
            </span>
          )}
          <time dateTime={new Date(ev.ts).toISOString()}>{formatTime(ev.ts)}</time>
          {mine && status && !ev.deleted && <StatusIcon status={status} />}
        </div>
        {reactions.length > 0 && (
          <div class="reactions">
            {reactions.map(([key, users]) => (
              <button
                key={key}
                class={'reaction' + (me && users.includes(me) ? ' own' : '')}
                aria-pressed={!!me && users.includes(me)}
                title={t('tl.reactions', { key, names: users.map((u) => store.name(u)).join(', ') })}
                aria-label={t('tl.reactions', { key, names: users.map((u) => store.name(u)).join(', ') })}
                onClick={() => store.toggleReaction(room.id, ev.seq, key)}
              >
                {key} <span class="count">{users.length}</span>
              </button>
            ))}
          </div>
        )}
        {readers && readers.length > 0 && !ev.deleted && (
          <div class="read-by">{room.kind === 'direct' ? t('tl.read') : t('tl.readBy', { names: readers.map((u) => store.name(u)).join(', ') })}</div>
        )}
      </div>
      {!ev.deleted && c.kind !== 'unreadable' && (
        <div class="msg-actions" role="toolbar" aria-label={t('tl.actions')}>
          {refs && (
            <button class="icon-btn" aria-label={t('tl.react')} title={t('tl.react')} aria-expanded={picking} onClick={() => setPicking(!picking)}>
              <Icon name="smile" size={18} />
            </button>
          )}
          {refs && (
            <button class="icon-btn" aria-label={t('tl.reply')} title={t('tl.reply')} onClick={() => onReply(ev)}>
              <Icon name="reply" size={18} />
            </button>
          )}
          {refs && mine && c.kind === 'text' && (
            <button class="icon-btn" aria-label={t('tl.edit')} title={t('tl.edit')} onClick={() => onEdit(ev)}>
              <Icon name="edit" size={18} />
            </button>
          )}
          {canDelete &&
            (confirming ? (
              <button class="danger small" onClick={() => (store.remove(room.id, ev.seq), setConfirming(false))}>
                {t('common.delete')}
              </button>
            ) : (
              <button class="icon-btn" aria-label={t('common.delete')} title={t('common.delete')} onClick={() => setConfirming(true)}>
                <Icon name="trash" size={18} />
              </button>
            ))}
          {picking && (
            <div class="picker" role="group" aria-label={t('tl.react')}>
              {quickReactions.map((k) => (
                <button
                  key={k}
                  class="emoji"
                  aria-label={t('tl.reactWith', { key: k })}
                  onClick={() => {
                    store.toggleReaction(room.id, ev.seq, k);
                    setPicking(false);
                  }}
                >
                  {k}
                </button>
              ))}
            </div>
          )}
        </div>
      )}
    </div>
  );
}

export function PendingMessage({ e }: { e: OutEntry }): JSX.Element {
  useTopics('status');
  const status: Status = e.state === 'failed' ? 'failed' : e.state === 'sent' ? 'sent' : 'pending';
  // A message held by a lost connection says so, not just that it waits.
  const label = status === 'pending' && store.status !== 'online' ? t('tl.waitingConnection') : undefined;
  return (
    <div class={'msg mine pending-msg' + (status === 'failed' ? ' failed' : '')} data-out={e.id} data-state={status}>
      <div class="bubble">
        <Markdown src={e.fields.body ?? ''} mentions={e.fields.mentions} />
        <div class="msg-meta">
          <time>{formatTime(e.created)}</time>
          <StatusIcon status={status} label={label} />
        </div>
        {status === 'failed' && (
          <div class="failed-actions">
            <span>{t('tl.failed')}</span>
            <button class="link-btn" onClick={() => store.outbox.retry(e.id)}>
              {t('common.retry')}
            </button>
            <button class="link-btn" onClick={() => void store.outbox.discard(e.id)}>
              {t('common.delete')}
            </button>
          </div>
        )}
      </div>
    </div>
  );
}
