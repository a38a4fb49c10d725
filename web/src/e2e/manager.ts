// The device's end-to-end encryption: its identity and KeyPackages, one
// MLS group per encrypted room, and the rules of PROTOCOL.md ("What a
// client does"):
//
// - Every encrypted room's log is followed strictly in order (seq) by its
//   own processor: commits move the group's epoch, application messages
//   are opened at the epoch they were made in, and what each event turned
//   out to be is kept (sealed) on the device, since MLS cannot open a
//   message twice. Gaps are filled from "history".
// - Commits are accepted only if they verify (a member's signature, or an
//   external joiner's), every credential they bring is a device the
//   node lists for its user with that very key (and the key this device
//   pinned for it, if any), of someone in the room, and every removal
//   follows what allowed it (a leave, a lawful kick or ban, the
//   committer's own device, a signed-out one); anything else is refused
//   and shown as a warning in the timeline.
// - What people verify and are warned about comes from the groups' own
//   leaves, not from the node's device list (safety, refreshWarnings).
// - Group operations (found, add, remove, join by external commit) are
//   commits sent with "mls"; on epoch_mismatch the processor catches up
//   and makes the commit again.
//
// Everything that touches a room's group runs in that room's queue, one
// operation at a time.

import type { Ev } from '../codec';
import type { Flag, Host, HostRoom, Note, Plain } from '../crypto';
import { e2eState, plainOf, roomPlains, seqOfId, setJoinedAt, setPlain } from '../crypto';
import type { Frame } from '../frames';
import { SendError } from '../outbox';
import { encodePayload, newMessageID, parsePayload, Payload, PAYLOAD_VERSION } from '../payload';
import * as backup from './backup';
import * as mls from './engine';
import * as ks from './keystore';
import { b64 } from './keystore';
import { DeviceKey, deviceTag, safetyNumber } from './safety';

/** KeyPackages a device keeps on the node. */
const STOCK = 50;
/** An mls frame must fit the node's 1 MiB frames (base64, with fields). */
const FRAME_BUDGET = 960 * 1024;
/** Decrypted history is kept in buckets of this many seqs. */
const BUCKET = 256;

const enc = new TextEncoder();
const dec = new TextDecoder();

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function newID(prefix: string): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Array.from(b, (x) => x.toString(36).padStart(2, '0')).join('');
}

interface DeviceRecord {
  id: 'device';
  user: string;
  device: string;
  pub: Uint8Array;
  handle: Uint8Array;
  key: CryptoKey;
  registered: boolean;
}

interface KeyPackageRecord {
  kp: string; // the KeyPackage MLSMessage, base64
  init: string;
  hpke: string;
  last?: boolean;
}

interface GroupMeta {
  suite: mls.SuiteID;
  seq: number;
  joined: number;
  lost?: boolean;
}

interface NodeDevice {
  user: string;
  device: string;
  key: string;
  created: number;
  active: boolean;
}

/** A device as the verification screen shows it: from a group's leaf,
 * with the date the node gives if it lists that very key. */
interface ShownDevice {
  device: string;
  created: number;
  listed: boolean;
}

interface Meta {
  verified: Record<string, Record<string, string>>; // user → device → key (base64)
}

/** Why a credential check failed, for the warning people see. */
interface Why {
  text: string;
}

class RoomCrypto {
  group?: mls.Group;
  seq = 0;
  joined = 0;
  lost = false;
  buffer = new Map<number, Ev>();
  queue: Promise<unknown> = Promise.resolve();
  pending?: { cid: string; c: mls.Committed; notes: Note[]; joined?: boolean };
  /** Who is in the room as of the processed seq: the room's members when
   * first loaded, then the member events of the log, in order. */
  roster = new Map<string, string>();
  /** Roles as of the processed seq (the room's members, then the log). */
  roles = new Map<string, string>();
  /** People whose departure no one allowed to remove them made (a kick
   * or ban by someone without the role): a commit removing them is
   * refused. */
  unlawful = new Set<string>();
  private loaded = false;
  private dirty = new Set<number>();

  constructor(
    readonly id: string,
    private m: Manager,
  ) {}

  run<T>(f: () => Promise<T>): Promise<T> {
    const p = this.queue.then(async () => {
      await this.load();
      return f();
    });
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    const meta = await ks.getJSON<GroupMeta>('gm:' + this.id);
    const state = await ks.get('g:' + this.id);
    if (meta) {
      this.seq = meta.seq;
      this.joined = meta.joined;
      this.lost = !!meta.lost;
      if (state) this.group = mls.decodeGroup(meta.suite, state);
    }
    setJoinedAt(this.id, this.joined);
    for (const m of this.room()?.members ?? []) {
      this.roster.set(m.user, m.state);
      this.roles.set(m.user, m.role);
    }
    const plains = roomPlains(this.id);
    for (const r of await ks.all('p:' + this.id + ':')) {
      const bucket = JSON.parse(dec.decode(r.data)) as Record<string, Plain>;
      for (const [seq, p] of Object.entries(bucket)) if (!plains.has(Number(seq))) plains.set(Number(seq), p);
    }
    this.m.host.changed(this.id);
  }

  async save(): Promise<void> {
    if (this.group) {
      await ks.put('g:' + this.id, mls.encodeGroup(this.group));
      // Every device of a group this device holds is pinned with its key.
      await this.m.pin(this.group);
    }
    await ks.putJSON('gm:' + this.id, { suite: this.group?.suite ?? mls.DEFAULT_SUITE, seq: this.seq, joined: this.joined, lost: this.lost } satisfies GroupMeta);
    setJoinedAt(this.id, this.joined);
    await this.flushPlains();
  }

  /** put records what an event is, to be saved with the next save. */
  put(seq: number, p: Plain | undefined): void {
    setPlain(this.id, seq, p);
    this.dirty.add(Math.floor(seq / BUCKET));
    this.m.backups.mark(this.id, Math.floor(seq / BUCKET));
  }

  async flushPlains(): Promise<void> {
    const buckets = [...this.dirty];
    this.dirty.clear();
    for (const b of buckets) await ks.putJSON('p:' + this.id + ':' + b, this.bucket(b));
    if (buckets.length) this.m.host.changed(this.id);
  }

  bucket(b: number): Record<number, Plain> {
    const out: Record<number, Plain> = {};
    for (const [seq, p] of roomPlains(this.id)) if (Math.floor(seq / BUCKET) === b) out[seq] = p;
    return out;
  }

  feed(ev: Ev): void {
    if (ev.seq <= this.seq || this.buffer.size > 2000) return;
    this.buffer.set(ev.seq, ev);
    // The group moved while this device is not in it: unless a Welcome
    // comes (it follows its commit closely), join by external commit.
    if (ev.type === 'mls_commit' && !this.group && !this.pending) setTimeout(() => void this.m.ensure(this.id), 1500);
  }

  room(): HostRoom | undefined {
    return this.m.host.room(this.id);
  }

  /** drain processes the room's log in order as far as it is known (and
   * at least up to upTo), fetching the events it misses. */
  async drain(upTo = 0): Promise<void> {
    const last = Math.max(this.room()?.last_seq ?? 0, upTo);
    let changed = false;
    while (this.seq < last || this.buffer.has(this.seq + 1)) {
      if (!this.group && !this.pending) break; // not in the group: nothing to open
      let ev = this.buffer.get(this.seq + 1);
      if (!ev) {
        if (this.room()?.state !== 'joined') break;
        const res = await this.m.host.request<{ events: Ev[] }>({ t: 'history', room: this.id, after: this.seq, limit: 100 });
        for (const e of res.events ?? []) this.feed(e);
        ev = this.buffer.get(this.seq + 1);
        if (!ev) break;
      }
      this.buffer.delete(ev.seq);
      await this.process(ev);
      this.seq = ev.seq;
      changed = true;
    }
    for (const s of this.buffer.keys()) if (s <= this.seq) this.buffer.delete(s);
    if (changed) await this.save();
  }

  private mine(ev: Ev): boolean {
    const me = this.m.host.me();
    return !!me && ev.from === me.user && ev.dev === me.device;
  }

  private async process(ev: Ev): Promise<void> {
    switch (ev.type) {
      case 'mls_commit':
        return this.processCommit(ev);
      case 'encrypted':
        return this.processMessage(ev);
      case 'delete':
        // The node dropped a ciphertext. That is the node's word only: a
        // message already decrypted stays (the timeline marks it removed
        // from the server); only its author's deletion, signed inside the
        // encryption, wipes it (apply).
        return;
      case 'member':
        if (!ev.user) return;
        switch (ev.action) {
          case 'invite':
            this.roster.set(ev.user, 'invited');
            this.unlawful.delete(ev.user);
            return;
          case 'join':
            this.roster.set(ev.user, 'joined');
            if (ev.role) this.roles.set(ev.user, ev.role);
            this.unlawful.delete(ev.user);
            return;
          case 'role':
            if (ev.role) this.roles.set(ev.user, ev.role);
            return;
          case 'leave':
          case 'kick':
          case 'ban':
            if (ev.action === 'leave' ? ev.from !== ev.user : !this.mayModerate(ev.from, ev.user)) this.unlawful.add(ev.user);
            this.roster.set(ev.user, 'left');
            this.m.later(() => this.m.removeIfDesignated(this.id, ev));
            return;
        }
        return;
    }
  }

  private async processCommit(ev: Ev): Promise<void> {
    if (this.pending && ev.cid === this.pending.cid && this.mine(ev)) {
      this.group = this.pending.c.group;
      this.put(ev.seq, { ok: true, kind: 'commit', notes: this.pending.notes });
      if (this.pending.joined) this.joined = ev.seq;
      this.pending = undefined;
      return;
    }
    if (!this.group || !ev.data) return;
    // A commit the node says this device made, but this device does not
    // know (a crash between sending and the ack, or a lie): it is
    // processed like any other, and refused if it does not verify. If the
    // group moved on without this device, catchUp notices and it joins
    // again.
    const why: Why = { text: '' };
    let r: mls.CommitResult;
    try {
      r = await mls.processCommit(this.group, b64.dec(ev.data), this.m.check(why));
    } catch (e) {
      this.refuse(ev, why.text || (e instanceof Error ? e.message : String(e)));
      this.behind(ev);
      return;
    }
    const against = await this.policy(r);
    if (against) {
      this.refuse(ev, against);
      return;
    }
    this.group = r.group;
    this.put(ev.seq, { ok: true, kind: 'commit', notes: this.m.notes(r) });
    this.m.refreshWarnings();
  }

  /** mayModerate says whether by could remove or ban user (the role
   * table of server/chat/rules.go: owners and moderators, over people of
   * lower rank; nobody in a direct room). */
  private mayModerate(by: string | undefined, user: string): boolean {
    const rank: Record<string, number> = { owner: 3, moderator: 2, member: 1 };
    if (!by || this.room()?.kind === 'direct') return false;
    // A role not seen in the log yet is the room's current one.
    const role = (u: string) => this.roles.get(u) ?? this.room()?.members?.find((m) => m.user === u)?.role ?? '';
    const a = rank[role(by)] ?? 0;
    return a >= 2 && a > (rank[role(user)] ?? 0);
  }

  /** policy checks a verified commit against what the room's log says.
   * The room's membership is necessary, never sufficient: people added
   * must be in the room (an external joiner, joined), and each device
   * they bring is then pinned and checked against verification from the
   * group itself (Manager.refreshWarnings). A removal must follow what
   * allowed it: the person's leave, a kick or ban by someone with the
   * role, the committer's own device, or a device the node no longer
   * has a session for (revoked, signed out). */
  private async policy(r: mls.CommitResult): Promise<string> {
    const inRoom = (user: string, states: string[]) => states.includes(this.roster.get(user) ?? '');
    for (const id of r.added) {
      const p = mls.parseIdentity(id);
      if (!p) return 'not a device identity: ' + id;
      if (r.external ? !inRoom(p.user, ['joined']) : !inRoom(p.user, ['joined', 'invited'])) return p.user + ' is not in the room';
    }
    if (r.external && r.added.length !== 1) return 'an external commit adds exactly its sender';
    if (r.external && r.removed.some((x) => x !== r.added[0])) return 'an external commit removes nobody but its sender’s former place';
    if (r.external) return '';
    const by = mls.parseIdentity(r.by);
    for (const id of r.removed) {
      const p = mls.parseIdentity(id);
      if (!p || !by) return 'a removal of a leaf that is no device';
      if (p.user === by.user) continue;
      if (!inRoom(p.user, ['joined', 'invited']) && !this.unlawful.has(p.user)) continue;
      const d = (await this.m.devices(p.user, true).catch(() => [] as NodeDevice[])).find((x) => x.device === p.device);
      if (!d || !d.active) continue;
      return this.unlawful.has(p.user) ? 'removes ' + id + ', whose removal was not made by someone allowed to' : 'removes ' + id + ', who is still in the room';
    }
    return '';
  }

  /** behind notices a commit of a later epoch than the group's: the
   * others took a commit this device refused or missed, so it joins
   * again by external commit rather than wait until it next sends. */
  private behind(ev: Ev): void {
    if (!this.group || this.lost || ev.epoch === undefined || BigInt(ev.epoch) <= mls.epochOf(this.group)) return;
    this.lost = true;
    this.m.later(() => this.m.joinRoom(this.id));
  }

  private refuse(ev: Ev, detail: string): void {
    console.warn(`relais e2e: refused commit ${this.id}#${ev.seq}: ${detail}`);
    this.put(ev.seq, { ok: false, reason: 'refused', commit: true, detail });
  }

  private async processMessage(ev: Ev): Promise<void> {
    if (this.mine(ev)) {
      const p = ev.cid ? this.m.sentPayload(ev.cid) : undefined;
      if (p) {
        this.apply(ev, p, ev.from);
        this.m.later(() => this.m.bind(ev.cid!));
      } else if (!plainOf(this.id, ev.seq)) this.put(ev.seq, { ok: false, reason: 'missing_key' });
      return;
    }
    if (!this.group || !ev.data) return;
    if (plainOf(this.id, ev.seq)?.ok) return; // restored from a backup
    let r: Awaited<ReturnType<typeof mls.decrypt>>;
    try {
      r = await mls.decrypt(this.group, b64.dec(ev.data));
    } catch (e) {
      this.put(ev.seq, { ok: false, reason: mls.isActive(this.group) ? 'missing_key' : 'removed', detail: e instanceof Error ? e.message : String(e) });
      return;
    }
    this.group = r.group;
    const who = mls.parseIdentity(r.sender);
    if (!who || who.user !== ev.from || who.device !== ev.dev) {
      this.put(ev.seq, { ok: false, reason: 'forged', detail: r.sender });
      return;
    }
    const p = parsePayload(r.plaintext);
    if (!p) {
      this.put(ev.seq, { ok: false, reason: 'invalid' });
      return;
    }
    this.apply(ev, p, who.user);
  }

  /** apply records a message, or carries an edit, reaction or deletion
   * to its target when its author may. Targets are found by the id inside
   * their payload, never by the node's seq: a reference the node
   * re-numbered still reaches its message, or nothing. */
  apply(ev: Ev, p: Payload, author: string): void {
    if (p.type === 'call') {
      this.put(ev.seq, { ok: true, kind: 'call', from: author, call: p.call! });
      return;
    }
    if (p.type === 'text' || p.type === 'file') {
      const had = p.id ? seqOfId(this.id, p.id) : undefined;
      if (had !== undefined && had !== ev.seq) {
        // A second message with an id already taken (a member reusing
        // another's id, or the node replaying one's own message under
        // another seq): the first keeps it.
        this.put(ev.seq, { ok: false, reason: 'invalid', detail: 'duplicate message id' });
        return;
      }
      // Version 1 replies (by seq) are not followed: the node numbers
      // events.
      this.put(ev.seq, { ok: true, kind: 'msg', from: author, type: p.type, id: p.id, body: p.body ?? '', reply: p.reply, mentions: p.mentions, file: p.file });
      return;
    }
    this.put(ev.seq, { ok: true, kind: 'hidden' });
    // Version 1 edits, reactions and deletions name their target by seq:
    // not applied, for the same reason.
    const at = p.ref ? seqOfId(this.id, p.ref) : undefined;
    if (at === undefined) return;
    const t = plainOf(this.id, at);
    if (!t || !t.ok || t.kind !== 'msg' || t.deleted) return;
    // The author is the MLS sender's user (processMessage checked the
    // node's from against it); edits and deletions are the author's only.
    switch (p.type) {
      case 'edit':
        if (t.from === author) this.put(at, { ...t, body: p.body ?? '', edited: ev.ts });
        break;
      case 'delete':
        if (t.from === author) this.put(at, { ok: true, kind: 'msg', from: t.from, type: t.type, id: t.id, body: '', deleted: true });
        break;
      case 'react':
      case 'unreact': {
        const rs = { ...(t.reactions ?? {}) };
        const users = (rs[p.key!] ?? []).filter((u) => u !== author);
        if (p.type === 'react') users.push(author);
        if (users.length) rs[p.key!] = users;
        else delete rs[p.key!];
        this.put(at, { ...t, reactions: rs });
        break;
      }
    }
  }
}

/** The backups of decrypted history: buckets of a room marked when they
 * change, uploaded a little later, merged with what the node holds. */
class Backups {
  private dirty = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> = Promise.resolve();
  key: CryptoKey | null = null;
  metaKey: CryptoKey | null = null;
  user = '';
  /** Names of the backups the node holds (so as not to ask for others). */
  exists = new Set<string>();

  constructor(private m: Manager) {}

  mark(room: string, bucket: number): void {
    this.dirty.add(room + '.' + bucket);
    if (!this.timer) this.timer = setTimeout(() => this.flush(), 1500);
  }

  /** flush uploads the changed buckets; it resolves once done. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.running = this.running.then(() => this.upload()).catch((e) => console.warn('relais e2e: backup', e));
    return this.running;
  }

  private async upload(): Promise<void> {
    if (!this.key) return;
    const names = [...this.dirty];
    this.dirty.clear();
    try {
      for (const [i, n] of names.entries()) {
        await this.uploadOne(n).catch((e) => {
          // Offline or refused: try these again later.
          for (const m of names.slice(i)) this.dirty.add(m);
          if (!this.timer) this.timer = setTimeout(() => this.flush(), 15000);
          throw e;
        });
      }
    } catch (e) {
      console.info('relais e2e: backup postponed', e instanceof Error ? e.message : e);
    }
  }

  private async uploadOne(n: string): Promise<void> {
    if (!this.key) return;
    const i = n.lastIndexOf('.');
    const room = n.slice(0, i);
    const b = Number(n.slice(i + 1));
    const name = 'h.' + n;
    const entries: Record<number, Plain> = {};
    const old = await this.fetch(name).catch(() => null); // unreadable: replaced
    if (old) Object.assign(entries, old.entries);
    for (const [seq, p] of Object.entries(this.m.room(room).bucket(b))) if (p.ok || !entries[Number(seq)]) entries[Number(seq)] = p;
    for (const [seq, p] of Object.entries(entries)) if (!p.ok && (p.reason === 'before_join' || p.reason === 'missing_key')) delete entries[Number(seq)];
    const data = enc.encode(JSON.stringify({ v: 1, room, bucket: b, entries }));
    await backup.upload(name, await backup.seal(this.key, this.user, name, data));
    this.exists.add(name);
  }


  async fetch(name: string): Promise<{ room: string; entries: Record<number, Plain> } | null> {
    if (!this.key || !this.exists.has(name)) return null;
    const raw = await backup.download(name);
    if (!raw) return null;
    return JSON.parse(dec.decode(await backup.open(this.key, this.user, name, raw)));
  }
}

export class Manager {
  host!: Host;
  private started: Promise<void> | null = null;
  private rooms = new Map<string, RoomCrypto>();
  private me: DeviceRecord | null = null;
  private deviceCache = new Map<string, { at: number; list: NodeDevice[] }>();
  private sent = new Map<string, Payload>();
  private meta: Meta = { verified: {} };
  /** Every (user, device, signature key) this device accepted into a
   * group: a device name keeps its key for good. */
  private pins: Record<string, Record<string, string>> = {};
  private registering: Promise<void> | null = null;
  private refilling = false;
  backups = new Backups(this);
  private welcomesSeen = new Set<string>();

  /** start loads (or makes) this device's identity; run once per sign-in. */
  start(host: Host): Promise<void> {
    this.host = host;
    if (!this.started) {
      this.started = this.init();
      this.started.catch((e) => {
        console.warn('relais e2e: start', e);
        this.started = null;
      });
    }
    return this.started;
  }

  stop(): void {
    this.started = null;
    this.rooms.clear();
    this.me = null;
    this.deviceCache.clear();
    this.sent.clear();
    this.meta = { verified: {} };
    this.pins = {};
    this.backups = new Backups(this);
    ks.forget();
  }

  private async init(): Promise<void> {
    const me = this.host.me();
    if (!me) throw new Error('not signed in');
    let rec = await ks.getRaw<DeviceRecord>('device');
    if (!rec || rec.user !== me.user || rec.device !== me.device) {
      // A new sign-in is a new device: nothing of a previous one applies.
      await ks.clear();
      const s = await mls.newSigner();
      rec = { id: 'device', user: me.user, device: me.device, pub: s.pub, handle: s.handle, key: s.key, registered: false };
      await ks.putRaw(rec);
    }
    mls.registerSigner(rec.handle, rec.key);
    this.me = rec;
    this.meta = (await ks.getJSON<Meta>('meta')) ?? { verified: {} };
    e2eState.verified = new Set(Object.keys(this.meta.verified));
    this.pins = (await ks.getJSON<Record<string, Record<string, string>>>('pins')) ?? {};
    for (const r of await ks.all('s:')) this.sent.set(r.id.slice(2), JSON.parse(dec.decode(r.data)) as Payload);
    const rk = await ks.get('recovery');
    if (rk) await this.useRecoveryKey(rk);
    if (!rec.registered) await this.register();
    e2eState.ready = true;
    this.host.status();
    void this.checkRecovery();
  }

  identity(): string {
    return mls.identity(this.me!.user, this.me!.device);
  }

  private signer(): mls.Signer {
    return { pub: this.me!.pub, handle: this.me!.handle };
  }

  // Keys of this device.

  private register(): Promise<void> {
    if (!this.registering) {
      this.registering = (async () => {
        await this.upload(STOCK);
        this.me!.registered = true;
        await ks.putRaw(this.me!);
      })().finally(() => (this.registering = null));
    }
    return this.registering;
  }

  /** upload makes n KeyPackages (and a last-resort one) and sends them. */
  private async upload(n: number): Promise<void> {
    const ident = this.identity();
    const kps: mls.NewKeyPackage[] = [];
    for (let i = 0; i <= n; i++) kps.push(await mls.newKeyPackage(mls.DEFAULT_SUITE, ident, this.signer()));
    for (const [i, kp] of kps.entries())
      await ks.putJSON('kp:' + hex(kp.ref), {
        kp: b64.enc(kp.message),
        init: b64.enc(kp.private.initPrivateKey),
        hpke: b64.enc(kp.private.hpkePrivateKey),
        last: i === n,
      } satisfies KeyPackageRecord);
    await this.host.request({ t: 'key_packages', key_packages: kps.slice(0, n).map((k) => b64.enc(k.message)), last_resort: b64.enc(kps[n].message) });
  }

  private async ownKeyPackage(refs: Uint8Array[]): Promise<{ ref: string; rec: KeyPackageRecord } | null> {
    for (const r of refs) {
      const rec = await ks.getJSON<KeyPackageRecord>('kp:' + hex(r));
      if (rec) return { ref: hex(r), rec };
    }
    return null;
  }

  // Frames of the node.

  onFrame(f: Frame): void {
    switch (f.t) {
      case 'welcome':
        if (f.device === this.me?.device) void this.welcome(f).catch((e) => console.warn('relais e2e: welcome', e));
        return;
      case 'low_keys':
        if (f.device === this.me?.device && !this.refilling) {
          this.refilling = true;
          void this.upload(STOCK)
            .catch((e) => console.warn('relais e2e: key packages', e))
            .finally(() => (this.refilling = false));
        }
        return;
      case 'device':
        this.deviceCache.delete(String(f.user));
        this.refreshWarnings();
        return;
    }
  }

  room(id: string): RoomCrypto {
    let r = this.rooms.get(id);
    if (!r) this.rooms.set(id, (r = new RoomCrypto(id, this)));
    return r;
  }

  /** feed hands an event of an encrypted room to its processor. */
  feed(ev: Ev): void {
    const r = this.room(ev.room);
    r.feed(ev);
    void r.run(() => r.drain()).catch((e) => console.warn('relais e2e: ' + ev.room, e));
  }

  /** touch loads a room's decrypted history and processes what it can. */
  touch(room: string): Promise<void> {
    const r = this.room(room);
    return r.run(() => r.drain());
  }

  private async welcome(f: Frame): Promise<void> {
    const roomID = String(f.room);
    this.welcomesSeen.add(roomID);
    const r = this.room(roomID);
    await r.run(async () => {
      const epoch = BigInt(Number(f.epoch));
      if (r.group && !r.lost && mls.isActive(r.group) && mls.epochOf(r.group) >= epoch) {
        await this.host.request({ t: 'welcome_ack', room: roomID }).catch(() => undefined);
        return;
      }
      const data = b64.dec(String(f.data));
      const w = mls.readWelcome(data);
      await this.prefetch(roomID).catch(() => undefined);
      const own = await this.ownKeyPackage(w.refs);
      if (own) {
        const why: Why = { text: '' };
        try {
          const kp = mls.decodeKeyPackage(b64.dec(own.rec.kp));
          const group = await mls.join(
            data,
            { public: kp, private: { initPrivateKey: b64.dec(own.rec.init), hpkePrivateKey: b64.dec(own.rec.hpke), signaturePrivateKey: this.me!.handle } },
            this.check(why),
          );
          if (mls.groupIdOf(group) !== roomID) throw new Error('a Welcome to another group than this room’s');
          r.group = group;
          r.lost = false;
          r.seq = Number(f.seq);
          r.joined = Number(f.seq);
          r.put(r.seq, { ok: true, kind: 'commit', notes: [{ k: 'welcome' }] });
          if (!own.rec.last) await ks.del('kp:' + own.ref);
          await r.save();
        } catch (e) {
          console.warn('relais e2e: refused Welcome', roomID, why.text || e);
        }
      }
      await this.host.request({ t: 'welcome_ack', room: roomID }).catch(() => undefined);
      if (r.group) await r.drain();
    });
    this.host.changed(roomID);
  }

  // Checks.

  /** devices returns the devices the node lists for a user (cached). */
  async devices(user: string, fresh = false): Promise<NodeDevice[]> {
    const c = this.deviceCache.get(user);
    if (c && !fresh && Date.now() - c.at < 60_000) return c.list;
    const res = await this.host.request<{ devices: NodeDevice[] }>({ t: 'device_keys', users: [user] });
    const list = (res.devices ?? []).filter((d) => d.user === user);
    this.deviceCache.set(user, { at: Date.now(), list });
    return list;
  }

  /** prefetch asks the node, in as few requests as it takes, for the
   * devices of a room's members whose devices are not known yet (joining
   * a group checks every member's credential). */
  async prefetch(roomID: string): Promise<void> {
    const users = (this.host.room(roomID)?.members ?? []).map((m) => m.user).filter((u) => !this.deviceCache.has(u));
    for (let i = 0; i < users.length; i += 200) {
      const batch = users.slice(i, i + 200);
      const res = await this.host.request<{ devices: NodeDevice[] }>({ t: 'device_keys', users: batch });
      const at = Date.now();
      for (const u of batch) this.deviceCache.set(u, { at, list: (res.devices ?? []).filter((d) => d.user === u) });
    }
  }

  /** check is the credential check of a room's commits: the identity is
   * "<user>/<device>" of a device the node lists for that user, with the
   * same signature key. */
  check(why: Why = { text: '' }): mls.CredentialCheck {
    return async (identity, key) => {
      const p = mls.parseIdentity(identity);
      if (!p) {
        why.text = 'not a device identity: ' + identity;
        return false;
      }
      let d = (await this.devices(p.user)).find((x) => x.device === p.device);
      if (!d) d = (await this.devices(p.user, true)).find((x) => x.device === p.device);
      if (!d) {
        why.text = 'unknown device ' + identity;
        return false;
      }
      if (d.key !== b64.enc(key)) {
        why.text = 'the key of ' + identity + ' is not the one the node lists';
        return false;
      }
      const pinned = this.pins[p.user]?.[p.device];
      if (pinned && pinned !== b64.enc(key)) {
        why.text = 'the key of ' + identity + ' is not the one this device accepted before';
        return false;
      }
      return true;
    };
  }

  /** pin records the devices of a group with their keys (persisted). */
  async pin(g: mls.Group): Promise<void> {
    let changed = false;
    for (const m of mls.members(g)) {
      const p = mls.parseIdentity(m.identity);
      if (!p) continue;
      const u = (this.pins[p.user] ??= {});
      if (!u[p.device]) {
        u[p.device] = b64.enc(m.key);
        changed = true;
      }
    }
    if (changed) await ks.putJSON('pins', this.pins);
  }

  /** flagsOf lists the leaves of a group to warn about, from the group's
   * own credentials and keys: the node's list only adds reasons. */
  private async flagsOf(g: mls.Group): Promise<Flag[]> {
    const out: Flag[] = [];
    const mine = this.identity();
    for (const m of mls.members(g)) {
      const p = mls.parseIdentity(m.identity);
      if (!p || m.identity === mine) continue;
      const key = b64.enc(m.key);
      const tag = deviceTag(p.device);
      const f = (why: Flag['why']) => out.push({ user: p.user, device: p.device, key, tag, why });
      let d = (await this.devices(p.user).catch(() => [] as NodeDevice[])).find((x) => x.device === p.device);
      if (!d || d.key !== key) d = (await this.devices(p.user, true).catch(() => [] as NodeDevice[])).find((x) => x.device === p.device);
      if (!d) f('unlisted');
      else if (d.key !== key) f('key');
      else if (!d.active) f('inactive');
      const v = this.meta.verified[p.user];
      if (v && v[p.device] !== key) f('unverified');
    }
    return out;
  }

  /** leavesOf returns a user's devices as the groups this device holds
   * say (one room's, or all of them), with their keys. */
  private leavesOf(user: string, roomID?: string): DeviceKey[] {
    const out = new Map<string, Uint8Array>();
    const groups = roomID ? [this.room(roomID).group] : [...this.rooms.values()].map((r) => r.group);
    for (const g of groups) {
      if (!g || !mls.isActive(g)) continue;
      for (const m of mls.members(g)) {
        const p = mls.parseIdentity(m.identity);
        if (p?.user === user && !out.has(p.device)) out.set(p.device, m.key);
      }
    }
    return [...out].map(([device, key]) => ({ device, key }));
  }

  notes(r: mls.CommitResult): Note[] {
    const out: Note[] = [];
    const by = mls.parseIdentity(r.by);
    if (r.external && by) {
      let name = '';
      try {
        name = String((JSON.parse(dec.decode(r.ad)) as { name?: unknown }).name ?? '').slice(0, 64);
      } catch {
        // no name
      }
      out.push({ k: 'device', user: by.user, device: by.device, tag: deviceTag(by.device), name, unverified: this.unverified(by.user, by.device) });
      return out;
    }
    const users = (ids: string[]) => [...new Set(ids.map((i) => mls.parseIdentity(i)).filter((x) => !!x))];
    for (const a of users(r.added)) {
      if (by && a!.user === by.user) out.push({ k: 'device', user: a!.user, device: a!.device, tag: deviceTag(a!.device), name: '', unverified: this.unverified(a!.user, a!.device) });
      else if (!out.some((n) => n.k === 'add' && n.user === a!.user)) out.push({ k: 'add', by: by?.user ?? '', user: a!.user });
    }
    for (const x of users(r.removed)) {
      const stays = mlsMembersOf(r.group).some((m) => m.user === x!.user);
      if (stays) out.push({ k: 'device_remove', user: x!.user, device: x!.device, tag: deviceTag(x!.device) });
      else if (!out.some((n) => n.k === 'remove' && n.user === x!.user)) out.push({ k: 'remove', by: by?.user ?? '', user: x!.user });
    }
    return out;
  }

  // Sending.

  sentPayload(cid: string): Payload | undefined {
    return this.sent.get(cid);
  }

  /** encrypt makes the application message of a payload for a room, in
   * its current epoch; the payload is kept to show the message once the
   * node returns it (MLS cannot open one's own messages). */
  async encrypt(roomID: string, cid: string, payload: Omit<Payload, 'v'>): Promise<string> {
    await this.start(this.host);
    const r = this.room(roomID);
    return r.run(async () => {
      await r.drain();
      if (!r.group || r.lost || !mls.isActive(r.group)) throw new SendError('not_in_group');
      // Kept before the first encryption, so that a new attempt (after
      // epoch_mismatch) carries the same message id.
      let full = this.sent.get(cid);
      if (!full) {
        full = { v: PAYLOAD_VERSION, ...payload } as Payload;
        if (full.v === PAYLOAD_VERSION && (full.type === 'text' || full.type === 'file' || full.type === 'call') && !full.id) full.id = newMessageID();
        this.sent.set(cid, full);
        await ks.putJSON('s:' + cid, full);
      }
      const m = await mls.encrypt(r.group, encodePayload(full));
      r.group = m.group;
      await r.save();
      return b64.enc(m.message);
    });
  }

  /** bind forgets the kept payload of a sent message once shown. */
  async bind(cid: string): Promise<void> {
    if (this.sent.delete(cid)) await ks.del('s:' + cid);
  }

  /** catchUp processes the room's commits until its epoch is at least
   * epoch (after an epoch_mismatch). */
  catchUp(roomID: string, epoch: number): Promise<void> {
    const r = this.room(roomID);
    return r.run(async () => {
      await r.drain();
      // The log may be ahead of what this client heard of.
      for (let i = 0; i < 20 && r.group && mls.epochOf(r.group) < BigInt(epoch); i++) {
        const before = r.seq;
        await r.drain(r.seq + 1);
        if (r.seq === before) break;
      }
      if (r.group && mls.epochOf(r.group) < BigInt(epoch)) {
        // The whole log is processed and the group is further on: this
        // device missed (or refused) a commit the others took. It joins
        // again, by external commit.
        r.lost = true;
        await r.save();
      }
    });
  }

  /** send runs a send of an encrypted room through the rules of the
   * node: encrypt, and on epoch_mismatch catch up, on remove_pending
   * commit the removals, on not_in_group join; then again. */
  async send(id: string, roomID: string, payload: Omit<Payload, 'v'>): Promise<Frame> {
    return this.underRules(roomID, async () => {
      const data = await this.encrypt(roomID, id, payload);
      const f: Record<string, unknown> = { t: 'send', room: roomID, type: 'encrypted', data };
      // A file's id travels in clear, so that the node ties the file to
      // the message (PROTOCOL.md, "Files"); its key and name do not.
      if (payload.file) f.file = { id: payload.file.id };
      return this.host.frame(f, id);
    });
  }

  /** underRules runs attempt, an encryption and its frame, again after
   * what the node's refusal asks: on epoch_mismatch catch up, on
   * remove_pending commit the removals, on not_in_group join. */
  private async underRules<T>(roomID: string, attempt: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (e) {
        if (!(e instanceof SendError) || i >= 4) throw e;
        switch (e.code) {
          case 'epoch_mismatch':
            await this.catchUp(roomID, Number(e.frame.epoch ?? 0));
            continue;
          case 'remove_pending':
            await this.removeDevices(roomID, (e.frame.devices as string[]) ?? []);
            continue;
          case 'not_in_group':
            await this.joinRoom(roomID);
            continue;
        }
        throw e;
      }
    }
  }

  // Calls (PROTOCOL.md, "Calls"): signals are application messages of
  // the room's group, relayed by the node without being stored.

  /** signal encrypts a call's signal for the room's group and sends it
   * with a call frame, through the node's rules as send does. */
  async signal(roomID: string, plaintext: Uint8Array): Promise<void> {
    await this.start(this.host);
    const r = this.room(roomID);
    await this.underRules(roomID, async () => {
      const data = await r.run(async () => {
        await r.drain();
        if (!r.group || r.lost || !mls.isActive(r.group)) throw new SendError('not_in_group');
        const m = await mls.encrypt(r.group, plaintext);
        r.group = m.group;
        await r.save();
        return b64.enc(m.message);
      });
      return this.host.frame({ t: 'call', room: roomID, data }, newID('k-'));
    });
  }

  /** openSignal decrypts a call frame: the plaintext and the device that
   * sent it as MLS says, which must be the one the node names. A frame
   * that does not open (altered, replayed, from outside the group)
   * throws. */
  async openSignal(f: Frame): Promise<{ user: string; device: string; plaintext: Uint8Array }> {
    await this.start(this.host);
    const roomID = String(f.room);
    const r = this.room(roomID);
    return r.run(async () => {
      await r.drain();
      if (!r.group || r.lost) throw new Error('not in the room’s group');
      const d = await mls.decrypt(r.group, b64.dec(String(f.data)));
      r.group = d.group;
      await r.save();
      const who = mls.parseIdentity(d.sender);
      if (!who || who.user !== f.from || who.device !== f.dev) throw new Error('a signal from another device than the node says: ' + d.sender);
      return { ...who, plaintext: d.plaintext };
    });
  }

  /** callKey is the media key of calls in a room for its group's current
   * epoch (MLS exporter, label "relais call media v1", the room id as
   * context): a new epoch — someone added or removed — is a new key, and
   * a removed member cannot compute the next one. With it, the group's
   * devices in that epoch. */
  async callKey(roomID: string): Promise<{ epoch: number; key: Uint8Array; devices: string[] }> {
    await this.start(this.host);
    const r = this.room(roomID);
    return r.run(async () => {
      await r.drain();
      if (!r.group || r.lost || !mls.isActive(r.group)) throw new Error('not in the room’s group');
      // The devices of that epoch, "user/device": a group call hangs up
      // on the ones that left (group.ts).
      const devices = mlsMembersOf(r.group).map((m) => m.user + '/' + m.device);
      return { epoch: Number(mls.epochOf(r.group)), key: await mls.exporter(r.group, 'relais call media v1', enc.encode(roomID), 32), devices };
    });
  }

  /** callSafety is what the call screen shows of a person: their devices
   * in the room's group (its leaves), whether this device verified them,
   * and whether their devices changed since. */
  callSafety(roomID: string, user: string): { devices: number; verified: boolean; changed: boolean } {
    const r = this.rooms.get(roomID);
    const devices = r?.group ? mlsMembersOf(r.group).filter((m) => m.user === user).length : 0;
    return { devices, verified: !!this.meta.verified[user], changed: e2eState.changed.has(user) };
  }

  // Group operations.

  private async sendCommit(f: Record<string, unknown>, id: string): Promise<Frame> {
    for (let i = 0; ; i++) {
      try {
        return await this.host.frame(f, id);
      } catch (e) {
        if (e instanceof SendError && (e.code === 'disconnected' || e.code === 'timeout') && i < 5) {
          await this.host.whenReady();
          continue;
        }
        throw e;
      }
    }
  }

  /** commitRoom commits adds and removes in a room, in as many commits as
   * the frame size needs, retrying on epoch_mismatch. */
  private async commitRoom(r: RoomCrypto, adds: { kp: mls.NewKeyPackage['public']; user: string; device: string }[], removeIds: string[]): Promise<void> {
    let todo = adds.slice();
    let removes = removeIds.slice();
    for (let attempt = 0; attempt < 8 && (todo.length || removes.length); attempt++) {
      await r.drain();
      const g = r.group;
      if (!g) throw new SendError('not_in_group');
      const leaves = mls.members(g);
      const removeLeaves = leaves.filter((m) => removes.includes(m.identity) && m.leaf !== mls.ownLeaf(g));
      const present = new Set(leaves.map((m) => m.identity));
      todo = todo.filter((a) => !present.has(mls.identity(a.user, a.device)));
      if (!todo.length && !removeLeaves.length) return;
      let k = todo.length;
      let c: mls.Committed;
      for (;;) {
        c = await mls.commit(
          g,
          todo.slice(0, k).map((a) => a.kp),
          removeLeaves.map((m) => m.leaf),
        );
        const size = ((c.commit.length + (c.welcome?.length ?? 0) + c.groupInfo.length) * 4) / 3 + 256 + removeLeaves.length * 60;
        if (size <= FRAME_BUDGET || k <= 1) break;
        k = Math.ceil(k / 2);
      }
      const me = this.me!.user;
      const notes: Note[] = [];
      for (const a of todo.slice(0, k)) {
        if (a.user === me) notes.push({ k: 'device', user: me, device: a.device, tag: deviceTag(a.device), name: '' });
        else if (!notes.some((n) => n.k === 'add' && n.user === a.user)) notes.push({ k: 'add', by: me, user: a.user });
      }
      for (const m of removeLeaves) {
        const p = mls.parseIdentity(m.identity)!;
        if (!notes.some((n) => n.k === 'remove' && n.user === p.user)) notes.push({ k: 'remove', by: me, user: p.user });
      }
      const cid = newID('c-');
      r.pending = { cid, c, notes };
      const f: Record<string, unknown> = { t: 'mls', room: r.id, data: b64.enc(c.commit), group_info: b64.enc(c.groupInfo) };
      if (c.welcome) f.welcome = b64.enc(c.welcome);
      if (removeLeaves.length) f.removes = removeLeaves.map((m) => m.identity);
      let ack: Frame;
      try {
        ack = await this.sendCommit(f, cid);
      } catch (e) {
        r.pending = undefined;
        if (e instanceof SendError && e.code === 'epoch_mismatch') {
          if (mls.epochOf(g) === 0n) throw e; // someone else founded the group
          await r.drain(r.seq + 1);
          continue;
        }
        if (e instanceof SendError && e.code === 'remove_pending') {
          for (const d of (e.frame.devices as string[]) ?? []) if (!removes.includes(d)) removes.push(d);
          continue;
        }
        throw e;
      }
      await r.drain(Number(ack.seq));
      if (r.pending?.cid === cid) {
        // The event did not come back (history unavailable): the ack is
        // the node's word that the commit is in the log at that seq.
        r.group = c.group;
        r.seq = Number(ack.seq);
        r.pending = undefined;
        await r.save();
      }
      const done = new Set(removeLeaves.map((m) => m.identity));
      removes = removes.filter((x) => !done.has(x));
      todo = todo.slice(k);
      attempt = -1;
    }
  }

  /** claim takes KeyPackages of users' devices (one's own other devices
   * too) and keeps those whose credential checks out. */
  private async claim(users: string[], suite: mls.SuiteID): Promise<{ kp: mls.NewKeyPackage['public']; user: string; device: string }[]> {
    if (!users.length) return [];
    const res = await this.host.request<{ key_packages: { user: string; device: string; key_package: string }[] }>({ t: 'claim_keys', users, suite });
    const out: { kp: mls.NewKeyPackage['public']; user: string; device: string }[] = [];
    for (const k of res.key_packages ?? []) {
      try {
        const kp = mls.decodeKeyPackage(b64.dec(k.key_package));
        if (mls.keyPackageIdentity(kp) !== mls.identity(k.user, k.device)) continue;
        if (!(await this.check()(mls.keyPackageIdentity(kp), kp.leafNode.signaturePublicKey))) continue;
        out.push({ kp, user: k.user, device: k.device });
      } catch {
        // not a KeyPackage we can use
      }
    }
    return out;
  }

  /** found publishes the group of a room this device created: the group
   * at epoch 0, then a commit adding the others' devices. */
  async found(roomID: string, others: string[]): Promise<void> {
    await this.start(this.host);
    const r = this.room(roomID);
    await r.run(async () => {
      if (r.group && mls.epochOf(r.group) > 0n) return;
      const room = this.host.room(roomID);
      if (room && (room.epoch ?? 0) > 0) return;
      const kp = await mls.newKeyPackage(mls.DEFAULT_SUITE, this.identity(), this.signer());
      r.group = await mls.newGroup(mls.DEFAULT_SUITE, roomID, kp);
      r.joined = 1;
      const adds = await this.claim([...new Set([...others, this.me!.user])], mls.DEFAULT_SUITE);
      try {
        await this.commitRoom(r, adds, []);
        if (mls.epochOf(r.group!) === 0n) await this.commitEmpty(r);
      } catch (e) {
        // Someone else founded it first: join instead, later.
        r.group = undefined;
        r.joined = 0;
        throw e;
      }
      await r.save();
    });
  }

  private async commitEmpty(r: RoomCrypto): Promise<void> {
    const c = await mls.commit(r.group!, [], []);
    const cid = newID('c-');
    r.pending = { cid, c, notes: [{ k: 'founded', by: this.me!.user }] };
    const ack = await this.sendCommit({ t: 'mls', room: r.id, data: b64.enc(c.commit), group_info: b64.enc(c.groupInfo) }, cid);
    await r.drain(Number(ack.seq));
  }

  /** addUsers adds the devices of people just invited. */
  async addUsers(roomID: string, users: string[]): Promise<void> {
    await this.start(this.host);
    const r = this.room(roomID);
    await r.run(async () => {
      await r.drain();
      if (!r.group) return;
      await this.commitRoom(r, await this.claim(users, r.group.suite), []);
    });
  }

  /** removeUsers removes every device of people no longer in the room. */
  async removeUsers(roomID: string, users: string[]): Promise<void> {
    await this.start(this.host);
    const r = this.room(roomID);
    await r.run(async () => {
      await r.drain();
      if (!r.group) return;
      const ids = mls
        .members(r.group)
        .filter((m) => users.includes(mls.parseIdentity(m.identity)?.user ?? ''))
        .map((m) => m.identity);
      if (ids.length) await this.commitRoom(r, [], ids);
    });
  }

  /** removeDevices commits the removals the node asks for. */
  async removeDevices(roomID: string, ids: string[]): Promise<void> {
    const r = this.room(roomID);
    await r.run(() => this.commitRoom(r, [], ids));
  }

  /** removeIfDesignated removes the devices of someone who left, if this
   * device is the one to do it: the device that removed them, or for a
   * departure, the remaining member device of lowest leaf. Others do it
   * when the node says remove_pending. */
  async removeIfDesignated(roomID: string, ev: Ev): Promise<void> {
    const user = ev.user;
    const room = this.host.room(roomID);
    if (!user || !room || room.members?.some((m) => m.user === user && (m.state === 'joined' || m.state === 'invited'))) return;
    const r = this.room(roomID);
    const g = r.group;
    if (!g || !mls.isActive(g)) return;
    const all = mls.members(g);
    if (!all.some((m) => mls.parseIdentity(m.identity)?.user === user)) return;
    const me = this.me!;
    const kicker = ev.from === me.user && ev.dev === me.device;
    const lowest = all.filter((m) => mls.parseIdentity(m.identity)?.user !== user).sort((a, b) => a.leaf - b.leaf)[0];
    if (kicker || (ev.from === user && lowest?.identity === this.identity())) await this.removeUsers(roomID, [user]);
  }

  /** joinRoom joins a room's group by external commit, if this device is
   * not in it (a new device of a member). */
  async joinRoom(roomID: string): Promise<void> {
    await this.start(this.host);
    const r = this.room(roomID);
    await r.run(async () => {
      if (r.group && !r.lost && mls.isActive(r.group)) return;
      for (let attempt = 0; attempt < 6; attempt++) {
        const gi = await this.host.request<{ epoch: number; group_info?: string }>({ t: 'group_info', room: roomID });
        if (!gi.group_info) throw new SendError('unavailable', 'the group is not published yet');
        await this.prefetch(roomID).catch(() => undefined);
        const info = mls.readGroupInfo(b64.dec(gi.group_info));
        if (info.groupId !== roomID) throw new SendError('forbidden', 'the GroupInfo is for another group than this room’s');
        const kp = await mls.newKeyPackage(info.suite, this.identity(), this.signer());
        const why: Why = { text: '' };
        let c: mls.Committed;
        try {
          c = await mls.externalJoin(b64.dec(gi.group_info), kp, this.check(why), enc.encode(JSON.stringify({ name: this.host.deviceName() })));
        } catch (e) {
          throw new SendError('forbidden', 'the group refused: ' + (why.text || String(e)));
        }
        const cid = newID('c-');
        r.pending = { cid, c, notes: [{ k: 'device', user: this.me!.user, device: this.me!.device, tag: deviceTag(this.me!.device), name: this.host.deviceName() }], joined: true };
        let ack: Frame;
        try {
          ack = await this.sendCommit({ t: 'mls', room: roomID, data: b64.enc(c.commit), group_info: b64.enc(c.groupInfo) }, cid);
        } catch (e) {
          r.pending = undefined;
          if (e instanceof SendError && e.code === 'epoch_mismatch') continue;
          throw e;
        }
        for (const s of r.buffer.keys()) if (s < Number(ack.seq)) r.buffer.delete(s);
        const seq = Number(ack.seq);
        r.lost = false;
        r.group = undefined;
        r.seq = seq - 1;
        r.joined = seq;
        setJoinedAt(roomID, seq);
        await r.drain(seq);
        if (r.pending?.cid === cid) {
          r.group = c.group;
          r.seq = seq;
          r.pending = undefined;
        }
        await r.save();
        return;
      }
      throw new SendError('unavailable', 'the group keeps changing');
    });
    this.host.changed(roomID);
  }

  /** synced runs after each resync: it catches up on every encrypted
   * room, joins those this device is not in yet, and removes devices
   * that were signed out. */
  async synced(): Promise<void> {
    await this.start(this.host);
    for (const room of this.host.rooms()) {
      if (!room.encrypted || room.state !== 'joined') continue;
      const r = this.room(room.id);
      await r.run(() => r.drain()).catch(() => undefined);
      await this.ensure(room.id);
      await this.removeSignedOut(room.id).catch((e) => console.warn('relais e2e: remove signed-out devices', e));
    }
    this.refreshWarnings();
  }

  /** ensure joins a room's group by external commit if this device is not
   * in it and no Welcome is on its way (a new device, or someone who
   * joined a room while having no KeyPackages). */
  async ensure(roomID: string): Promise<void> {
    const room = this.host.room(roomID);
    if (!room?.encrypted || room.state !== 'joined' || (room.epoch ?? 0) === 0 || this.welcomesSeen.has(roomID)) return;
    const r = this.room(roomID);
    await r.run(async () => undefined);
    if (r.group && !r.lost && mls.isActive(r.group)) return;
    await this.joinRoom(roomID).catch((e) => console.warn('relais e2e: join ' + roomID, e));
  }

  /** removeSignedOut removes from a room's group the devices the node
   * lists as signed out (revoked, lost): they must not get the keys of
   * what follows. The member device of lowest leaf does it. */
  private async removeSignedOut(roomID: string): Promise<void> {
    const r = this.room(roomID);
    const g = r.group;
    if (!g || r.lost || !mls.isActive(g)) return;
    const all = mls.members(g);
    const gone: string[] = [];
    for (const user of new Set(all.map((m) => mls.parseIdentity(m.identity)?.user ?? ''))) {
      if (!user) continue;
      const devs = await this.devices(user, true);
      for (const m of all) {
        const p = mls.parseIdentity(m.identity);
        const d = p?.user === user ? devs.find((x) => x.device === p.device) : undefined;
        if (p?.user === user && m.identity !== this.identity() && (!d || !d.active)) gone.push(m.identity);
      }
    }
    if (!gone.length) return;
    const remaining = all.filter((m) => !gone.includes(m.identity)).sort((a, b) => a.leaf - b.leaf);
    if (remaining[0]?.identity === this.identity()) await this.removeDevices(roomID, gone);
  }

  later(f: () => Promise<void>): void {
    setTimeout(() => void f().catch((e) => console.warn('relais e2e:', e)), 0);
  }

  // Verification.

  /** safety computes the safety number of this user and another from
   * the devices of both in a room's group (or every group this device
   * holds): what is compared is what will read the messages, not what the
   * node lists. */
  async safety(user: string, roomID?: string): Promise<{ groups: string[]; mine: ShownDevice[]; theirs: ShownDevice[] }> {
    await this.start(this.host);
    const me = this.me!.user;
    if (roomID) await this.touch(roomID);
    const mine = this.leavesOf(me, roomID);
    const theirs = this.leavesOf(user, roomID);
    const groups = await safetyNumber({ user: me, devices: mine }, { user, devices: theirs });
    const shown = async (u: string, l: DeviceKey[]): Promise<ShownDevice[]> => {
      const listed = await this.devices(u, true).catch(() => [] as NodeDevice[]);
      return l.map((d) => {
        const n = listed.find((x) => x.device === d.device && x.key === b64.enc(d.key));
        return { device: d.device, created: n?.created ?? 0, listed: !!n };
      });
    };
    return { groups, mine: await shown(me, mine), theirs: await shown(user, theirs) };
  }

  /** setVerified marks a person verified with the devices the groups say
   * they have (those of the room the number was compared in). */
  async setVerified(user: string, on: boolean, roomID?: string): Promise<void> {
    if (on) {
      let theirs = this.leavesOf(user, roomID).map((d) => [d.device, b64.enc(d.key)] as const);
      if (!theirs.length) theirs = Object.entries(this.pins[user] ?? {});
      this.meta.verified[user] = Object.fromEntries(theirs);
    } else delete this.meta.verified[user];
    await ks.putJSON('meta', this.meta);
    e2eState.verified = new Set(Object.keys(this.meta.verified));
    await this.saveMetaBackup();
    this.refreshWarnings();
  }

  /** unverified says whether a device is new for a person verified on
   * this device. */
  private unverified(user: string, device: string): boolean {
    const v = this.meta.verified[user];
    return !!v && !(device in v);
  }

  /** refreshWarnings recomputes, from the groups' own leaves, what each
   * encrypted room must warn about, and which verified people have a
   * device in a group that was not verified. */
  refreshWarnings(): void {
    void (async () => {
      const changed = new Set<string>();
      const flags = new Map<string, Flag[]>();
      for (const r of [...this.rooms.values()]) {
        if (!r.group || r.lost || !mls.isActive(r.group)) continue;
        const f = await this.flagsOf(r.group);
        flags.set(r.id, f);
        for (const x of f) if (this.meta.verified[x.user]) changed.add(x.user);
      }
      e2eState.flags = flags;
      e2eState.changed = changed;
      this.host.status();
    })().catch((e) => console.warn('relais e2e: warnings', e));
  }

  // Recovery key and backups.

  private async useRecoveryKey(raw: Uint8Array): Promise<void> {
    const user = this.me!.user;
    this.backups.user = user;
    this.backups.key = await backup.backupKey(raw, user, 'history');
    this.backups.metaKey = await backup.backupKey(raw, user, 'meta');
  }

  /** checkRecovery decides whether this device makes the user's recovery
   * key (first device), needs it (backups exist), or holds it. */
  private async checkRecovery(): Promise<void> {
    try {
      if (this.backups.key) {
        for (const b of await backup.list()) this.backups.exists.add(b.name);
        e2eState.recovery = 'ok';
        return;
      }
      const list = await backup.list();
      for (const b of list) this.backups.exists.add(b.name);
      if (list.some((b) => b.name === 'meta.v1')) {
        e2eState.recovery = 'needed';
        return;
      }
      const key = backup.newRecoveryKey();
      const raw = backup.parseKey(key)!;
      await ks.put('recovery', raw);
      await this.useRecoveryKey(raw);
      await this.saveMetaBackup();
      e2eState.key = key;
      e2eState.recovery = 'show';
    } catch (e) {
      if (this.started) console.warn('relais e2e: recovery', e);
    } finally {
      this.host.status();
    }
  }

  private async saveMetaBackup(): Promise<void> {
    if (!this.backups.metaKey) return;
    const data = enc.encode(JSON.stringify({ v: 1, verified: this.meta.verified }));
    await backup.upload('meta.v1', await backup.seal(this.backups.metaKey, this.me!.user, 'meta.v1', data));
  }

  /** recoveryKey returns this device's recovery key, formatted. */
  async recoveryKey(): Promise<string> {
    const raw = await ks.get('recovery');
    return raw ? backup.formatKey(raw) : '';
  }

  confirmRecoveryShown(): void {
    e2eState.key = '';
    e2eState.recovery = 'ok';
    this.host.status();
  }

  /** restore checks a recovery key typed by the user against the meta
   * backup, keeps it, and restores the decrypted history of every room.
   * It returns the number of messages restored. */
  async restore(typed: string): Promise<number> {
    await this.start(this.host);
    const raw = backup.parseKey(typed);
    if (!raw) throw new Error('bad_recovery_key');
    const user = this.me!.user;
    const metaKey = await backup.backupKey(raw, user, 'meta');
    const m = await backup.download('meta.v1');
    if (!m) throw new Error('no_backup');
    let meta: Meta;
    try {
      meta = JSON.parse(dec.decode(await backup.open(metaKey, user, 'meta.v1', m))) as Meta;
    } catch {
      throw new Error('bad_recovery_key');
    }
    await ks.put('recovery', raw);
    await this.useRecoveryKey(raw);
    this.meta.verified = { ...meta.verified, ...this.meta.verified };
    await ks.putJSON('meta', this.meta);
    e2eState.verified = new Set(Object.keys(this.meta.verified));
    let count = 0;
    const names = await backup.list();
    for (const b of names) this.backups.exists.add(b.name);
    for (const b of names) {
      if (!b.name.startsWith('h.')) continue;
      const got = await this.backups.fetch(b.name).catch(() => null);
      if (!got) continue;
      const r = this.room(got.room);
      await r.run(async () => {
        for (const [seq, p] of Object.entries(got.entries)) {
          const cur = plainOf(got.room, Number(seq));
          if (!cur || !cur.ok) {
            r.put(Number(seq), p);
            if (p.ok && p.kind === 'msg') count++;
          }
        }
        await r.flushPlains();
      });
      this.host.changed(got.room);
    }
    e2eState.recovery = 'ok';
    this.host.status();
    this.refreshWarnings();
    return count;
  }

  /** probe tries to open an application message with this device's
   * stored group state of a room, keeping nothing: for diagnostics, and
   * for the browser test that proves a removed member cannot read what
   * follows its removal. */
  async probe(roomID: string, data: string): Promise<{ ok: boolean; text: string; epoch: string }> {
    await this.start(this.host);
    const r = this.room(roomID);
    return r.run(async () => {
      const stored = await ks.get('g:' + roomID);
      const meta = await ks.getJSON<GroupMeta>('gm:' + roomID);
      if (!stored || !meta) return { ok: false, text: 'no group state on this device', epoch: '' };
      const g = mls.decodeGroup(meta.suite, stored);
      try {
        const d = await mls.decrypt(g, b64.dec(data));
        return { ok: true, text: dec.decode(d.plaintext), epoch: String(mls.epochOf(g)) };
      } catch (e) {
        return { ok: false, text: e instanceof Error ? e.message : String(e), epoch: String(mls.epochOf(g)) };
      }
    });
  }

  /** flushBackups uploads what changed now (tests, sign-out). */
  flushBackups(): Promise<void> {
    return this.backups.flush();
  }
}

function mlsMembersOf(g: mls.Group): { user: string; device: string }[] {
  return mls
    .members(g)
    .map((m) => mls.parseIdentity(m.identity))
    .filter((x): x is { user: string; device: string } => !!x);
}
