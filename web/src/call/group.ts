// Group calls in private (encrypted) groups, up to 8 people: a mesh of
// peer connections, one per pair of devices, signalled like one-to-one
// calls inside the room's MLS group. The media frames are encrypted end
// to end once more, above DTLS-SRTP, with a key derived from the MLS
// exporter of the group's current epoch (SFrame-style, through encoded
// insertable streams): when someone leaves the group, the next epoch's
// key is one they cannot compute, so what follows their removal is noise
// to them even where their connections still carry it.
//
// Who offers: a device joining announces itself (gjoin); of each pair of
// devices the one with the smaller "user/device" name offers, the other
// answers (and, if it heard the announcement first, asks for the offer
// with a gjoin of its own to that device) — no two offers cross.
//
// A frame on the wire: ciphertext (AES-256-GCM, tag included), its 12-byte
// IV, then the epoch of its key (4 bytes, big-endian).

import { e2e } from '../crypto';
import type { CallRecord } from '../payload';
import { store } from '../store';
import { encodeSignal, newCallID, Signal } from './signal';

/** Largest group call: a mesh costs each device n-1 connections. */
export const MAX_GROUP_CALL = 8;

export interface Participant {
  device: string; // "user/device"
  user: string;
  state: RTCPeerConnectionState;
  /** Media frames decrypted, and frames that did not decrypt. */
  ok: number;
  bad: number;
}

export interface GroupView {
  phase: 'idle' | 'incoming' | 'active' | 'ended';
  room: string;
  from: string; // who rang
  muted: boolean;
  participants: Participant[];
  epoch: number;
  /** Why the call ended on this device (phase "ended"). */
  reason?: 'mic' | 'missed' | 'removed';
}

function idle(): GroupView {
  return { phase: 'idle', room: '', from: '', muted: false, participants: [], epoch: 0 };
}

/** How long a group call rings before it is missed. */
const RING_MS = 45_000;

interface Peer {
  p: Participant;
  pc: RTCPeerConnection;
  remote: MediaStream;
  audio: HTMLAudioElement;
  /** Candidates that came before the remote description. */
  pending: RTCIceCandidateInit[];
}

type Insertable = { createEncodedStreams(): { readable: ReadableStream<RTCEncodedAudioFrame>; writable: WritableStream<RTCEncodedAudioFrame> } };

class GroupCall {
  view: GroupView = idle();
  private id = '';
  private local: MediaStream | null = null;
  private peers = new Map<string, Peer>();
  private keys = new Map<number, CryptoKey>();
  private sendEpoch = 0;
  private ice: RTCIceServer[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  private listeners = new Set<() => void>();
  /** How long a ring lasts (RING_MS; shorter in the browser tests). */
  ringMs = RING_MS;
  private ringTimer: ReturnType<typeof setTimeout> | null = null;
  /** This device rang, and nobody joined yet. */
  private ringing = false;
  /** Hang up on devices that left the group, and leave when this device
   * is removed. Always true in the client; the browser tests turn it off
   * to play a client that ignores removals (modified or out of date),
   * whose connections still carry frames to the removed member. */
  honest = true;

  subscribe(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private emit(): void {
    this.view = { ...this.view, participants: [...this.peers.values()].map((x) => ({ ...x.p })) };
    this.listeners.forEach((f) => f());
  }

  private me(): string {
    return store.me ? store.me.id + '/' + store.me.device : '';
  }

  private async send(s: Omit<Signal, 'sig' | 'call'>): Promise<void> {
    const m = await e2e();
    await m.signal(this.view.room, encodeSignal({ call: this.id, ...s }));
  }

  /** start rings the room's members and joins the call. */
  async start(room: string): Promise<void> {
    if (this.view.phase !== 'idle' || this.joining) return;
    this.id = newCallID();
    this.view = { ...idle(), room, from: store.me?.id ?? '' };
    if (!(await this.join())) return;
    await this.send({ kind: 'gring', media: 'audio' });
    this.ringing = true;
    // Nobody joined: the ringer stops and posts a missed call in the
    // room's timeline (an encrypted message, as for one-to-one calls).
    this.ringTimer = setTimeout(() => {
      if (!this.ringing || this.view.phase !== 'active') return;
      const call: CallRecord = { state: 'missed', media: 'audio' };
      store.send({ room: this.view.room, type: 'call', call } as Parameters<typeof store.send>[0]);
      void this.send({ kind: 'leave' }).catch(() => {});
      this.end('missed');
    }, this.ringMs);
  }

  /** end stops the call on this device and says why. */
  private end(reason: GroupView['reason']): void {
    const room = this.view.room;
    this.reset();
    this.view = { ...idle(), phase: 'ended', room, reason };
    this.emit();
  }

  async accept(): Promise<void> {
    if (this.view.phase !== 'incoming' || this.joining) return;
    if (await this.join()) await this.send({ kind: 'gjoin' });
  }

  private joining = false;

  decline(): void {
    this.reset();
  }

  /** join takes the microphone, the relay's credentials and the media
   * key; only then is the device "active" and takes signals, so that no
   * connection is made without its tracks. It announces itself after, so
   * of two devices joining at once the later hears the earlier. */
  private async join(): Promise<boolean> {
    this.joining = true;
    this.local = await navigator.mediaDevices.getUserMedia({ audio: true }).catch(() => null);
    if (!this.local) {
      this.joining = false;
      this.view.phase = 'ended';
      this.emit();
      return false;
    }
    try {
      const c = await store.request<{ urls: string[]; username: string; credential: string }>({ t: 'turn', room: this.view.room });
      this.ice = [{ urls: c.urls, username: c.username, credential: c.credential }];
    } catch {
      this.ice = [];
    }
    await this.rekey();
    // The group's epoch moves with every commit: the key follows it.
    this.timer = setInterval(() => void this.rekey(), 500);
    this.joining = false;
    this.view.phase = 'active';
    this.emit();
    return true;
  }

  /** rekey takes the key of the group's current epoch for what this
   * device sends; keys of earlier epochs stay for frames in flight. It
   * hangs up on devices that are no longer in the group. */
  private async rekey(): Promise<void> {
    let k: { epoch: number; key: Uint8Array; devices: string[] };
    const id = this.id;
    // The removal's commit does not reach the removed member (the node
    // stops sending them the room): the room's leaving is what they see.
    if (this.honest && this.sendEpoch && this.view.phase === 'active' && store.rooms.get(this.view.room)?.state !== 'joined') return this.end('removed');
    try {
      k = await (await e2e()).callKey(this.view.room);
    } catch {
      // Removed from the group: no key of the epochs to come, and the
      // others hang up.
      if (this.honest && this.sendEpoch && id === this.id && this.view.phase === 'active') this.end('removed');
      return;
    }
    if (id !== this.id || this.view.phase !== 'active') return;
    if (this.honest) {
      const present = new Set(k.devices);
      for (const d of [...this.peers.keys()]) if (!present.has(d)) this.drop(d);
    }
    if (!this.keys.has(k.epoch)) {
      this.keys.set(k.epoch, await crypto.subtle.importKey('raw', k.key as BufferSource, 'AES-GCM', false, ['encrypt', 'decrypt']));
      for (const e of this.keys.keys()) if (e < k.epoch - 1) this.keys.delete(e);
    }
    if (this.sendEpoch !== k.epoch) {
      this.sendEpoch = k.epoch;
      this.view.epoch = k.epoch;
      this.emit();
    }
  }

  leave(): void {
    if (this.view.phase === 'active') void this.send({ kind: 'leave' }).catch(() => {});
    this.reset();
  }

  toggleMute(): void {
    this.view.muted = !this.view.muted;
    for (const t of this.local?.getAudioTracks() ?? []) t.enabled = !this.view.muted;
    this.emit();
  }

  private reset(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.ringTimer) clearTimeout(this.ringTimer);
    this.ringTimer = null;
    this.ringing = false;
    for (const p of this.peers.values()) {
      p.pc.close();
      p.audio.srcObject = null;
    }
    this.peers.clear();
    for (const t of this.local?.getTracks() ?? []) t.stop();
    this.local = null;
    this.keys.clear();
    this.sendEpoch = 0;
    this.joining = false;
    this.id = '';
    this.view = idle();
    this.emit();
  }

  // Media encryption.

  private encryptor(): TransformStream<RTCEncodedAudioFrame, RTCEncodedAudioFrame> {
    return new TransformStream({
      transform: async (frame, out) => {
        const key = this.keys.get(this.sendEpoch);
        if (!key) return; // no key yet: nothing leaves in clear
        const iv = crypto.getRandomValues(new Uint8Array(12));
        const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, frame.data));
        const buf = new Uint8Array(ct.length + 16);
        buf.set(ct);
        buf.set(iv, ct.length);
        new DataView(buf.buffer).setUint32(ct.length + 12, this.sendEpoch);
        frame.data = buf.buffer;
        out.enqueue(frame);
      },
    });
  }

  private decryptor(p: Participant): TransformStream<RTCEncodedAudioFrame, RTCEncodedAudioFrame> {
    return new TransformStream({
      transform: async (frame, out) => {
        const b = new Uint8Array(frame.data);
        if (b.length < 33) return void p.bad++;
        const epoch = new DataView(b.buffer, b.byteOffset).getUint32(b.length - 4);
        const key = this.keys.get(epoch);
        if (!key) return void p.bad++;
        try {
          frame.data = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: b.slice(b.length - 16, b.length - 4) }, key, b.slice(0, b.length - 16));
          p.ok++;
          out.enqueue(frame);
        } catch {
          p.bad++;
        }
      },
    });
  }

  // The mesh.

  private peer(device: string): Peer {
    let x = this.peers.get(device);
    if (x) return x;
    const pc = new RTCPeerConnection({ iceServers: this.ice, encodedInsertableStreams: true } as RTCConfiguration);
    const p: Participant = { device, user: device.split('/')[0], state: 'new', ok: 0, bad: 0 };
    const remote = new MediaStream();
    const audio = new Audio();
    audio.autoplay = true;
    audio.srcObject = remote;
    x = { p, pc, remote, audio, pending: [] };
    this.peers.set(device, x);
    // Someone joined: the ring is answered.
    this.ringing = false;
    if (this.ringTimer) clearTimeout(this.ringTimer);
    this.ringTimer = null;
    for (const t of this.local?.getTracks() ?? []) {
      const sender = pc.addTrack(t, this.local!) as unknown as Insertable;
      const s = sender.createEncodedStreams();
      void s.readable.pipeThrough(this.encryptor()).pipeTo(s.writable);
    }
    pc.ontrack = (e) => {
      const s = (e.receiver as unknown as Insertable).createEncodedStreams();
      void s.readable.pipeThrough(this.decryptor(p)).pipeTo(s.writable);
      remote.addTrack(e.track);
    };
    pc.onicecandidate = (e) => {
      if (e.candidate) void this.send({ kind: 'gice', to: device, cand: { candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex } }).catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      p.state = pc.connectionState;
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed') this.drop(device);
      this.emit();
    };
    this.emit();
    return x;
  }

  private drop(device: string): void {
    const x = this.peers.get(device);
    if (!x) return;
    x.pc.close();
    x.audio.srcObject = null;
    this.peers.delete(device);
    this.emit();
  }

  private async remoteDescription(x: Peer, d: RTCSessionDescriptionInit): Promise<void> {
    await x.pc.setRemoteDescription(d);
    for (const c of x.pending.splice(0)) await x.pc.addIceCandidate(c).catch(() => {});
  }

  /** onSignal takes a group call's signal from another device. */
  async onSignal(room: string, user: string, from: string, s: Signal): Promise<void> {
    if (s.kind === 'gring') {
      if (this.view.phase !== 'idle' || this.joining || user === store.me?.id) return;
      const r = store.rooms.get(room);
      if (!r || r.kind !== 'group' || (r.members ?? []).filter((m) => m.state === 'joined').length > MAX_GROUP_CALL) return;
      this.id = s.call;
      this.view = { ...idle(), phase: 'incoming', room, from: user };
      const id = s.call;
      this.ringTimer = setTimeout(() => {
        if (this.view.phase === 'incoming' && this.id === id) this.reset();
      }, this.ringMs);
      this.emit();
      return;
    }
    if (s.kind === 'leave' && this.view.phase === 'incoming' && s.call === this.id && user === this.view.from) {
      // The ringer gave up before this device answered.
      this.reset();
      return;
    }
    if (s.call !== this.id || room !== this.view.room || this.view.phase !== 'active') return;
    if (s.to && s.to !== this.me()) return;
    switch (s.kind) {
      case 'gjoin': {
        if (this.peers.has(from) || this.peers.size >= MAX_GROUP_CALL - 1) return;
        // Of two devices, the one with the smaller name offers: two
        // joining at once never both offer. The other asks it to.
        if (this.me() > from) {
          await this.send({ kind: 'gjoin', to: from });
          return;
        }
        const x = this.peer(from);
        await x.pc.setLocalDescription(await x.pc.createOffer());
        await this.send({ kind: 'goffer', to: from, sdp: x.pc.localDescription!.sdp });
        return;
      }
      case 'goffer': {
        const x = this.peer(from);
        await this.remoteDescription(x, { type: 'offer', sdp: s.sdp! });
        await x.pc.setLocalDescription(await x.pc.createAnswer());
        await this.send({ kind: 'ganswer', to: from, sdp: x.pc.localDescription!.sdp });
        return;
      }
      case 'ganswer': {
        const x = this.peers.get(from);
        if (x?.pc.signalingState === 'have-local-offer') await this.remoteDescription(x, { type: 'answer', sdp: s.sdp! });
        return;
      }
      case 'gice': {
        const x = this.peers.get(from);
        if (!x) return;
        if (x.pc.remoteDescription) await x.pc.addIceCandidate(s.cand!).catch(() => {});
        else x.pending.push(s.cand!);
        return;
      }
      case 'leave':
        this.drop(from);
        return;
    }
  }

  /** stats are the decrypted and refused media frames per participant
   * (the call screen, and the browser tests). */
  stats(): Participant[] {
    return [...this.peers.values()].map((x) => ({ ...x.p }));
  }
}

export const group = new GroupCall();
if (typeof window !== 'undefined') (window as unknown as { relaisGroupCall: GroupCall }).relaisGroupCall = group;
