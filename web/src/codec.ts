// The message codec: between the protocol's events and what the timeline
// shows, and between what people type and the "send" frames. Plaintext
// rooms carry "text" events; encrypted rooms carry "encrypted" events
// (MLS application messages) whose content the e2e chunk decrypts into
// the registry of crypto.ts, and "mls_commit" events shown as notices of
// who joined or left the encryption.

import { encryptionAvailable, plainOf, Unreadable, unreadableReason } from './crypto';
import type { SendFields } from './outbox';

/** Ev is an event of a room's log, as the node sends it. */
export interface Ev {
  t?: 'ev';
  room: string;
  seq: number;
  ts: number;
  from: string;
  dev?: string;
  cid?: string;
  type: string;
  body?: string;
  reply_to?: number;
  mentions?: string[];
  target?: number;
  key?: string;
  file?: { id: string; name: string; size: number; mime: string };
  data?: string;
  epoch?: number;
  deleted?: boolean;
  edited?: number;
  reactions?: Record<string, string[]>;
  user?: string;
  action?: string;
  role?: string;
  kind?: string;
  name?: string;
  topic?: string;
  externals?: boolean;
  encrypted?: boolean;
}

/** Content is a message as the timeline shows it. */
export type Content =
  | { kind: 'text'; body: string }
  | { kind: 'file'; name: string; body: string }
  | { kind: 'unreadable'; reason: Unreadable | 'pending' }
  | { kind: 'deleted' };

/** isMessage tells events shown as messages from the other events (edits,
 * reactions, membership…). An encrypted event is a message unless it
 * turned out to be an edit, a reaction or a deletion. */
export function isMessage(ev: Ev): boolean {
  if (ev.type === 'encrypted') {
    const p = plainOf(ev.room, ev.seq);
    return !(p?.ok && p.kind === 'hidden');
  }
  return ev.type === 'text' || ev.type === 'file';
}

/** isVisible tells events that take a row in the timeline: commits show
 * when they changed who reads the room, or were refused. */
export function isVisible(ev: Ev): boolean {
  if (ev.type === 'mls_commit') {
    const p = plainOf(ev.room, ev.seq);
    return !!p && (p.ok ? p.kind === 'commit' && p.notes.length > 0 : true);
  }
  return isMessage(ev) || ev.type === 'member' || ev.type === 'create' || ev.type === 'settings';
}

/** shown is the event as the timeline shows it: an encrypted message with
 * its decrypted body, reply, mentions, edits and reactions. */
export function shown(ev: Ev): Ev {
  if (ev.type !== 'encrypted') return ev;
  const p = plainOf(ev.room, ev.seq);
  if (!p?.ok || p.kind !== 'msg') return ev;
  return { ...ev, body: p.body, reply_to: p.reply_to, mentions: p.mentions, edited: p.edited, reactions: p.reactions, deleted: ev.deleted || p.deleted };
}

export function decode(ev: Ev): Content {
  if (ev.deleted) return { kind: 'deleted' };
  switch (ev.type) {
    case 'text':
      return { kind: 'text', body: ev.body ?? '' };
    case 'file':
      return { kind: 'file', name: ev.file?.name ?? '', body: ev.body ?? '' };
    case 'encrypted': {
      const p = plainOf(ev.room, ev.seq);
      if (p?.ok && p.kind === 'msg') {
        if (p.deleted) return { kind: 'deleted' };
        if (p.type === 'file') return { kind: 'file', name: p.file?.name ?? '', body: p.body };
        return { kind: 'text', body: p.body };
      }
      return { kind: 'unreadable', reason: unreadableReason(ev) };
    }
    default:
      return { kind: 'unreadable', reason: 'invalid' };
  }
}

/** canCompose tells whether this client can write in a room. */
export function canCompose(room: { encrypted?: boolean }): boolean {
  return !room.encrypted || encryptionAvailable;
}

/** encodeText builds the send of a new message. */
export function encodeText(room: string, body: string, replyTo?: number, mentions?: string[]): SendFields {
  const f: SendFields = { room, type: 'text', body };
  if (replyTo) f.reply_to = replyTo;
  if (mentions && mentions.length) f.mentions = mentions;
  return f;
}

export function encodeEdit(room: string, target: number, body: string): SendFields {
  return { room, type: 'edit', target, body };
}
