// The timeline of a room, windowed: only the rows near the viewport are in
// the DOM, measured as they render; older pages load as the reader nears
// the top, and the view stays anchored while they arrive. New messages keep
// the view at the bottom when it was there.

import type { JSX } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Ev, isMessage, isVisible } from '../codec';
import { formatDay, lang, startOfDay, t } from '../i18n';
import type { OutEntry } from '../outbox';
import { Room, store } from '../store';
import { jumpDone, pendingJump } from '../search';
import { roomUploads, Upload } from '../uploads';
import { Anchor, atBottom, Heights } from '../vlist';
import { Icon } from './common';
import { UploadRow } from './Files';
import { Message, PendingMessage, Status, SystemLine } from './Message';

interface Row {
  key: string;
  kind: 'day' | 'msg' | 'sys' | 'pending' | 'upload' | 'top';
  ev?: Ev;
  out?: OutEntry;
  up?: Upload;
  grouped?: boolean;
  day?: number;
}

const groupWindow = 5 * 60 * 1000;

export function buildRows(room: Room, pending: OutEntry[], ups: Upload[] = []): Row[] {
  const rows: Row[] = [{ key: room.more ? 'loading' : 'start', kind: 'top' }];
  let day = 0;
  let prev: Ev | null = null;
  for (const ev of room.timeline) {
    if (!isVisible(ev)) continue;
    const d = startOfDay(ev.ts);
    if (d !== day) {
      rows.push({ key: 'd' + d, kind: 'day', day: d });
      day = d;
      prev = null;
    }
    if (isMessage(ev)) {
      const grouped = !!prev && prev.from === ev.from && ev.ts - prev.ts < groupWindow && !ev.reply_to;
      rows.push({ key: 'e' + ev.seq, kind: 'msg', ev, grouped });
      prev = ev;
    } else {
      rows.push({ key: 'e' + ev.seq, kind: 'sys', ev });
      prev = null;
    }
  }
  for (const e of pending) rows.push({ key: 'p' + e.id, kind: 'pending', out: e });
  for (const u of ups) rows.push({ key: 'u' + u.key, kind: 'upload', up: u });
  return rows;
}

/** statusOf tells how far one's own message went: read when another
 * member's read marker passed it. */
function readersOf(room: Room, seq: number): string[] {
  const me = store.me?.id;
  return Object.entries(room.receipts)
    .filter(([u, s]) => u !== me && s >= seq)
    .map(([u]) => u);
}

interface Props {
  room: Room;
  onReply: (ev: Ev) => void;
  onEdit: (ev: Ev) => void;
}

const overscan = 600;

/** anchorAt anchors on the first event row at the top of the view: the
 * "loading" row and the day separators keep their place when older pages
 * arrive, so they cannot anchor. */
function anchorAt(h: Heights, scrollTop: number): Anchor | null {
  if (h.length === 0) return null;
  let i = h.indexAt(scrollTop);
  while (i < h.length - 1 && !h.keyAt(i).startsWith('e')) i++;
  return { key: h.keyAt(i), delta: scrollTop - h.offset(i) };
}

export function Timeline({ room, onReply, onEdit }: Props): JSX.Element {
  const scroller = useRef<HTMLDivElement>(null);
  const inner = useRef<HTMLDivElement>(null);
  const heights = useMemo(() => new Heights(72), [room.id]);
  const st = useRef({ stick: true, scrollTop: 0, viewport: 600, anchor: null as Anchor | null, frame: 0, first: true, flash: '' });
  const [, force] = useState(0);
  const [selected, setSelected] = useState<number | null>(null);
  const version = store.version.get('room:' + room.id) ?? 0;
  const rows = useMemo(() => buildRows(room, store.pending(room.id), roomUploads(room.id)), [room.id, version, lang()]);

  // Remember what is at the top of the view before the rows change, then
  // work out where the view must be with the new rows.
  const s = st.current;
  const el = scroller.current;
  // A scroll the scroll event has not reported yet (it comes at the next
  // frame) must not be undone by this render.
  if (el && Math.abs(el.scrollTop - s.scrollTop) > 1) {
    s.scrollTop = el.scrollTop;
    s.stick = atBottom(el.scrollTop, el.clientHeight, el.scrollHeight);
  }
  if (el && !s.stick) s.anchor = anchorAt(heights, el.scrollTop);
  heights.setKeys(rows.map((r) => r.key));
  // A search result asked for this message: show it a third down the
  // view once its page is loaded (the effect below loads older pages).
  const jump = pendingJump(room.id);
  if (jump !== null && (rows.some((r) => r.key === 'e' + jump) || !room.more)) {
    jumpDone();
    if (rows.some((r) => r.key === 'e' + jump)) {
      s.stick = false;
      s.anchor = { key: 'e' + jump, delta: -Math.round(s.viewport / 3) };
      s.flash = 'e' + jump;
    }
  }
  if (s.stick) s.scrollTop = Math.max(0, heights.total() - s.viewport);
  else if (s.anchor) s.scrollTop = heights.scrollFor(s.anchor) ?? s.scrollTop;
  const { start, end } = heights.range(s.scrollTop, s.viewport, overscan);

  // The last own message that someone read carries "read by".
  const me = store.me?.id;
  let lastRead = 0;
  for (let i = room.timeline.length - 1; i >= 0 && i >= room.timeline.length - 300; i--) {
    const ev = room.timeline[i];
    if (ev.from === me && isMessage(ev) && readersOf(room, ev.seq).length) {
      lastRead = ev.seq;
      break;
    }
  }

  useLayoutEffect(() => {
    const el = scroller.current;
    const box = inner.current;
    if (!el || !box) return;
    s.viewport = el.clientHeight || s.viewport;
    if (Math.abs(el.scrollTop - s.scrollTop) > 1 && !s.stick && !s.anchor) s.scrollTop = el.scrollTop;
    let changed = false;
    for (const child of Array.from(box.children) as HTMLElement[]) {
      const k = child.dataset.key;
      if (k) changed = heights.set(k, child.offsetHeight) || changed;
    }
    let want = s.scrollTop;
    if (s.stick) want = Math.max(0, heights.total() - s.viewport);
    else if (s.anchor) want = heights.scrollFor(s.anchor) ?? want;
    if (Math.abs(el.scrollTop - want) > 1) el.scrollTop = want;
    s.scrollTop = el.scrollTop;
    if (changed) force((n) => n + 1);
    else if (s.first && rows.length > 1) {
      s.first = false;
      if (performance.getEntriesByName('relais:switch-start').length) {
        performance.measure('relais:switch', 'relais:switch-start');
        performance.clearMarks('relais:switch-start');
      }
    }
  });

  // Load older events while the top of the loaded part is near.
  useEffect(() => {
    if (room.more && !room.loadingOlder && (s.scrollTop < 1500 || pendingJump(room.id) !== null)) void store.loadOlder(room.id);
  });

  useEffect(() => {
    const el = scroller.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(() => {
      s.viewport = el.clientHeight;
      force((n) => n + 1);
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    s.scrollTop = el.scrollTop;
    s.viewport = el.clientHeight;
    s.stick = atBottom(el.scrollTop, el.clientHeight, el.scrollHeight);
    s.anchor = s.stick ? null : anchorAt(heights, el.scrollTop);
    if (!s.frame)
      s.frame = requestAnimationFrame(() => {
        s.frame = 0;
        const r = heights.range(s.scrollTop, s.viewport, overscan);
        if (r.start !== start || r.end !== end || room.more) force((n) => n + 1);
      });
  };

  const items: JSX.Element[] = [];
  for (let i = start; i < end; i++) {
    const row = rows[i];
    let body: JSX.Element;
    switch (row.kind) {
      case 'top':
        body = <div class="tl-top">{room.more ? t('room.loadingHistory') : t('room.start')}</div>;
        break;
      case 'day':
        body = (
          <div class="day" role="separator">
            <span>{formatDay(row.day!)}</span>
          </div>
        );
        break;
      case 'sys':
        body = <SystemLine ev={row.ev!} />;
        break;
      case 'pending':
        body = <PendingMessage e={row.out!} />;
        break;
      case 'upload':
        body = <UploadRow u={row.up!} />;
        break;
      default: {
        const ev = row.ev!;
        let status: Status | undefined;
        let readers: string[] | undefined;
        if (ev.from === me) {
          const rs = readersOf(room, ev.seq);
          status = rs.length ? 'read' : 'sent';
          if (ev.seq === lastRead) readers = rs;
        }
        body = (
          <Message
            room={room}
            ev={ev}
            grouped={!!row.grouped}
            status={status}
            readers={readers}
            selected={selected === ev.seq}
            onSelect={setSelected}
            onReply={onReply}
            onEdit={onEdit}
          />
        );
      }
    }
    items.push(
      <div key={row.key} data-key={row.key} class={row.key === s.flash ? 'row flash' : 'row'}>
        {body}
      </div>,
    );
  }

  return (
    <div class="timeline-wrap">
      <div class="timeline" ref={scroller} onScroll={onScroll} role="log" aria-label={t('tl.messages')} aria-live="polite" aria-relevant="additions" data-room={room.id}>
        <div ref={inner} class="timeline-inner">
          <div class="spacer" style={{ height: heights.offset(start) + 'px' }} />
          {items}
          <div class="spacer" style={{ height: heights.total() - heights.offset(end) + 'px' }} />
        </div>
      </div>
      {!s.stick && (
        <button
          class="jump"
          aria-label={t('room.jumpBottom')}
          title={t('room.jumpBottom')}
          onClick={() => {
            s.stick = true;
            s.anchor = null;
            force((n) => n + 1);
          }}
        >
          <Icon name="down" />
          {room.unread > 0 && <span class="badge">{room.unread}</span>}
        </button>
      )}
    </div>
  );
}
