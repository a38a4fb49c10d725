// The client's state: rooms and their timelines, members, receipts,
// typing, profiles, unread counters, the outbox, and the offline cache.
// Components subscribe to topics ("rooms", "room:<id>", "profiles",
// "status", "me") and re-render when one changes.

import { api, deviceName, Me } from './api';
import { Ev, EvFile, encodeEdit, encodeText, isMessage } from './codec';
import { e2e, e2eState, loadedE2E, newRoomEncryption, plainOf, resetE2E, setHost, setPlain } from './crypto';
import { classify, Frame } from './frames';
import * as idb from './idb';
import { plain } from './markdown';
import { OutEntry, Outbox, SendFields, SendError, retryRateLimited } from './outbox';
import { Socket, Status } from './socket';
import { t } from './i18n';
import type { FileRef } from './payload';

export interface Profile {
  id: string;
  name: string;
  org?: string;
  /** tells apart namesakes of one administration; derived from the id, never from the address */
  tag?: string;
  ext?: boolean;
  active?: boolean;
  /** the administration of someone homed in a peered one, as pinned at peering */
  admin?: string;
  admin_id?: string;
}

export interface Member {
  user: string;
  role: string;
  state: string;
}

export interface RoomFrame {
  id: string;
  kind: 'direct' | 'group' | 'forum';
  name?: string;
  topic?: string;
  externals?: boolean;
  encrypted?: boolean;
  epoch?: number;
  members?: Member[];
  count: number;
  last_seq: number;
  last_ts?: number;
  role: string;
  state: string;
  invited_by?: string;
  read_seq: number;
  unread: number;
  mentions: number;
}

export interface Room extends RoomFrame {
  timeline: Ev[]; // contiguous, ascending seq
  more: boolean; // older events exist that are not loaded
  loadingOlder: boolean;
  receipts: Record<string, number>;
  typing: Record<string, number>; // user → expiry (ms)
}

const CACHE_EVENTS = 60;
const SIGNED_IN = 'relais.signedIn';
/** localStorage flag of a device whose KeyPackages are published. */
const E2E_READY = 'relais.e2e.device';

type Listener = () => void;

class Store {
  me: Me | null = null;
  rooms = new Map<string, Room>();
  profiles = new Map<string, Profile>();
  presence = new Map<string, string>();
  /** signIns are the "new sign-in to your account" alerts not yet
   * answered, newest last. */
  signIns: SignIn[] = [];
  /** signInsChecked is set once the missed sign-ins were looked up. */
  signInsChecked = false;
  status: Status = 'offline';
  openRoom: string | null = null;
  synced = false;
  /** Increments on every change of a topic, for components' memo keys. */
  version = new Map<string, number>();

  socket: Socket;
  outbox: Outbox;

  private listeners = new Map<string, Set<Listener>>();
  private dirty = new Set<string>();
  private flushing = false;
  private wantProfiles = new Set<string>();
  private profileTimer: ReturnType<typeof setTimeout> | null = null;
  private readTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private cacheDirty = new Set<string>();
  private cacheTimer: ReturnType<typeof setTimeout> | null = null;
  private membersAsked = new Set<string>();
  private e2eChain: Promise<unknown> = Promise.resolve();
  onSignedOut: () => void = () => {};
  /** outboxWatchers are told every change of an outbox entry. */
  outboxWatchers = new Set<(e: OutEntry) => void>();

  constructor() {
    this.socket = new Socket({
      cursors: () => this.cursors(),
      onHello: (f) => this.hello(f),
      onFrame: (f) => this.frame(f),
      onSynced: () => this.onSynced(),
      onStatus: (s) => {
        this.status = s;
        if (s !== 'online') {
          this.outbox.setOnline(false);
          this.membersAsked.clear();
          this.presence.clear();
          for (const r of this.rooms.values()) r.typing = {};
        }
        this.emit('status');
      },
      onRevoked: () => this.signedOut(),
      checkSession: () => api.me().then(() => true, (e) => e?.status !== 401),
    });
    this.outbox = new Outbox(
      {
        load: () => idb.all<OutEntry>('outbox'),
        put: (e) => idb.put('outbox', e),
        delete: (id) => idb.del('outbox', id),
      },
      (id, f) => this.sendFrame(id, f),
      (e) => {
        this.outboxWatchers.forEach((f) => f(e));
        if (e.state === 'sent' && this.rooms.get(e.fields.room)?.timeline.some((ev) => ev.cid === e.id)) this.outbox.forget(e.id);
        this.emit('room:' + e.fields.room);
        this.emit('rooms');
      },
    );
    setHost({
      me: () => (this.me ? { user: this.me.id, device: this.me.device } : null),
      request: (f) => this.socket.request(f),
      // Encryption's frames (commits, claims, acknowledgements) come in
      // bursts, a new device's external joins above all: past the node's
      // limit they wait their turn instead of failing.
      frame: (f, id) => retryRateLimited(() => this.socket.frame(f, id)),
      whenReady: () => this.socket.whenReady(),
      room: (id) => this.rooms.get(id),
      rooms: () => [...this.rooms.values()],
      changed: (room) => {
        this.emit('room:' + room);
        this.emit('rooms');
      },
      status: () => {
        if (e2eState.ready && this.me) localStorage.setItem(E2E_READY, this.me.device);
        this.emit('e2e');
        this.emit('rooms');
      },
      deviceName,
    });
    addEventListener('pagehide', () => void this.saveCache());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.openRoom) this.markRead(this.openRoom);
      this.socket.notify({ t: 'presence', status: document.visibilityState === 'visible' ? 'online' : 'away' });
    });
  }

  // Subscriptions.

  subscribe(topic: string, f: Listener): () => void {
    let s = this.listeners.get(topic);
    if (!s) this.listeners.set(topic, (s = new Set()));
    s.add(f);
    return () => s!.delete(f);
  }

  emit(topic: string): void {
    this.version.set(topic, (this.version.get(topic) ?? 0) + 1);
    this.dirty.add(topic);
    if (!this.flushing) {
      this.flushing = true;
      queueMicrotask(() => {
        this.flushing = false;
        const topics = [...this.dirty];
        this.dirty.clear();
        for (const tp of topics) this.listeners.get(tp)?.forEach((f) => f());
      });
    }
  }

  // Session.

  static wasSignedIn(): boolean {
    return localStorage.getItem(SIGNED_IN) === '1';
  }

  /** start loads the offline cache and connects, once signed in. */
  async start(me: Me): Promise<void> {
    localStorage.setItem(SIGNED_IN, '1');
    this.me = me;
    this.profiles.set(me.id, { id: me.id, name: me.name, org: me.org, ext: me.ext, active: true });
    try {
      const owner = await idb.get<{ id: string; user: string }>('kv', 'owner');
      if (owner && owner.user !== me.id) await idb.clearAll();
      await idb.put('kv', { id: 'owner', user: me.id });
      await this.loadCache();
      await this.outbox.load();
      // Show what was decrypted before, without waiting for the network.
      const encrypted = [...this.rooms.values()].filter((r) => r.encrypted && r.state === 'joined');
      if (encrypted.length && localStorage.getItem(E2E_READY) === me.device) this.withE2E((m) => encrypted.forEach((r) => void m.touch(r.id)));
    } catch (e) {
      console.warn('offline cache unavailable', e);
    }
    this.emit('me');
    this.emit('rooms');
    this.socket.start();
  }

  async signOut(): Promise<void> {
    try {
      await api.logout();
    } catch {
      // Signed out locally all the same.
    }
    await this.signedOut();
  }

  private async signedOut(): Promise<void> {
    this.socket.stop();
    resetE2E();
    localStorage.removeItem(SIGNED_IN);
    localStorage.removeItem(E2E_READY);
    for (const k of Object.keys(localStorage)) if (k.startsWith('draft:')) localStorage.removeItem(k);
    try {
      await idb.clearAll();
    } catch {
      // nothing cached
    }
    this.me = null;
    this.rooms.clear();
    this.profiles.clear();
    this.openRoom = null;
    this.emit('me');
    this.onSignedOut();
  }

  private cursors(): Record<string, number> {
    const o: Record<string, number> = {};
    for (const r of this.rooms.values()) {
      const last = r.timeline[r.timeline.length - 1];
      if (last) o[r.id] = last.seq;
    }
    return o;
  }

  private hello(f: Frame): void {
    const u = f.user as Profile | undefined;
    if (u?.id) this.profiles.set(u.id, u);
    this.synced = false;
  }

  private onSynced(): void {
    this.synced = true;
    this.outbox.setOnline(true);
    void this.checkSignIns().catch(() => {});
    // A joined room that came without events (a new device whose sync
    // skipped them) gets its last page, for the preview.
    for (const r of this.rooms.values()) if (r.state === 'joined' && r.last_seq > 0 && r.timeline.length === 0) void this.loadOlder(r.id);
    if (this.openRoom) this.opened(this.openRoom);
    // The MLS chunk loads when this device must publish its keys, or has
    // encrypted rooms to follow.
    const encrypted = [...this.rooms.values()].some((r) => r.encrypted && r.state === 'joined');
    if (encrypted || localStorage.getItem(E2E_READY) !== this.me?.device) this.withE2E((m) => m.synced());
    this.emit('rooms');
    this.emit('status');
  }

  /** withE2E runs f with the MLS chunk, in the order of the calls. */
  withE2E(f: (m: Awaited<ReturnType<typeof e2e>>) => unknown): void {
    this.e2eChain = this.e2eChain
      .then(() => e2e())
      .then((m) => void Promise.resolve(f(m)).catch((e) => console.warn('relais e2e:', e)))
      .catch((e) => console.warn('relais e2e: load', e));
  }

  // Frames.

  private frame(f: Frame): void {
    switch (f.t) {
      case 'room':
        return this.roomFrame(f as unknown as RoomFrame);
      case 'ev':
        return this.event(f as unknown as Ev, true);
      case 'gap': {
        const r = this.rooms.get(String(f.room));
        if (r) {
          r.timeline = [];
          r.more = true;
          this.emit('room:' + r.id);
        }
        return;
      }
      case 'receipt': {
        const r = this.rooms.get(String(f.room));
        if (r) {
          const u = String(f.user);
          r.receipts[u] = Math.max(r.receipts[u] ?? 0, Number(f.seq));
          this.emit('room:' + r.id);
        }
        return;
      }
      case 'unread': {
        const r = this.rooms.get(String(f.room));
        if (r) {
          r.read_seq = Number(f.read_seq);
          r.unread = Number(f.unread);
          r.mentions = Number(f.mentions);
          this.emit('rooms');
          this.cache(r.id);
        }
        return;
      }
      case 'typing': {
        const r = this.rooms.get(String(f.room));
        const u = String(f.user);
        if (!r || u === this.me?.id) return;
        if (f.on) {
          r.typing[u] = Date.now() + 7000;
          setTimeout(() => this.expireTyping(r.id), 7100);
        } else delete r.typing[u];
        this.emit('room:' + r.id);
        return;
      }
      case 'presence':
        this.presence.set(String(f.user), String(f.status));
        this.emit('presence');
        return;
      case 'file_state':
        return this.fileStateFrame(String(f.room), f.file as EvFile);
      case 'welcome':
      case 'low_keys':
      case 'device':
        this.withE2E((m) => m.onFrame(f));
        return;
      case 'call':
        this.onCallFrame(f);
        return;
      case 'signin':
        if (String(f.device) === this.me?.device) return;
        this.signIns = [...this.signIns.filter((a) => a.device !== String(f.device)), { device: String(f.device), name: String(f.name), at: Date.parse(String(f.at)) }];
        this.emit('signin');
        return;
    }
  }

  /** answerSignIn drops an alert; notMe signs that session out first. */
  async answerSignIn(device: string, notMe: boolean): Promise<void> {
    if (notMe) await api.revokeDevice(device);
    this.signIns = this.signIns.filter((a) => a.device !== device);
    const seen = this.seenSignIns();
    if (seen) localStorage.setItem(this.seenKey(), JSON.stringify({ ...seen, done: [...seen.done, device] }));
    this.emit('signin');
  }

  private seenKey(): string {
    return 'relais.signins:' + (this.me?.device ?? '');
  }

  /** seenSignIns says which sessions this device has alerted about: all
   * created before `base`, and those in `done`. */
  private seenSignIns(): { base: number; done: string[] } | null {
    try {
      return JSON.parse(localStorage.getItem(this.seenKey()) ?? 'null') as { base: number; done: string[] } | null;
    } catch {
      return null;
    }
  }

  /** checkSignIns alerts, on each (re)connection, about the sessions
   * created since this device signed in that it has not alerted about:
   * the live "signin" frame reaches only connected devices, and an alert
   * not answered survives a reload. */
  private async checkSignIns(): Promise<void> {
    const { devices } = await api.devices();
    const self = devices.find((d) => d.current);
    if (!self) return;
    const seen = this.seenSignIns() ?? { base: Date.parse(self.created), done: [] };
    // Forget what was answered about sessions that are gone.
    seen.done = seen.done.filter((id) => devices.some((d) => d.id === id));
    localStorage.setItem(this.seenKey(), JSON.stringify(seen));
    const fresh = devices.filter((d) => !d.current && Date.parse(d.created) > seen.base && !seen.done.includes(d.id) && !this.signIns.some((a) => a.device === d.id));
    this.signIns = [...this.signIns, ...fresh.map((d) => ({ device: d.id, name: d.name, at: Date.parse(d.created) }))].sort((a, b) => a.at - b.at);
    this.signInsChecked = true;
    this.emit('signin');
  }

  /** onCallFrame takes the signals of calls (call/call.ts sets it). */
  onCallFrame: (f: Frame) => void = () => {};

  /** fileStates holds the antivirus verdicts the node told this user
   * about their own files (live file_state frames), posted or not. */
  fileStates = new Map<string, EvFile>();

  private fileStateFrame(room: string, f: EvFile | undefined): void {
    if (!f?.id) return;
    this.fileStates.set(f.id, f);
    const r = this.rooms.get(room);
    if (r)
      for (let i = r.timeline.length - 1; i >= 0 && i >= r.timeline.length - 500; i--) {
        const ev = r.timeline[i];
        if (ev.file?.id === f.id) ev.file = { ...ev.file, state: f.state, code: f.code, reason: f.reason, checked: f.checked };
      }
    this.emit('room:' + room);
  }

  private expireTyping(id: string): void {
    const r = this.rooms.get(id);
    if (!r) return;
    const now = Date.now();
    let changed = false;
    for (const [u, exp] of Object.entries(r.typing))
      if (exp <= now) {
        delete r.typing[u];
        changed = true;
      }
    if (changed) this.emit('room:' + id);
  }

  private roomFrame(f: RoomFrame): void {
    const old = this.rooms.get(f.id);
    if (f.state !== 'joined' && f.state !== 'invited') {
      if (old) {
        this.rooms.delete(f.id);
        void idb.del('rooms', f.id).catch(() => {});
        localStorage.removeItem('draft:' + f.id);
        this.emit('rooms');
        this.emit('room:' + f.id);
      }
      return;
    }
    const r: Room = {
      ...f,
      timeline: old?.timeline ?? [],
      more: old?.more ?? f.last_seq > 0,
      loadingOlder: false,
      receipts: old?.receipts ?? {},
      typing: old?.typing ?? {},
    };
    if (f.state === 'invited') {
      r.timeline = [];
      r.more = false;
    }
    this.rooms.set(f.id, r);
    // Joined an encrypted room while online (an accepted invitation): this
    // device may have to join its group.
    if (f.encrypted && f.state === 'joined' && old?.state !== 'joined' && this.synced) this.withE2E((m) => m.ensure(f.id));
    for (const m of f.members ?? []) this.needProfile(m.user);
    if (f.invited_by) this.needProfile(f.invited_by);
    this.emit('rooms');
    this.emit('room:' + f.id);
    this.cache(f.id);
  }

  /** event applies a room event; live says it comes from the socket (not
   * from a history page). */
  private event(ev: Ev, live: boolean): void {
    const r = this.rooms.get(ev.room);
    if (!r) return;
    const last = r.timeline.length ? r.timeline[r.timeline.length - 1].seq : 0;
    const verdict = classify(last, ev.seq);
    if (r.encrypted) this.feedE2E(ev);
    if (verdict === 'dup') {
      // A resync or history page carries the stored copy, with later
      // edits and reactions already applied.
      const i = this.indexOf(r, ev.seq);
      if (i >= 0) r.timeline[i] = ev;
      this.emit('room:' + r.id);
      return;
    }
    if (verdict === 'hole') {
      r.timeline = [];
      r.more = true;
    }
    if (r.timeline.length === 0) r.more = ev.seq > 1;
    r.timeline.push(ev);
    this.needProfile(ev.from);
    if (ev.user) this.needProfile(ev.user);
    this.apply(r, ev);
    r.last_seq = Math.max(r.last_seq, ev.seq);
    r.last_ts = Math.max(r.last_ts ?? 0, ev.ts);
    if (ev.cid && this.outbox.get(ev.cid)) this.outbox.forget(ev.cid);
    if (live && isMessage(ev) && ev.from !== this.me?.id) {
      const mentioned = !!this.me && (ev.mentions ?? []).includes(this.me.id);
      if (this.openRoom === r.id && document.visibilityState === 'visible') this.markRead(r.id);
      else if (ev.seq > r.read_seq) {
        r.unread++;
        if (mentioned) r.mentions++;
        if (document.visibilityState !== 'visible' && (r.kind === 'direct' || mentioned)) this.notify(r, ev, mentioned);
      }
    }
    this.emit('room:' + r.id);
    this.emit('rooms');
    this.cache(r.id);
  }

  /** feedE2E hands an event of an encrypted room to the MLS processor,
   * which follows the room's log in order. */
  private feedE2E(ev: Ev): void {
    const m = loadedE2E();
    if (m) m.feed(ev);
    else this.withE2E((mm) => mm.feed(ev));
  }

  private indexOf(r: Room, seq: number): number {
    const first = r.timeline.length ? r.timeline[0].seq : 0;
    const i = seq - first;
    return i >= 0 && i < r.timeline.length && r.timeline[i].seq === seq ? i : -1;
  }

  /** apply carries an event's effect on the room and the messages it
   * targets. Applying one twice changes nothing. */
  private apply(r: Room, ev: Ev): void {
    const target = ev.target ? r.timeline[this.indexOf(r, ev.target)] : undefined;
    switch (ev.type) {
      case 'edit':
        if (target && !target.deleted) {
          target.body = ev.body;
          target.edited = ev.ts;
        }
        break;
      case 'delete':
        if (target) {
          target.deleted = true;
          target.body = undefined;
          target.reactions = undefined;
          target.mentions = undefined;
        }
        break;
      case 'react':
      case 'unreact':
        if (target && ev.key) {
          const rs = { ...(target.reactions ?? {}) };
          const users = (rs[ev.key] ?? []).filter((u) => u !== ev.from);
          if (ev.type === 'react') users.push(ev.from);
          if (users.length) rs[ev.key] = users;
          else delete rs[ev.key];
          target.reactions = rs;
        }
        break;
      case 'file_state':
        // The antivirus decided on the target's file.
        if (target?.file && ev.file && target.file.id === ev.file.id) target.file = { ...target.file, state: ev.file.state, code: ev.file.code, reason: ev.file.reason, checked: ev.file.checked };
        break;
      case 'member': {
        const u = ev.user!;
        const members = (r.members ?? []).filter((m) => m.user !== u);
        const prev = r.members?.find((m) => m.user === u);
        switch (ev.action) {
          case 'invite':
            members.push({ user: u, role: 'member', state: 'invited' });
            break;
          case 'join':
            members.push({ user: u, role: ev.role || prev?.role || 'member', state: 'joined' });
            break;
          case 'role':
            members.push({ user: u, role: ev.role || 'member', state: prev?.state ?? 'joined' });
            if (u === this.me?.id) r.role = ev.role || r.role;
            break;
        }
        r.members = members;
        r.count = members.filter((m) => m.state === 'joined').length;
        break;
      }
      case 'mls_commit':
        // The room's group moved to the next epoch.
        if (typeof ev.epoch === 'number') r.epoch = Math.max(r.epoch ?? 0, ev.epoch + 1);
        break;
      case 'settings':
        if (ev.name !== undefined) r.name = ev.name;
        if (ev.topic !== undefined) r.topic = ev.topic;
        if (ev.externals !== undefined) r.externals = ev.externals;
        break;
    }
  }

  private notify(r: Room, ev: Ev, mentioned: boolean): void {
    if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
    const who = this.name(ev.from);
    const title = mentioned ? t('notif.mention', { name: who }) : t('notif.dm', { name: who });
    const body = ev.type === 'text' ? plain(ev.body ?? '').slice(0, 140) : t('rooms.encryptedPreview');
    const opts = { body, tag: r.id, icon: '/icon-192.png' };
    try {
      const n = new Notification(title, opts);
      n.onclick = () => {
        focus();
        this.onOpenRoom(r.id);
        n.close();
      };
    } catch {
      navigator.serviceWorker?.ready.then((reg) => reg.showNotification(title, opts)).catch(() => {});
    }
  }

  onOpenRoom: (id: string) => void = () => {};

  // Profiles.

  needProfile(id: string | undefined): void {
    if (!id || this.profiles.has(id) || this.wantProfiles.has(id)) return;
    this.wantProfiles.add(id);
    if (!this.profileTimer) this.profileTimer = setTimeout(() => this.fetchProfiles(), 15);
  }

  private async fetchProfiles(): Promise<void> {
    this.profileTimer = null;
    const ids = [...this.wantProfiles].slice(0, 200);
    if (!ids.length) return;
    try {
      const res = await this.socket.request<{ users: Profile[] }>({ t: 'users', ids });
      for (const p of res.users ?? []) this.profiles.set(p.id, p);
      for (const id of ids) if (!this.profiles.has(id)) this.profiles.set(id, { id, name: '?' });
      this.emit('profiles');
      this.emit('rooms');
    } catch {
      // Asked again at the next occasion.
    }
    for (const id of ids) this.wantProfiles.delete(id);
    if (this.wantProfiles.size) this.profileTimer = setTimeout(() => this.fetchProfiles(), 15);
  }

  profile(id: string): Profile | undefined {
    return this.profiles.get(id);
  }

  name(id: string): string {
    if (id === this.me?.id) return this.me.name;
    return this.profiles.get(id)?.name ?? '…';
  }

  /** roomName names a room: its name, or for a direct room, the other
   * person. */
  roomName(r: RoomFrame): string {
    if (r.kind === 'direct') {
      const other = this.dmPeer(r);
      return other ? this.name(other) : t('rooms.direct');
    }
    return r.name || t('rooms.group');
  }

  dmPeer(r: RoomFrame): string | undefined {
    return r.members?.find((m) => m.user !== this.me?.id)?.user;
  }

  // Rooms.

  /** unreadTotal counts the messages waiting to be read in the rooms one
   * is in. */
  unreadTotal(): number {
    let n = 0;
    for (const r of this.rooms.values()) if (r.state === 'joined') n += r.unread;
    return n;
  }

  sortedRooms(): Room[] {
    return [...this.rooms.values()].sort((a, b) => {
      if ((a.state === 'invited') !== (b.state === 'invited')) return a.state === 'invited' ? -1 : 1;
      return (b.last_ts ?? 0) - (a.last_ts ?? 0);
    });
  }

  /** e2eMentions counts the unread messages of an encrypted room that
   * mention the user: the node cannot see mentions inside encrypted
   * payloads, so its counter misses them. */
  e2eMentions(r: Room): number {
    if (!r.encrypted || !this.me) return 0;
    let n = 0;
    for (let i = r.timeline.length - 1; i >= 0 && i >= r.timeline.length - 200; i--) {
      const ev = r.timeline[i];
      if (ev.seq <= r.read_seq) break;
      if (ev.type !== 'encrypted' || ev.from === this.me.id) continue;
      const p = plainOf(r.id, ev.seq);
      if (p?.ok && p.kind === 'msg' && p.mentions?.includes(this.me.id)) n++;
    }
    return n;
  }

  /** lastMessage is the room's latest message, for the preview. */
  lastMessage(r: Room): Ev | undefined {
    for (let i = r.timeline.length - 1; i >= 0 && i >= r.timeline.length - 200; i--) if (isMessage(r.timeline[i])) return r.timeline[i];
    return undefined;
  }

  pending(room: string): OutEntry[] {
    const r = this.rooms.get(room);
    const cids = new Set<string>();
    if (r) for (let i = Math.max(0, r.timeline.length - 300); i < r.timeline.length; i++) if (r.timeline[i].cid) cids.add(r.timeline[i].cid!);
    return this.outbox.list().filter((e) => e.fields.room === room && e.fields.type === 'text' && !cids.has(e.id));
  }

  /** open makes a room the open one: it loads what the room needs and
   * marks it read. */
  open(id: string | null): void {
    if (this.openRoom === id) return;
    this.openRoom = id;
    if (id) this.opened(id);
  }

  private opened(id: string): void {
    const r = this.rooms.get(id);
    if (!r || r.state !== 'joined') return;
    if (r.encrypted) this.withE2E((m) => m.touch(id));
    if (r.timeline.length < 30 && r.more) void this.loadOlder(id);
    if (!this.membersAsked.has(id) && this.socket.isReady()) {
      this.membersAsked.add(id);
      this.socket
        .request<{ members: Member[]; receipts: Record<string, number> }>({ t: 'members', room: id })
        .then((res) => {
          const rr = this.rooms.get(id);
          if (!rr) return;
          rr.receipts = { ...rr.receipts, ...res.receipts };
          if (res.members) {
            rr.members = res.members;
            res.members.forEach((m) => this.needProfile(m.user));
          }
          this.emit('room:' + id);
        })
        .catch(() => this.membersAsked.delete(id));
    }
    this.markRead(id);
  }

  async loadOlder(id: string): Promise<void> {
    const r = this.rooms.get(id);
    if (!r || r.loadingOlder || !r.more || !this.socket.isReady()) return;
    r.loadingOlder = true;
    this.emit('room:' + id);
    const first = r.timeline.length ? r.timeline[0].seq : 0;
    try {
      const req: Record<string, unknown> = { t: 'history', room: id, limit: 100 };
      if (first) req.before = first;
      const res = await this.socket.request<{ more: boolean; events: Ev[] }>(req);
      const rr = this.rooms.get(id);
      if (!rr) return;
      const cur = rr.timeline.length ? rr.timeline[0].seq : 0;
      if (!cur) {
        rr.timeline = [];
        for (const ev of res.events) this.event(ev, false);
      } else {
        const older = res.events.filter((e) => e.seq < cur);
        // Older events come with their later edits and reactions applied.
        rr.timeline = older.concat(rr.timeline);
        if (rr.encrypted) for (const e of older) this.feedE2E(e);
        for (const ev of older) {
          this.needProfile(ev.from);
          if (ev.user) this.needProfile(ev.user);
        }
      }
      rr.more = res.more && (rr.timeline[0]?.seq ?? 1) > 1;
    } catch {
      // Tried again when the user scrolls up again.
    } finally {
      const rr = this.rooms.get(id);
      if (rr) rr.loadingOlder = false;
      this.emit('room:' + id);
    }
  }

  markRead(id: string): void {
    const r = this.rooms.get(id);
    if (!r || r.state !== 'joined' || document.visibilityState !== 'visible') return;
    let seq = 0;
    for (let i = r.timeline.length - 1; i >= 0; i--)
      if (isMessage(r.timeline[i])) {
        seq = r.timeline[i].seq;
        break;
      }
    if (!seq || (seq <= r.read_seq && r.unread === 0)) return;
    r.unread = 0;
    r.mentions = 0;
    this.emit('rooms');
    if (seq <= r.read_seq) return;
    r.read_seq = seq;
    clearTimeout(this.readTimers.get(id));
    this.readTimers.set(
      id,
      setTimeout(() => this.socket.notify({ t: 'read', room: id, seq }), 150),
    );
  }

  // Sending.

  /** sendFrame sends one outbox entry: in an encrypted room, as an MLS
   * application message (but the tombstone of a deletion, by target: the
   * node applies it and drops the ciphertext); elsewhere, in clear. */
  private async sendFrame(id: string, f: SendFields): Promise<{ seq: number; ts: number }> {
    const r = this.rooms.get(f.room);
    if (!r) throw new SendError('unavailable');
    let a;
    if (r.encrypted && !(f.type === 'delete' && f.target !== undefined)) {
      const m = await e2e();
      const { room: _room, type, file, ...rest } = f;
      // A file of an encrypted room is the whole reference (FileRef).
      if (file && !('key' in file)) throw new SendError('not_encrypted');
      // Entries queued by a client before payload ids refer by seq: this
      // device's own mapping turns them into ids.
      if (rest.reply_to !== undefined) {
        rest.reply ??= this.encryptedRef(f.room, rest.reply_to)?.id;
        delete rest.reply_to;
      }
      if (rest.target !== undefined) {
        rest.ref = this.encryptedRef(f.room, rest.target)?.id;
        delete rest.target;
        if (!rest.ref) throw new SendError('not_found');
      }
      a = await m.send(id, f.room, { type: type as 'text', ...rest, file: file as FileRef | undefined });
    } else a = await this.socket.frame({ t: 'send', ...f }, id);
    return { seq: Number(a.seq), ts: Number(a.ts) };
  }

  send(fields: SendFields): void {
    void this.outbox.add(fields);
    this.emit('room:' + fields.room);
  }

  /** encryptedRef is the decrypted message at seq of an encrypted room,
   * if it has a payload id to be referred to by (messages of payload
   * version 1 have none: they cannot be answered, edited or reacted to). */
  private encryptedRef(room: string, seq: number) {
    const p = plainOf(room, seq);
    return p?.ok && p.kind === 'msg' && p.id ? { ...p, id: p.id } : undefined;
  }

  sendText(room: string, body: string, replyTo?: number, mentions?: string[]): void {
    const f = encodeText(room, body, replyTo, mentions);
    if (this.rooms.get(room)?.encrypted && f.reply_to) {
      f.reply = this.encryptedRef(room, f.reply_to)?.id;
      delete f.reply_to;
    }
    this.send(f);
    this.typing(room, false);
  }

  edit(room: string, target: number, body: string): void {
    const r = this.rooms.get(room);
    const ev = r && r.timeline[this.indexOf(r, target)];
    if (r?.encrypted) {
      const p = this.encryptedRef(room, target);
      if (!p) return;
      setPlain(room, target, { ...p, body, edited: Date.now() });
      this.send({ room, type: 'edit', ref: p.id, body });
      return;
    }
    if (ev) {
      ev.body = body;
      ev.edited = Date.now();
    }
    this.send(encodeEdit(room, target, body));
  }

  /** remove deletes a message. In an encrypted room one's own message is
   * deleted by an encrypted deletion, which is what other devices obey,
   * then by a tombstone, so that the node drops the ciphertext; someone
   * else's (a moderator) only by the tombstone, which devices that
   * decrypted it show as removed from the server. */
  remove(room: string, target: number): void {
    const r = this.rooms.get(room);
    const ev = r && r.timeline[this.indexOf(r, target)];
    if (r?.encrypted) {
      const p = this.encryptedRef(room, target);
      if (p && p.from === this.me?.id) {
        setPlain(room, target, { ok: true, kind: 'msg', from: p.from, type: p.type, id: p.id, body: '', deleted: true });
        this.send({ room, type: 'delete', ref: p.id });
      }
    }
    // The node already dropped it (a tombstone): the encrypted deletion
    // above was all that was left to do.
    if (ev?.deleted) return;
    if (ev) {
      ev.deleted = true;
      ev.body = undefined;
      ev.reactions = undefined;
    }
    this.send({ room, type: 'delete', target });
  }

  toggleReaction(room: string, target: number, key: string): void {
    const r = this.rooms.get(room);
    const ev = r && r.timeline[this.indexOf(r, target)];
    const me = this.me!.id;
    if (r?.encrypted) {
      const p = this.encryptedRef(room, target);
      if (!p) return;
      const has = !!p.reactions?.[key]?.includes(me);
      const rs = { ...(p.reactions ?? {}) };
      const users = (rs[key] ?? []).filter((u) => u !== me);
      if (!has) users.push(me);
      if (users.length) rs[key] = users;
      else delete rs[key];
      setPlain(room, target, { ...p, reactions: rs });
      this.send({ room, type: has ? 'unreact' : 'react', ref: p.id, key });
      return;
    }
    const has = !!ev?.reactions?.[key]?.includes(me);
    if (ev && r) this.apply(r, { room, seq: 0, ts: Date.now(), from: me, type: has ? 'unreact' : 'react', target, key });
    this.send({ room, type: has ? 'unreact' : 'react', target, key });
  }

  private typingSent = new Map<string, number>();
  typing(room: string, on: boolean): void {
    const last = this.typingSent.get(room) ?? 0;
    const now = Date.now();
    if (on && now - last < 3000) return;
    if (!on && !last) return;
    this.typingSent.set(room, on ? now : 0);
    this.socket.notify({ t: 'typing', room, on });
  }

  /** request runs a websocket request and maps a refusal to a message. */
  async request<T>(f: Record<string, unknown>): Promise<T> {
    return this.socket.request<T>(f);
  }

  /** openDM opens the direct conversation with user. With an agent of
   * another administration it is not end-to-end encrypted (keys do not
   * cross administrations yet; the node refuses an encrypted one), and
   * the room's header says so. */
  async openDM(user: string, otherAdministration = false): Promise<string> {
    const enc = otherAdministration ? {} : newRoomEncryption();
    const res = await this.request<{ room: string }>({ t: 'open_dm', user, ...enc });
    this.found(res.room, [user]);
    return res.room;
  }

  /** found publishes the MLS group of an encrypted room this device just
   * created, once its room frame is here. */
  private found(room: string, users: string[]): void {
    void this.waitRoom(room).then(() => {
      const r = this.rooms.get(room);
      if (r?.encrypted && !r.epoch) this.withE2E((m) => m.found(room, users));
    });
  }

  /** invite invites someone into a room, and in an encrypted room adds
   * their devices to its group. */
  async invite(room: string, user: string): Promise<void> {
    await this.request({ t: 'invite', room, user });
    if (this.rooms.get(room)?.encrypted) this.withE2E((m) => m.addUsers(room, [user]));
  }

  async createRoom(kind: 'group' | 'forum', name: string, topic: string, externals: boolean, users: string[]): Promise<string> {
    const f: Record<string, unknown> = { t: 'create_room', kind, name };
    if (topic) f.topic = topic;
    if (kind === 'group') Object.assign(f, { externals, ...newRoomEncryption() });
    if (users.length) f.users = users;
    const res = await this.request<{ room: string }>(f);
    if (kind === 'group') this.found(res.room, users);
    return res.room;
  }

  /** waitRoom resolves when the room's frame has arrived. */
  waitRoom(id: string, timeout = 5000): Promise<void> {
    if (this.rooms.has(id)) return Promise.resolve();
    return new Promise((resolve) => {
      const stop = this.subscribe('rooms', () => {
        if (this.rooms.has(id)) {
          stop();
          resolve();
        }
      });
      setTimeout(() => (stop(), resolve()), timeout);
    });
  }

  // Offline cache: each room with the tail of its timeline, so that a
  // reload shows the room list at once and resumes from the cursors.

  private cache(id: string): void {
    this.cacheDirty.add(id);
    if (!this.cacheTimer) this.cacheTimer = setTimeout(() => void this.saveCache(), 1000);
  }

  private async saveCache(): Promise<void> {
    if (this.cacheTimer) clearTimeout(this.cacheTimer);
    this.cacheTimer = null;
    if (!this.me) return;
    const rows = [];
    for (const id of this.cacheDirty) {
      const r = this.rooms.get(id);
      if (!r) continue;
      const { timeline, receipts: _r, typing: _t, loadingOlder: _l, ...frame } = r;
      rows.push({ id, frame, events: timeline.slice(-CACHE_EVENTS) });
    }
    this.cacheDirty.clear();
    const profiles = [...this.profiles.values()];
    try {
      await idb.putMany('rooms', rows);
      await idb.put('kv', { id: 'profiles', profiles });
    } catch {
      // The cache is an optimisation only.
    }
  }

  private async loadCache(): Promise<void> {
    const rows = await idb.all<{ id: string; frame: RoomFrame & { more: boolean }; events: Ev[] }>('rooms');
    for (const row of rows) {
      const events = row.events ?? [];
      this.rooms.set(row.id, {
        ...row.frame,
        timeline: events,
        more: events.length ? events[0].seq > 1 : row.frame.last_seq > 0,
        loadingOlder: false,
        receipts: {},
        typing: {},
      });
    }
    const p = await idb.get<{ id: string; profiles: Profile[] }>('kv', 'profiles');
    for (const pr of p?.profiles ?? []) if (!this.profiles.has(pr.id)) this.profiles.set(pr.id, pr);
  }
}

export type { Store };
export const wasSignedIn = Store.wasSignedIn;
export const store = new Store();

/** errorText turns a refusal into a sentence for people. */
/** SignIn is an alert of a new session on the account. */
export interface SignIn {
  device: string;
  name: string;
  at: number;
}

export function errorText(e: unknown, params: Record<string, string> = {}): string {
  const code = e instanceof SendError ? e.code : ((e as { code?: string })?.code ?? '');
  const detail = (e as { detail?: string })?.detail ?? '';
  const k = ('err.' + (detail || code)) as 'err.generic';
  if (code === 'disconnected' || code === 'timeout' || code === 'network') return t('err.network');
  try {
    const s = t(k, params);
    if (s !== k) return s;
  } catch {
    // not in the catalogue
  }
  return t('err.generic');
}
