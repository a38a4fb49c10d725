// The list of conversations: invitations first, then by last activity, with
// unread counts, mentions, the last message and a search box (Ctrl+K).

import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { decode } from '../codec';
import { formatShort, t } from '../i18n';
import { plain } from '../markdown';
import { Room, store } from '../store';
import { Avatar, ExtBadge, Icon } from './common';
import { focusComposer } from './Composer';
import { fold, useLang, useTopics } from './hooks';
import { navigate } from './router';
import { callText } from './Call';

let firstRender = true;

function preview(r: Room): string {
  const ev = store.lastMessage(r);
  if (!ev) return r.topic ?? '';
  const c = decode(ev);
  const text = c.kind === 'text' ? plain(c.body) : c.kind === 'deleted' ? t('rooms.deletedPreview') : c.kind === 'file' ? (c.file.name ? t('tl.file', { name: c.file.name }) : t('rooms.filePreview')) : c.kind === 'call' ? callText(c.call, c.from === store.me?.id) : t('rooms.encryptedPreview');
  if (r.kind === 'direct' && ev.from !== store.me?.id) return text;
  const who = ev.from === store.me?.id ? t('common.you') : store.name(ev.from);
  return t('rooms.previewBy', { name: who, text });
}

function RoomItem({ r, active }: { r: Room; active: boolean }): JSX.Element {
  const name = store.roomName(r);
  const peer = r.kind === 'direct' ? store.dmPeer(r) : undefined;
  const ext = peer ? store.profile(peer)?.ext : false;
  const invited = r.state === 'invited';
  const mentions = r.mentions + store.e2eMentions(r);
  const label = [
    name,
    invited ? t('rooms.invitedBy', { name: store.name(r.invited_by ?? '') }) : '',
    r.unread ? t('rooms.unread', { count: r.unread }) : '',
    mentions ? t('rooms.mentions', { count: mentions }) : '',
  ]
    .filter(Boolean)
    .join(', ');
  return (
    <li>
      <a
        href={'/room/' + r.id}
        class={'room-item' + (active ? ' active' : '') + (r.unread ? ' unread' : '')}
        aria-current={active ? 'page' : undefined}
        aria-label={label}
        data-room={r.id}
        onClick={(e) => {
          e.preventDefault();
          performance.mark('relais:switch-start');
          // detail is 0 for a click made with the keyboard (Enter).
          if (e.detail === 0) focusComposer();
          navigate('/room/' + r.id);
        }}
      >
        <Avatar id={peer ?? r.id} name={name} group={r.kind !== 'direct'} size={44} />
        <span class="room-main">
          <span class="room-top">
            <span class="room-name">
              {r.kind === 'forum' && <Icon name="forum" size={14} />}
              {name}
              {ext && <ExtBadge />}
            </span>
            {r.last_ts ? <span class="room-time">{formatShort(r.last_ts)}</span> : null}
          </span>
          <span class="room-bottom">
            <span class="room-preview">{invited ? t('rooms.invitedBy', { name: store.name(r.invited_by ?? '') }) : preview(r)}</span>
            {mentions > 0 && (
              <span class="badge mention-badge" aria-hidden="true">
                @
              </span>
            )}
            {r.unread > 0 && (
              <span class="badge" aria-hidden="true">
                {r.unread > 99 ? '99+' : r.unread}
              </span>
            )}
          </span>
        </span>
      </a>
    </li>
  );
}

export function RoomList({ active }: { active: string | null }): JSX.Element {
  useTopics('rooms', 'profiles', 'presence');
  useLang();
  const [q, setQ] = useState('');
  const search = useRef<HTMLInputElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k') {
        e.preventDefault();
        navigate('/');
        search.current?.focus();
        search.current?.select();
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);
  const all = store.sortedRooms();
  const fq = fold(q.trim());
  const rooms = fq ? all.filter((r) => fold(store.roomName(r)).includes(fq)) : all;
  useEffect(() => {
    if (firstRender && all.length > 0) {
      firstRender = false;
      performance.mark('relais:roomlist');
    }
  });
  return (
    <nav class="room-list" aria-label={t('rooms.list')}>
      <div class="search">
        <Icon name="search" size={18} />
        <input
          ref={search}
          type="search"
          placeholder={matchMedia('(pointer: fine)').matches ? t('rooms.searchShortcut') : t('rooms.search')}
          aria-label={t('rooms.search')}
          value={q}
          onInput={(e) => setQ(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && rooms[0]) {
              focusComposer();
              navigate('/room/' + rooms[0].id);
            }
            if (e.key === 'Escape') setQ('');
          }}
        />
      </div>
      {rooms.length === 0 ? (
        <p class="empty">{q ? t('rooms.noMatch') : t('rooms.empty')}</p>
      ) : (
        <ul class="rooms" role="list">
          {rooms.map((r) => (
            <RoomItem key={r.id} r={r} active={r.id === active} />
          ))}
        </ul>
      )}
    </nav>
  );
}
