// The search panel: in one room or in all. The node searches the rooms it
// can read (forums, unencrypted groups); encrypted rooms are searched here,
// over the messages this device has decrypted and holds in memory.

import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { isMessage, shown } from '../codec';
import { formatDay, formatTime, t } from '../i18n';
import { errorText, store } from '../store';
import { Hit, jumpTo, match, parseQuery, pieces, Query } from '../search';
import { ErrorBox, Field, PaneHeader } from './common';
import { useLang, useTopics } from './hooks';
import { back, navigate } from './router';

interface Result {
  hits: Hit[] | null;
  more?: boolean;
  cursor?: string;
}

const pageSize = 20;

/** localHits searches the decrypted messages of the encrypted rooms in
 * scope (one room, or all that are loaded). */
function localHits(q: Query, room: string | null): Hit[] {
  const out: Hit[] = [];
  for (const r of store.rooms.values()) {
    if (!r.encrypted || (room && r.id !== room)) continue;
    for (const raw of r.timeline) {
      if (!isMessage(raw)) continue;
      const ev = shown(raw);
      if (ev.deleted || !ev.body) continue;
      const marks = match(q, ev.body);
      if (marks) out.push({ room: r.id, seq: ev.seq, ts: ev.ts, from: ev.from, body: ev.body, marks });
    }
  }
  return out.sort((a, b) => b.ts - a.ts).slice(0, 200);
}

export function SearchView({ room }: { room: string | null }): JSX.Element {
  useLang();
  useTopics('rooms');
  const scope = room ? store.rooms.get(room) : undefined;
  const encrypted = !!scope?.encrypted;
  const [q, setQ] = useState('');
  const [hits, setHits] = useState<Hit[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [err, setErr] = useState('');
  const ask = async (query: string, after: string | null): Promise<Result> => {
    if (encrypted) return { hits: [] };
    const f: Record<string, unknown> = { t: 'search', q: query, limit: pageSize };
    if (room) f.room = room;
    if (after) f.cursor = after;
    return store.request<Result>(f);
  };
  useEffect(() => {
    setErr('');
    const parsed = parseQuery(q);
    if (!parsed) {
      setHits(null);
      setCursor(null);
      return;
    }
    let live = true;
    // One query per pause in typing: the node limits searches.
    const timer = setTimeout(() => {
      ask(q, null).then(
        (res) => {
          if (!live) return;
          const all = [...(res.hits ?? []), ...localHits(parsed, room)].sort((a, b) => b.ts - a.ts);
          setHits(all);
          setCursor(res.more && res.cursor ? res.cursor : null);
        },
        (e) => live && setErr(errorText(e)),
      );
    }, 300);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [q, room]);
  const more = () => {
    if (!cursor) return;
    ask(q, cursor).then(
      (res) => {
        setHits((h) => [...(h ?? []), ...(res.hits ?? [])]);
        setCursor(res.more && res.cursor ? res.cursor : null);
      },
      (e) => setErr(errorText(e)),
    );
  };
  const open = (h: Hit) => {
    jumpTo(h.room, h.seq);
    navigate('/room/' + h.room);
  };
  const title = scope ? t('search.inRoom', { room: store.roomName(scope) }) : t('search.title');
  return (
    <section class="panel search-panel">
      <PaneHeader title={title} onBack={() => back(room ? '/room/' + room : '/')} />
      <div class="panel-body">
        <Field id="s-q" label={t('search.label')} hint={encrypted ? t('search.localHint') : undefined}>
          <input id="s-q" type="search" autoFocus value={q} enterKeyHint="search" onInput={(e) => setQ(e.currentTarget.value)} />
        </Field>
        <ErrorBox text={err} />
        {hits && hits.length === 0 && <p class="empty">{t('search.none')}</p>}
        <ul class="search-hits" aria-label={t('search.results')}>
          {(hits ?? []).map((h) => {
            const r = store.rooms.get(h.room);
            return (
              <li key={h.room + ':' + h.seq}>
                <button class="search-hit" data-room={h.room} data-seq={h.seq} onClick={() => open(h)}>
                  <span class="search-hit-head">
                    <span class="search-hit-who">
                      {store.name(h.from)}
                      {!room && r ? ' · ' + store.roomName(r) : ''}
                    </span>
                    <time dateTime={new Date(h.ts).toISOString()}>
                      {formatDay(h.ts)} {formatTime(h.ts)}
                    </time>
                  </span>
                  <span class="search-hit-body">
                    {pieces(h.body, h.marks).map((p, i) => (p.marked ? <mark key={i}>{p.text}</mark> : p.text))}
                  </span>
                </button>
              </li>
            );
          })}
        </ul>
        {cursor && (
          <button class="secondary" onClick={more}>
            {t('search.more')}
          </button>
        )}
      </div>
    </section>
  );
}
