// The message codec: between the protocol's events and what the timeline
// shows, and between what people type and the "send" frames. Plaintext
// rooms carry "text" events; encrypted rooms carry "encrypted" events
// (MLS application messages) whose content the e2e chunk decrypts into
// the registry of crypto.ts, and "mls_commit" events shown as notices of
// who joined or left the encryption.

import { encryptionAvailable, plainOf, seqOfId, Unreadable, unreadableReason } from './crypto';
import type { SendFields } from './outbox';
import type { CallRecord, FileRef } from './payload';

/** EvFile is an event's file as the node fills it: metadata in
 * unencrypted rooms (only id, size and state in encrypted ones), and the
 * antivirus state. */
export interface EvFile {
  id: string;
  name?: string;
  size?: number;
  mime?: string;
  w?: number;
  h?: number;
  thumb?: boolean;
  state?: string;
  code?: string;
  reason?: string;
  /** What passed a clean file: 'antivirus' or 'policy' (the node's own rules only). */
  checked?: string;
}

/** FileView is a file as a message shows it, whatever the room. */
export interface FileView {
  id: string;
  name: string;
  size: number;
  mime: string;
  w?: number;
  h?: number;
  /** pending, clean, quarantined, unscanned (PROTOCOL.md, "Files"). */
  state: string;
  code?: string;
  checked?: string;
  /** The node has a thumbnail (unencrypted rooms). */
  nodeThumb: boolean;
  /** The key, hash and inline thumbnail of an encrypted file. */
  enc?: FileRef;
}

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
  file?: EvFile;
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
  | { kind: 'file'; file: FileView; body: string }
  | { kind: 'unreadable'; reason: Unreadable | 'pending' }
  | { kind: 'deleted' }
  | { kind: 'call'; call: CallRecord; from: string };

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
 * its decrypted body, reply, mentions, edits and reactions. Its reply is
 * the message whose payload id the reply names (-1, shown as an older
 * message, when this device has none). Only its author's deletion counts:
 * the node's tombstone (ev.deleted) of a message decrypted here does not
 * hide it (see removedByServer). */
export function shown(ev: Ev): Ev {
  if (ev.type !== 'encrypted') return ev;
  const p = plainOf(ev.room, ev.seq);
  if (!p?.ok || p.kind !== 'msg') return ev;
  const reply_to = p.reply ? (seqOfId(ev.room, p.reply) ?? -1) : p.reply_to;
  return { ...ev, body: p.body, reply_to, mentions: p.mentions, edited: p.edited, reactions: p.reactions, deleted: p.deleted };
}

/** removedByServer tells an encrypted message decrypted here that the
 * node deleted (a tombstone) but its author did not: it stays readable,
 * marked, since the node's word alone does not wipe what was decrypted. */
export function removedByServer(ev: Ev): boolean {
  if (ev.type !== 'encrypted' || !ev.deleted) return false;
  const p = plainOf(ev.room, ev.seq);
  return !!p?.ok && p.kind === 'msg' && !p.deleted;
}

/** referable tells whether a message can be answered, edited or reacted
 * to: in encrypted rooms, only messages with a payload id (not those of
 * payload version 1). */
export function referable(ev: Ev): boolean {
  if (ev.type !== 'encrypted') return true;
  const p = plainOf(ev.room, ev.seq);
  return !!p?.ok && p.kind === 'msg' && !!p.id;
}

export function decode(ev: Ev): Content {
  if (ev.deleted && !removedByServer(ev)) return { kind: 'deleted' };
  switch (ev.type) {
    case 'text':
      return { kind: 'text', body: ev.body ?? '' };
    case 'file':
      return { kind: 'file', file: fileOf(ev, undefined), body: ev.body ?? '' };
    case 'encrypted': {
      const p = plainOf(ev.room, ev.seq);
      if (p?.ok && p.kind === 'msg') {
        if (p.deleted) return { kind: 'deleted' };
        if (p.type === 'file') return { kind: 'file', file: fileOf(ev, p.file), body: p.body };
        return { kind: 'text', body: p.body };
      }
      if (p?.ok && p.kind === 'call') return { kind: 'call', call: p.call, from: p.from };
      return { kind: 'unreadable', reason: unreadableReason(ev) };
    }
    default:
      return { kind: 'unreadable', reason: 'invalid' };
  }
}

/** fileOf is the file of a file event; ref is the decrypted reference of
 * an encrypted room's file. */
export function fileOf(ev: Ev, ref: FileRef | undefined): FileView {
  const f = ev.file ?? { id: ref?.id ?? '' };
  const state = f.state ?? (ref ? 'unscanned' : 'pending');
  if (ref) {
    // The node's id must be the one the encrypted payload names.
    const ok = f.id === ref.id;
    return { id: ref.id, name: ref.name, size: ref.size, mime: ref.mime, w: ref.w, h: ref.h, state: ok ? state : 'quarantined', code: ok ? f.code : 'mismatch', checked: f.checked, nodeThumb: false, enc: ref };
  }
  return { id: f.id, name: f.name ?? '', size: f.size ?? 0, mime: f.mime ?? '', w: f.w, h: f.h, state, code: f.code, checked: f.checked, nodeThumb: !!f.thumb };
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
