// The plaintext inside an MLS application message of an encrypted room:
// one JSON object (UTF-8), documented in web/ENCRYPTION.md. Everything a
// message says travels here — body, reply, mentions, edits, reactions,
// and the key, hash, real name and thumbnail of an encrypted file —
// so that the node sees none of it. Parsing is strict: a payload that
// does not follow the format is refused whole and its message shown as
// unreadable.
//
// Messages refer to each other by an id inside the payload, never by the
// node's sequence numbers: a text or file message carries `id`, 128
// random bits chosen by its sender, authenticated with the rest by MLS;
// a reply carries the id it answers (`reply`), an edit, reaction or
// deletion the id it concerns (`ref`). The node orders and numbers
// events, so a reference by number could be re-pointed by renumbering;
// an id cannot. Version 1 (references by seq) is still read, for the
// history of clients before ids: its messages show, its references are
// not followed (see applyPayload in e2e/manager.ts).

export const PAYLOAD_VERSION = 2;
/** The version of payloads that referred to messages by seq. */
export const LEGACY_VERSION = 1;

export type PayloadType = 'text' | 'edit' | 'delete' | 'react' | 'unreact' | 'file' | 'call';

/** CallRecord is a call's entry in the timeline, posted by the caller when
 * the call ends: missed (nobody answered), declined, busy, or ended after
 * dur seconds. */
export interface CallRecord {
  state: 'missed' | 'declined' | 'busy' | 'ended';
  media: 'audio' | 'video';
  dur?: number;
}

/** FileRef is an encrypted file a message carries: the node has the
 * ciphertext under id; the key, the hash and the real name and type are
 * only here ("relais file v1" format, PROTOCOL.md "Files"). */
export interface FileRef {
  id: string; // f-… on the node
  name: string;
  size: number; // bytes of the plaintext file
  mime: string;
  key: string; // base64 of the 32-byte file key
  hash: string; // base64 of the SHA-256 of the plaintext file
  w?: number;
  h?: number;
  /** A small picture made by the sender (JPEG, fitting 320×320), inline:
   * the node never sees it. */
  thumb?: { data: string; mime: string; w: number; h: number };
}

/** Largest inline thumbnail, in base64 characters. */
export const MAX_THUMB = 96 * 1024;

export interface Payload {
  v: number;
  type: PayloadType;
  id?: string; // the message's own id (text, file; version 2)
  body?: string; // markdown subset (text, edit, file caption)
  reply?: string; // id of the message answered (version 2)
  mentions?: string[]; // user ids
  ref?: string; // id of the message edited, deleted or reacted to (version 2)
  key?: string; // reaction
  file?: FileRef;
  call?: CallRecord;
  reply_to?: number; // version 1: seq of the message answered
  target?: number; // version 1: seq of the message concerned
}

/** A message id: 16 random bytes in unpadded base64url. */
export const messageID = /^[A-Za-z0-9_-]{22}$/;

/** newMessageID draws the id of a new message. */
export function newMessageID(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const types = new Set<PayloadType>(['text', 'edit', 'delete', 'react', 'unreact', 'file', 'call']);
const MAX_BODY = 16 * 1024;
const userID = /^u-[a-z0-9]+-[a-z0-9]+$/;
const fileID = /^f-[A-Za-z0-9_-]{1,64}$/;
const b64 = /^[A-Za-z0-9+/]+={0,2}$/;

const seq = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
const str = (x: unknown, max: number): x is string => typeof x === 'string' && x.length <= max;

function fileRef(x: unknown): FileRef | null {
  if (!x || typeof x !== 'object') return null;
  const f = x as Record<string, unknown>;
  if (!str(f.id, 70) || !fileID.test(f.id) || !str(f.name, 255) || !str(f.mime, 255)) return null;
  if (typeof f.size !== 'number' || !Number.isSafeInteger(f.size) || f.size < 0) return null;
  if (!str(f.key, 64) || !b64.test(f.key) || !str(f.hash, 64) || !b64.test(f.hash)) return null;
  const out: FileRef = { id: f.id, name: f.name, size: f.size, mime: f.mime, key: f.key, hash: f.hash };
  if (seq(f.w) && seq(f.h)) {
    out.w = f.w;
    out.h = f.h;
  }
  const t = f.thumb as Record<string, unknown> | undefined;
  if (t && str(t.data, MAX_THUMB) && b64.test(t.data) && (t.mime === 'image/jpeg' || t.mime === 'image/png') && seq(t.w) && seq(t.h))
    out.thumb = { data: t.data, mime: t.mime, w: t.w, h: t.h };
  return out;
}

/** jsonObject reads decrypted bytes as one JSON object (strict UTF-8);
 * null if they are not. */
export function jsonObject(b: Uint8Array): Record<string, unknown> | null {
  let x: unknown;
  try {
    x = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
  } catch {
    return null;
  }
  return x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : null;
}

/** parsePayload reads a decrypted payload; null if it is not one. */
export function parsePayload(b: Uint8Array): Payload | null {
  const o = jsonObject(b);
  if (!o) return null;
  const v = o.v;
  if ((v !== PAYLOAD_VERSION && v !== LEGACY_VERSION) || !types.has(o.type as PayloadType)) return null;
  const p: Payload = { v, type: o.type as PayloadType };
  if (o.body !== undefined) {
    if (!str(o.body, MAX_BODY)) return null;
    p.body = o.body;
  }
  // Each version has its own way of referring: the other's fields are
  // refused, so that no payload means two things.
  const id = (x: unknown): x is string => str(x, 22) && messageID.test(x);
  if (v === PAYLOAD_VERSION) {
    if (o.reply_to !== undefined || o.target !== undefined) return null;
    for (const k of ['id', 'reply', 'ref'] as const) {
      const x = o[k];
      if (x === undefined) continue;
      if (!id(x)) return null;
      p[k] = x;
    }
  } else {
    if (o.id !== undefined || o.reply !== undefined || o.ref !== undefined) return null;
    for (const k of ['reply_to', 'target'] as const) {
      const x = o[k];
      if (x === undefined) continue;
      if (!seq(x)) return null;
      p[k] = x;
    }
  }
  if (o.mentions !== undefined) {
    if (!Array.isArray(o.mentions) || o.mentions.length > 50 || !o.mentions.every((m) => str(m, 64) && userID.test(m))) return null;
    p.mentions = o.mentions as string[];
  }
  if (o.key !== undefined) {
    if (!str(o.key, 32) || new TextEncoder().encode(o.key).length > 32 || !o.key) return null;
    p.key = o.key;
  }
  if (o.file !== undefined) {
    const f = fileRef(o.file);
    if (!f) return null;
    p.file = f;
  }
  if (o.call !== undefined) {
    const c = o.call as Record<string, unknown>;
    if (p.type !== 'call' || !c || typeof c !== 'object' || !['missed', 'declined', 'busy', 'ended'].includes(c.state as string) || (c.media !== 'audio' && c.media !== 'video'))
      return null;
    p.call = { state: c.state as CallRecord['state'], media: c.media };
    if (c.dur !== undefined) {
      if (typeof c.dur !== 'number' || !Number.isSafeInteger(c.dur) || c.dur < 0) return null;
      p.call.dur = c.dur;
    }
  }
  const message = p.type === 'text' || p.type === 'file' || p.type === 'call';
  const target = v === PAYLOAD_VERSION ? p.ref : p.target;
  if (message) {
    // A message has its own id (version 2) and refers to nothing but
    // what it answers.
    if (target !== undefined || (v === PAYLOAD_VERSION && p.id === undefined)) return null;
  } else if (target === undefined || p.id !== undefined || p.reply !== undefined || p.reply_to !== undefined) return null;
  switch (p.type) {
    case 'text':
    case 'edit':
      if (p.body === undefined) return null;
      break;
    case 'react':
    case 'unreact':
      if (p.key === undefined) return null;
      break;
    case 'file':
      if (!p.file) return null;
      break;
    case 'call':
      if (!p.call || v !== PAYLOAD_VERSION) return null;
      break;
  }
  return p;
}

/** encodePayload writes a payload; without a version, the current one. */
export function encodePayload(p: Omit<Payload, 'v'> & { v?: number }): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ v: PAYLOAD_VERSION, ...p }));
}
