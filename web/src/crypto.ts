// End-to-end encryption, the part that stays in the initial bundle: the
// switch, the lazy loading of the MLS chunk (e2e/, with ts-mls: loaded
// only when the device must publish its keys or meets an encrypted room),
// and what the interface reads synchronously — the decrypted content of
// encrypted events, the notices of membership and device changes, the
// state of the recovery key, and the people whose devices changed since
// they were verified. The chunk fills these; the interface only reads.

import type { Ev } from './codec';
import type { Frame } from './frames';
import type { CallRecord, FileRef } from './payload';

/** encryptionAvailable says whether this client can encrypt and decrypt:
 * new direct conversations and groups are created encrypted (forums
 * never are). */
export const encryptionAvailable = true;

/** newRoomEncryption is the "encrypted" field of create_room and open_dm. */
export function newRoomEncryption(): { encrypted: boolean } {
  return { encrypted: encryptionAvailable };
}

/** A notice that a commit changed who can read a room. */
export type Note =
  | { k: 'add'; by: string; user: string } // by added user
  | { k: 'remove'; by: string; user: string } // by removed user
  | { k: 'device'; user: string; name: string; device: string; tag?: string; unverified?: boolean } // user added a device
  | { k: 'device_remove'; user: string; device: string; tag?: string } // a device of user was removed
  | { k: 'welcome' } // this device received the room's keys
  | { k: 'founded'; by: string };

/** Why a message or commit could not be used. */
export type Unreadable =
  | 'before_join' // sent before this device joined the conversation
  | 'missing_key' // the key to open it is not (or no longer) on this device
  | 'forged' // it does not come from who the node says
  | 'invalid' // it opened but is not a message of this version
  | 'refused' // a commit the client refused (not from a member, unknown device…)
  | 'removed'; // this device was removed from the conversation

/** Plain is what an encrypted event (or a commit) turned out to be. */
export type Plain =
  | {
      ok: true;
      kind: 'msg';
      from: string; // the author's user id, as the MLS credential says
      type: 'text' | 'file';
      /** The message's own id, from its encrypted payload (absent in
       * messages of payload version 1). */
      id?: string;
      body: string;
      /** The id of the message answered. */
      reply?: string;
      /** Version 1 history only: the seq of the message answered, kept
       * from before ids (shown without their guarantee). */
      reply_to?: number;
      mentions?: string[];
      file?: FileRef;
      edited?: number;
      reactions?: Record<string, string[]>;
      deleted?: boolean;
    }
  | { ok: true; kind: 'hidden' } // an edit, reaction or deletion, applied to its target
  | { ok: true; kind: 'call'; from: string; call: CallRecord } // a call's entry, posted by its caller
  | { ok: true; kind: 'commit'; notes: Note[] }
  | { ok: false; reason: Unreadable; commit?: boolean; detail?: string };

/** A room's decrypted events by seq, with the index of its messages by
 * their payload id: references between encrypted messages go by id. The
 * first event to bring an id keeps it. */
class PlainMap extends Map<number, Plain> {
  readonly ids = new Map<string, number>();

  override set(seq: number, p: Plain): this {
    const old = super.get(seq);
    if (old?.ok && old.kind === 'msg' && old.id && this.ids.get(old.id) === seq && !(p.ok && p.kind === 'msg' && p.id === old.id)) this.ids.delete(old.id);
    super.set(seq, p);
    if (p.ok && p.kind === 'msg' && p.id && !this.ids.has(p.id)) this.ids.set(p.id, seq);
    return this;
  }

  override delete(seq: number): boolean {
    const old = super.get(seq);
    if (old?.ok && old.kind === 'msg' && old.id && this.ids.get(old.id) === seq) this.ids.delete(old.id);
    return super.delete(seq);
  }

  override clear(): void {
    this.ids.clear();
    super.clear();
  }
}

const plains = new Map<string, PlainMap>();
const joined = new Map<string, number>();

export function plainOf(room: string, seq: number): Plain | undefined {
  return plains.get(room)?.get(seq);
}

/** seqOfId is the seq of the room's message whose payload id is id. */
export function seqOfId(room: string, id: string): number | undefined {
  return plains.get(room)?.ids.get(id);
}

/** setPlain records what an event is (the e2e chunk calls it). */
export function setPlain(room: string, seq: number, p: Plain | undefined): void {
  const m = roomPlains(room);
  if (p) m.set(seq, p);
  else m.delete(seq);
}

export function roomPlains(room: string): Map<number, Plain> {
  let m = plains.get(room);
  if (!m) plains.set(room, (m = new PlainMap()));
  return m;
}

/** joinedAt is the seq from which this device can read a room (0: it is
 * not in the room's group yet). */
export function joinedAt(room: string): number {
  return joined.get(room) ?? 0;
}

export function setJoinedAt(room: string, seq: number): void {
  joined.set(room, seq);
}

/** What an encrypted event shows: undefined while it is not processed. */
export function unreadableReason(ev: Ev): Unreadable | 'pending' {
  const p = plainOf(ev.room, ev.seq);
  if (p && !p.ok) return p.reason;
  const j = joinedAt(ev.room);
  if (j > 0 && ev.seq < j) return 'before_join';
  return 'pending';
}

/** Flag is a leaf of a room's MLS group that the user must know about: a
 * device of someone verified that was not verified (unverified), one the
 * node does not list (unlisted) or lists with another key (key), or one
 * it lists as signed out (inactive). */
export interface Flag {
  user: string;
  device: string;
  key: string; // the leaf's signature key, base64
  tag: string; // the device's short tag (deviceTag), shown instead of its id
  why: 'unverified' | 'unlisted' | 'key' | 'inactive';
}

function flagID(f: Flag): string {
  return f.user + '/' + f.device + ':' + f.key + ':' + f.why;
}

/** unconfirmed returns the flags of a room the user has not yet accepted
 * to send to (sending asks first). */
export function unconfirmed(room: string): Flag[] {
  const ok = e2eState.confirmed.get(room);
  return (e2eState.flags.get(room) ?? []).filter((f) => !ok?.has(flagID(f)));
}

/** confirmFlags records that the user sends to a room despite its flags
 * (until they change). */
export function confirmFlags(room: string): void {
  e2eState.confirmed.set(room, new Set((e2eState.flags.get(room) ?? []).map(flagID)));
}

/** The state of end-to-end encryption the interface shows. */
export const e2eState = {
  /** The chunk is loaded and the device's keys are published. */
  ready: false,
  /** recovery: 'unknown' before the check; 'show' when a new recovery
   * key must be written down (key holds it until confirmed); 'needed'
   * when backups exist that this device cannot open yet; 'ok' when this
   * device holds the recovery key. */
  recovery: 'unknown' as 'unknown' | 'show' | 'needed' | 'ok',
  key: '',
  /** Users whose active devices differ from the ones verified. */
  changed: new Set<string>(),
  /** Users verified on this device. */
  verified: new Set<string>(),
  /** Per room, the group leaves to warn about (computed from the group). */
  flags: new Map<string, Flag[]>(),
  /** Per room, the flags the user accepted to send to. */
  confirmed: new Map<string, Set<string>>(),
  error: '',
};

/** The host is what the chunk needs of the rest of the client. */
export interface HostRoom {
  id: string;
  kind: string;
  encrypted?: boolean;
  state: string;
  members?: { user: string; role: string; state: string }[];
  epoch?: number;
  last_seq: number;
}

export interface Host {
  me(): { user: string; device: string } | null;
  request<T>(f: Record<string, unknown>): Promise<T>;
  /** frame sends a request with the given id; it resolves with the
   * answer frame (ack or result) and rejects with a SendError. */
  frame(f: Record<string, unknown>, id: string): Promise<Frame>;
  whenReady(): Promise<void>;
  room(id: string): HostRoom | undefined;
  rooms(): HostRoom[];
  /** changed tells the interface that a room's decrypted content moved. */
  changed(room: string): void;
  /** status tells the interface that e2eState moved. */
  status(): void;
  deviceName(): string;
}

type Chunk = typeof import('./e2e/index');
let chunk: Promise<Chunk> | null = null;
let host: Host | null = null;
let loaded: Chunk | null = null;

export function setHost(h: Host): void {
  host = h;
}

/** e2e loads the MLS chunk (once) and starts it for the signed-in
 * device. */
export function e2e(): Promise<Chunk['manager']> {
  if (!chunk) {
    chunk = import('./e2e/index').then((m) => {
      loaded = m;
      return m;
    });
    chunk.catch(() => (chunk = null));
  }
  return chunk.then(async (m) => {
    await m.manager.start(host!);
    return m.manager;
  });
}

/** e2eChunk is the whole MLS chunk (its QR encoder, key formats). */
export async function e2eChunk(): Promise<Chunk> {
  await e2e();
  return loaded!;
}

/** loadedE2E is the manager if the chunk is already loaded. */
export function loadedE2E(): Chunk['manager'] | null {
  return loaded?.manager ?? null;
}

/** resetE2E forgets everything decrypted (sign-out). */
export function resetE2E(): void {
  plains.clear();
  joined.clear();
  e2eState.ready = false;
  e2eState.recovery = 'unknown';
  e2eState.key = '';
  e2eState.changed.clear();
  e2eState.verified.clear();
  e2eState.flags.clear();
  e2eState.confirmed.clear();
  loaded?.manager.stop();
}
