// The composer: multi-line text (Enter sends, Shift+Enter goes to the next
// line), a draft kept per room, replies and edits, @mentions with
// completion from the room's members, and typing notices.

import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Ev } from '../codec';
import { decode, isMessage, referable, shown } from '../codec';
import { confirmFlags, unconfirmed } from '../crypto';
import { t } from '../i18n';
import { plain } from '../markdown';
import { Room, store } from '../store';
import { sendFiles } from '../uploads';
import { ExtBadge, Icon } from './common';
import { fold } from './hooks';

interface Props {
  room: Room;
  replyTo: Ev | null;
  editing: Ev | null;
  onCancel: () => void;
  onEditLast: (ev: Ev) => void;
}

interface Mention {
  user: string;
  name: string;
}

/** Attach is the file picker, and on phones a second button that opens
 * the camera or the photo library. */
function Attach({ onFiles }: { onFiles: (files: File[]) => void }): JSX.Element {
  const any = useRef<HTMLInputElement>(null);
  const photo = useRef<HTMLInputElement>(null);
  const phone = typeof matchMedia !== 'undefined' && matchMedia('(pointer: coarse)').matches;
  const picked = (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    const files = Array.from(input.files ?? []);
    input.value = '';
    if (files.length) onFiles(files);
  };
  return (
    <>
      <input ref={any} type="file" multiple hidden class="attach-input" onChange={picked} />
      <button class="icon-btn attach" aria-label={t('composer.attach')} title={t('composer.attach')} onClick={() => any.current?.click()}>
        <Icon name="attach" />
      </button>
      {phone && (
        <>
          <input ref={photo} type="file" accept="image/*" capture="environment" hidden class="camera-input" onChange={picked} />
          <button class="icon-btn camera" aria-label={t('composer.camera')} title={t('composer.camera')} onClick={() => photo.current?.click()}>
            <Icon name="camera" />
          </button>
        </>
      )}
    </>
  );
}

// A room opened from the keyboard hands the focus to its composer, even
// on a device whose main pointer is a finger.
let focusOnOpen = false;

/** focusComposer puts the focus in the composer of the room about to open
 * (or already open). */
export function focusComposer(): void {
  const el = document.querySelector<HTMLTextAreaElement>('.composer textarea');
  focusOnOpen = true;
  // The room may already be open: then no composer mounts to take it.
  requestAnimationFrame(() => {
    if (focusOnOpen && el?.isConnected) {
      focusOnOpen = false;
      el.focus();
    }
  });
}

export function Composer({ room, replyTo, editing, onCancel, onEditLast }: Props): JSX.Element {
  const ta = useRef<HTMLTextAreaElement>(null);
  const [text, setText] = useState(() => localStorage.getItem('draft:' + room.id) ?? '');
  const mentions = useRef<Mention[]>([]);
  const [query, setQuery] = useState<string | null>(null);
  const [pick, setPick] = useState(0);
  // A send waiting for the user to accept the room's flagged devices:
  // the text in the composer, or files.
  const [ask, setAsk] = useState<null | { files?: File[] }>(null);
  const needsConfirm = () => !!room.encrypted && unconfirmed(room.id).length > 0;
  const files = (list: File[]) => {
    if (needsConfirm()) setAsk({ files: list });
    else sendFiles(room.id, list);
  };
  const saveTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  // The Enter that sent a message must not leave a new line behind, even
  // when the key's character arrives after the keydown was handled.
  const justSent = useRef(0);

  useEffect(() => {
    if (editing) {
      setText(editing.body ?? '');
      requestAnimationFrame(() => {
        const el = ta.current;
        if (el) {
          el.focus();
          el.setSelectionRange(el.value.length, el.value.length);
        }
      });
    } else setText(localStorage.getItem('draft:' + room.id) ?? '');
  }, [editing]);

  useEffect(() => {
    if (replyTo) ta.current?.focus();
  }, [replyTo]);

  useEffect(() => {
    if (focusOnOpen || matchMedia('(pointer: fine)').matches) ta.current?.focus();
    focusOnOpen = false;
  }, [room.id]);

  // Grow with the text, up to a limit set in CSS.
  useEffect(() => {
    const el = ta.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = Math.min(el.scrollHeight + el.offsetHeight - el.clientHeight, 200) + 'px';
  }, [text]);

  const saveDraft = (v: string) => {
    if (editing) return;
    if (saveTimer.current) clearTimeout(saveTimer.current);
    saveTimer.current = setTimeout(() => {
      if (v.trim()) localStorage.setItem('draft:' + room.id, v);
      else localStorage.removeItem('draft:' + room.id);
    }, 300);
  };

  const candidates = (): Mention[] => {
    if (query === null) return [];
    const q = fold(query);
    return (room.members ?? [])
      .filter((m) => m.user !== store.me?.id && m.state === 'joined')
      .map((m) => ({ user: m.user, name: store.name(m.user) }))
      .filter((m) => fold(m.name).split(/\s+/).some((w) => w.startsWith(q)) || fold(m.name).startsWith(q))
      .slice(0, 6);
  };

  const detect = (el: HTMLTextAreaElement) => {
    const before = el.value.slice(0, el.selectionStart ?? el.value.length);
    const m = /(^|\s)@([\p{L}\p{N}._-]{0,30})$/u.exec(before);
    setQuery(m ? m[2] : null);
    setPick(0);
  };

  const complete = (m: Mention) => {
    const el = ta.current!;
    const pos = el.selectionStart ?? el.value.length;
    const before = el.value.slice(0, pos).replace(/@([\p{L}\p{N}._-]{0,30})$/u, '@' + m.name + ' ');
    const v = before + el.value.slice(pos);
    if (!mentions.current.some((x) => x.user === m.user)) mentions.current.push(m);
    // Set the value and the caret now, so that what is typed next goes
    // after the name.
    el.value = v;
    el.focus();
    el.setSelectionRange(before.length, before.length);
    setText(v);
    setQuery(null);
    saveDraft(v);
  };

  const submit = (confirmed = false) => {
    const body = text.replace(/\s+$/, '');
    if (!body.trim()) return;
    // Devices the user has not verified, or the node does not vouch for,
    // would read the message: ask first.
    if (!confirmed && needsConfirm()) {
      setAsk({});
      return;
    }
    setAsk(null);
    if (editing) {
      if (body !== editing.body) store.edit(room.id, editing.seq, body);
    } else {
      const ids = mentions.current.filter((m) => body.includes('@' + m.name)).map((m) => m.user);
      store.sendText(room.id, body, replyTo?.seq, ids);
      // A save still waiting would bring the sent text back as a draft.
      if (saveTimer.current) clearTimeout(saveTimer.current);
      saveTimer.current = null;
      localStorage.removeItem('draft:' + room.id);
    }
    mentions.current = [];
    justSent.current = Date.now();
    setText('');
    setQuery(null);
    onCancel();
  };

  const list = candidates();

  const onKeyDown = (e: KeyboardEvent) => {
    if (list.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        setPick((p) => (p + (e.key === 'ArrowDown' ? 1 : list.length - 1)) % list.length);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        complete(list[Math.min(pick, list.length - 1)]);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        setQuery(null);
        return;
      }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
      return;
    }
    if (e.key === 'Escape' && (replyTo || editing)) {
      e.preventDefault();
      if (editing) setText(localStorage.getItem('draft:' + room.id) ?? '');
      onCancel();
      return;
    }
    if (e.key === 'ArrowUp' && !text && !editing) {
      const me = store.me?.id;
      for (let i = room.timeline.length - 1; i >= 0; i--) {
        const ev = room.timeline[i];
        if (ev.from === me && isMessage(ev) && decode(ev).kind === 'text' && referable(ev)) {
          e.preventDefault();
          onEditLast(shown(ev));
          return;
        }
      }
    }
  };

  const roomName = store.roomName(room);
  const flagged = ask ? unconfirmed(room.id) : [];
  return (
    <div class="composer">
      {ask && flagged.length > 0 && (
        <div class="composer-context warn" role="alertdialog" data-confirm="unverified">
          <Icon name="alert" size={16} />
          <span class="ctx-text">{t('composer.confirmUnverified', { names: [...new Set(flagged.map((f) => store.name(f.user) + ' (' + f.device + ')'))].join(', ') })}</span>
          <button
            class="link-btn"
            onClick={() => {
              confirmFlags(room.id);
              if (ask.files) {
                sendFiles(room.id, ask.files);
                setAsk(null);
              } else submit(true);
            }}
          >
            {t('composer.sendAnyway')}
          </button>
          <button class="icon-btn" aria-label={t('common.cancel')} onClick={() => setAsk(null)}>
            <Icon name="close" size={18} />
          </button>
        </div>
      )}
      {(replyTo || editing) && (
        <div class="composer-context">
          <Icon name={editing ? 'edit' : 'reply'} size={16} />
          <span class="ctx-text">
            {editing ? t('composer.editing') : t('composer.replyingTo', { name: store.name(replyTo!.from) })}
            {replyTo && <span class="ctx-quote">{plain(replyTo.body ?? '').slice(0, 100)}</span>}
          </span>
          <button
            class="icon-btn"
            aria-label={editing ? t('composer.cancelEdit') : t('composer.cancelReply')}
            onClick={() => {
              if (editing) setText(localStorage.getItem('draft:' + room.id) ?? '');
              onCancel();
            }}
          >
            <Icon name="close" size={18} />
          </button>
        </div>
      )}
      {list.length > 0 && (
        <ul class="mention-list" role="listbox" aria-label={t('composer.mentionList')}>
          {list.map((m, i) => (
            <li
              key={m.user}
              role="option"
              aria-selected={i === pick}
              class={i === pick ? 'picked' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                complete(m);
              }}
            >
              {m.name}
              {store.profile(m.user)?.ext && <ExtBadge />}
            </li>
          ))}
        </ul>
      )}
      <div class="composer-row">
        <Attach onFiles={files} />
        <textarea
          ref={ta}
          rows={1}
          value={text}
          maxLength={16000}
          placeholder={t('composer.placeholder')}
          aria-label={t('composer.label', { room: roomName })}
          aria-describedby="composer-hint"
          onInput={(e) => {
            let v = e.currentTarget.value;
            if (Date.now() - justSent.current < 500 && !v.trim()) v = e.currentTarget.value = '';
            setText(v);
            saveDraft(v);
            detect(e.currentTarget);
            if (v.trim()) store.typing(room.id, true);
          }}
          onKeyDown={onKeyDown}
          onPaste={(e) => {
            // Pasted pictures and files are sent; pasted text is text.
            const pasted = Array.from(e.clipboardData?.files ?? []);
            if (!pasted.length) return;
            e.preventDefault();
            files(pasted);
          }}
          onBlur={() => store.typing(room.id, false)}
        />
        <button class="send" aria-label={t('composer.send')} title={t('composer.send')} disabled={!text.trim()} onClick={() => submit()}>
          <Icon name={editing ? 'check' : 'send'} />
        </button>
      </div>
      <p id="composer-hint" class="visually-hidden">
        {t('composer.hint')}
      </p>
    </div>
  );
}
