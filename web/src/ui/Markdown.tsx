// Renders the markdown tree as elements. User text only ever becomes text
// nodes and attributes Preact sets safely; links open in a new tab without
// a referrer.

import type { JSX } from 'preact';
import { Block, Inline, MentionTarget, parse } from '../markdown';
import { store } from '../store';

function inline(n: Inline, k: number): JSX.Element | string {
  switch (n.t) {
    case 'text':
      return n.v;
    case 'br':
      return <br key={k} />;
    case 'code':
      return <code key={k}>{n.v}</code>;
    case 'b':
      return <strong key={k}>{n.c.map(inline)}</strong>;
    case 'i':
      return <em key={k}>{n.c.map(inline)}</em>;
    case 's':
      return <del key={k}>{n.c.map(inline)}</del>;
    case 'link':
      return (
        <a key={k} href={n.href} target="_blank" rel="noopener noreferrer nofollow">
          {n.c.map(inline)}
        </a>
      );
    case 'mention':
      return (
        <span key={k} class={'mention' + (n.user === store.me?.id ? ' mention-me' : '')}>
          @{n.v}
        </span>
      );
  }
}

function block(b: Block, k: number): JSX.Element {
  switch (b.t) {
    case 'p':
      return <p key={k}>{b.c.map(inline)}</p>;
    case 'pre':
      return (
        <pre key={k}>
          <code>{b.v}</code>
        </pre>
      );
    case 'quote':
      return <blockquote key={k}>{b.c.map(block)}</blockquote>;
  }
}

export function Markdown({ src, mentions }: { src: string; mentions?: string[] }): JSX.Element {
  const targets: MentionTarget[] = (mentions ?? []).map((u) => ({ user: u, name: store.name(u) }));
  return <div class="md">{parse(src, { mentions: targets }).map(block)}</div>;
}
