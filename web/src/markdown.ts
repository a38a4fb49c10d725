// The markdown subset of messages, parsed into a small tree that the
// timeline renders as elements (never as HTML): **bold**, *italic* or
// _italic_, ~~strike~~, `code`, ``` code blocks ```, > quotes, explicit
// [links](https://…) and bare links, line breaks and @mentions. Anything
// else stays plain text.

export type Inline =
  | { t: 'text'; v: string }
  | { t: 'b' | 'i' | 's'; c: Inline[] }
  | { t: 'code'; v: string }
  | { t: 'link'; href: string; c: Inline[] }
  | { t: 'mention'; v: string; user: string }
  | { t: 'br' };

export type Block = { t: 'p'; c: Inline[] } | { t: 'pre'; v: string } | { t: 'quote'; c: Block[] };

/** A person who may be mentioned: "@" + name in the text. */
export interface MentionTarget {
  user: string;
  name: string;
}

export interface Options {
  mentions?: MentionTarget[];
}

const maxDepth = 8;

/** safeHref returns href if it is a link we let people follow, else "". */
export function safeHref(href: string): string {
  const s = href.trim();
  if (/^https?:\/\/[^\s<>"]+$/i.test(s) || /^mailto:[^\s<>"@]+@[^\s<>"]+$/i.test(s)) return s;
  return '';
}

export function parse(src: string, opts: Options = {}): Block[] {
  return parseBlocks(src.replace(/\r\n?/g, '\n').split('\n'), opts, 0);
}

function parseBlocks(lines: string[], opts: Options, depth: number): Block[] {
  const out: Block[] = [];
  let para: string[] = [];
  const flush = () => {
    if (para.length) {
      const c: Inline[] = [];
      para.forEach((l, i) => {
        if (i > 0) c.push({ t: 'br' });
        c.push(...parseInline(l, opts, 0));
      });
      out.push({ t: 'p', c });
      para = [];
    }
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = /^\s*```/.exec(line);
    if (fence) {
      // A fence closes at the next line starting with ```; an unclosed
      // one is plain text.
      let j = i + 1;
      while (j < lines.length && !/^\s*```\s*$/.test(lines[j])) j++;
      if (j < lines.length) {
        flush();
        const first = line.replace(/^\s*```/, '');
        const body = lines.slice(i + 1, j);
        // ```js on the opening line names a language: drop it. Text
        // right after the fence on one line is code.
        if (first.trim() !== '' && !/^[\w+-]+$/.test(first.trim())) body.unshift(first);
        out.push({ t: 'pre', v: body.join('\n') });
        i = j;
        continue;
      }
    }
    if (/^\s*>/.test(line) && depth < maxDepth) {
      flush();
      const q: string[] = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) {
        q.push(lines[i].replace(/^\s*> ?/, ''));
        i++;
      }
      i--;
      out.push({ t: 'quote', c: parseBlocks(q, opts, depth + 1) });
      continue;
    }
    if (line.trim() === '') {
      flush();
      continue;
    }
    para.push(line);
  }
  flush();
  return out;
}

const urlRe = /^https?:\/\/[^\s<>"]+/i;

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /[\p{L}\p{N}_]/u.test(c);
}

/** parseInline parses one line of text. */
export function parseInline(s: string, opts: Options = {}, depth = 0): Inline[] {
  const out: Inline[] = [];
  let buf = '';
  const text = () => {
    if (buf) {
      out.push({ t: 'text', v: buf });
      buf = '';
    }
  };
  const mentions = (opts.mentions ?? []).filter((m) => m.name).slice().sort((a, b) => b.name.length - a.name.length);
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    const rest = s.slice(i);
    if (c === '`') {
      const end = s.indexOf('`', i + 1);
      if (end > i + 1) {
        text();
        out.push({ t: 'code', v: s.slice(i + 1, end) });
        i = end + 1;
        continue;
      }
    }
    if (depth < maxDepth) {
      const em = emphasis(s, i, opts, depth);
      if (em) {
        text();
        out.push(em.node);
        i = em.end;
        continue;
      }
    }
    if (c === '[' && depth < maxDepth) {
      const m = /^\[([^\]\n]+)\]\(([^()\s]+)\)/.exec(rest);
      if (m) {
        const href = safeHref(m[2]);
        if (href) {
          text();
          out.push({ t: 'link', href, c: parseInline(m[1], opts, depth + 1) });
          i += m[0].length;
          continue;
        }
      }
    }
    if ((c === 'h' || c === 'H') && !isWordChar(s[i - 1])) {
      const m = urlRe.exec(rest);
      if (m) {
        let url = m[0];
        // Trailing punctuation ends the sentence, not the link; a closing
        // parenthesis belongs to the link only if it opened one.
        while (/[.,;:!?'"»)\]]$/.test(url)) {
          if (url.endsWith(')') && (url.match(/\(/g)?.length ?? 0) >= (url.match(/\)/g)?.length ?? 0)) break;
          url = url.slice(0, -1);
        }
        const href = safeHref(url);
        if (href) {
          text();
          out.push({ t: 'link', href, c: [{ t: 'text', v: url }] });
          i += url.length;
          continue;
        }
      }
    }
    if (c === '@' && !isWordChar(s[i - 1])) {
      const m = mentions.find((m) => rest.slice(1, 1 + m.name.length).toLowerCase() === m.name.toLowerCase() && !isWordChar(rest[1 + m.name.length]));
      if (m) {
        text();
        out.push({ t: 'mention', v: rest.slice(1, 1 + m.name.length), user: m.user });
        i += 1 + m.name.length;
        continue;
      }
    }
    buf += c;
    i++;
  }
  text();
  return out;
}

const delims: { d: string; t: 'b' | 'i' | 's'; word?: boolean }[] = [
  { d: '**', t: 'b' },
  { d: '__', t: 'b', word: true },
  { d: '~~', t: 's' },
  { d: '*', t: 'i' },
  { d: '_', t: 'i', word: true },
];

function emphasis(s: string, i: number, opts: Options, depth: number): { node: Inline; end: number } | null {
  for (const { d, t, word } of delims) {
    if (!s.startsWith(d, i)) continue;
    // Underscores inside words (snake_case) are not emphasis.
    if (word && isWordChar(s[i - 1])) continue;
    const start = i + d.length;
    if (start >= s.length || /\s/.test(s[start])) continue;
    let j = start;
    while (true) {
      j = s.indexOf(d, j + 1);
      if (j < 0) break;
      if (/\s/.test(s[j - 1])) continue;
      if (word && isWordChar(s[j + d.length])) continue;
      // "**" must not close a single "*".
      if (d === '*' && s[j + 1] === '*') {
        j++;
        continue;
      }
      const inner = s.slice(start, j);
      if (!inner) break;
      return { node: { t, c: parseInline(inner, opts, depth + 1) }, end: j + d.length };
    }
  }
  return null;
}

/** plain returns the text of a message without markup, for previews and
 * notifications. */
export function plain(src: string): string {
  const walk = (ns: Inline[]): string =>
    ns
      .map((n) => {
        switch (n.t) {
          case 'text':
          case 'code':
            return n.v;
          case 'mention':
            return '@' + n.v;
          case 'br':
            return ' ';
          default:
            return walk(n.c);
        }
      })
      .join('');
  const blocks = (bs: Block[]): string =>
    bs.map((b) => (b.t === 'p' ? walk(b.c) : b.t === 'pre' ? b.v : blocks(b.c))).join(' ');
  return blocks(parse(src)).replace(/\s+/g, ' ').trim();
}
