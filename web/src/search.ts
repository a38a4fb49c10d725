// Search in the client: the query rules of the node's search
// (server/search), applied to the messages this device decrypted, so that
// encrypted rooms, which the node cannot read, are searched the same way;
// and the message a result jumps to.

/** Hit is one message found, by the node or here. marks are [start, end)
 * ranges of the words that matched, in UTF-16 units of body. */
export interface Hit {
  room: string;
  seq: number;
  ts: number;
  from: string;
  body: string;
  marks: [number, number][];
}

export interface Query {
  terms: string[];
  prefix: boolean;
}

const maxWord = 48;
const maxTerms = 8;
const letter = /[\p{L}\p{N}]/u;
const mark = /\p{Mn}/u;

function foldChar(c: string): string {
  switch (c) {
    case 'œ':
    case 'Œ':
      return 'oe';
    case 'æ':
    case 'Æ':
      return 'ae';
    case 'ß':
      return 'ss';
  }
  return c.normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase();
}

function cut(w: string): string {
  const b = new TextEncoder().encode(w);
  if (b.length <= maxWord) return w;
  let n = maxWord;
  while (n > 0 && (b[n] & 0xc0) === 0x80) n--;
  return new TextDecoder().decode(b.slice(0, n));
}

interface Token {
  word: string;
  start: number;
  end: number;
}

/** tokens splits text into folded words, as the node's index does. */
export function tokens(text: string): Token[] {
  const out: Token[] = [];
  let word = '';
  let start = -1;
  let i = 0;
  const flush = (end: number) => {
    if (start >= 0 && word) out.push({ word: cut(word), start, end });
    word = '';
    start = -1;
  };
  for (const c of text) {
    if (letter.test(c)) {
      if (start < 0) start = i;
      word += foldChar(c);
    } else if (!(mark.test(c) && start >= 0)) flush(i);
    i += c.length;
  }
  flush(i);
  return out;
}

/** parseQuery reads a typed query; null when it has no word or too many. */
export function parseQuery(q: string): Query | null {
  const toks = tokens(q);
  if (toks.length === 0 || toks.length > maxTerms) return null;
  const terms: string[] = [];
  toks.forEach((t, i) => {
    if (i === toks.length - 1 || !terms.includes(t.word)) terms.push(t.word);
  });
  return { terms, prefix: toks[toks.length - 1].end === q.length };
}

/** match returns the marks of q in text, or null when a term is missing. */
export function match(q: Query, text: string): [number, number][] | null {
  const found = q.terms.map(() => false);
  const marks: [number, number][] = [];
  for (const t of tokens(text)) {
    let hit = false;
    q.terms.forEach((term, i) => {
      if (t.word === term || (q.prefix && i === q.terms.length - 1 && t.word.startsWith(term))) found[i] = hit = true;
    });
    if (hit) marks.push([t.start, t.end]);
  }
  return found.every(Boolean) ? marks : null;
}

/** pieces cuts body into plain and marked parts, for display. */
export function pieces(body: string, marks: [number, number][]): { text: string; marked: boolean }[] {
  const out: { text: string; marked: boolean }[] = [];
  let at = 0;
  for (const [s, e] of marks) {
    if (s < at || e > body.length) continue;
    if (s > at) out.push({ text: body.slice(at, s), marked: false });
    out.push({ text: body.slice(s, e), marked: true });
    at = e;
  }
  if (at < body.length) out.push({ text: body.slice(at), marked: false });
  return out;
}

let jump: { room: string; seq: number } | null = null;

/** jumpTo asks the room's timeline to bring seq into view once loaded. */
export function jumpTo(room: string, seq: number): void {
  jump = { room, seq };
}

/** pendingJump is the message the room's timeline must bring into view. */
export function pendingJump(room: string): number | null {
  return jump && jump.room === room ? jump.seq : null;
}

export function jumpDone(): void {
  jump = null;
}
