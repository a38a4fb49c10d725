// One-to-one calls: the WebRTC side (RTCPeerConnection with the node's
// TURN relay as ICE server) and the call's life (ring, accept, decline,
// busy, hang-up, ICE restart), driven by signals that travel end to end
// encrypted in the room's MLS group (signal.ts, e2e/manager.ts).
//
// Every device of the callee rings; the first to answer takes the call and
// the others stop ("answered elsewhere"). Offers and answers are sent once
// ICE gathering is complete (or after 2 s, later candidates trickle), so a
// call costs a handful of MLS messages. The caller posts the call's entry
// in the timeline (missed, declined, busy, or its duration) as an
// encrypted message.

import { e2e, loadedE2E } from '../crypto';
import type { Frame } from '../frames';
import { store } from '../store';
import { t } from '../i18n';
import type { CallRecord } from '../payload';
import { group } from './group';
import { encodeSignal, fingerprints, newCallID, parseSignal, Signal, SignalKind } from './signal';

const groupKinds = new Set<SignalKind>(['gring', 'gjoin', 'goffer', 'ganswer', 'gice', 'leave']);

export type Phase = 'idle' | 'outgoing' | 'incoming' | 'connecting' | 'active' | 'ended';

/** Why a call ended, for the message shown. */
export type EndReason = 'hangup' | 'declined' | 'busy' | 'missed' | 'failed' | 'tampered' | 'mic' | 'elsewhere' | 'unavailable';

export interface CallView {
  phase: Phase;
  room: string;
  peer: string; // the other person's user id
  media: 'audio' | 'video';
  muted: boolean;
  camera: boolean;
  /** When media started flowing (ms), for the duration. */
  since: number;
  reason?: EndReason;
  reconnecting: boolean;
  local?: MediaStream;
  remote?: MediaStream;
  /** This device's screen, while it shares it. */
  sharing?: MediaStream;
  /** The other side's shared screen, while they share it. */
  screen?: MediaStream;
  /** getDisplayMedia failed or was refused (the last try). */
  shareRefused?: boolean;
  /** The DTLS fingerprints both sides announced inside the encryption. */
  fingerprints: { mine: string[]; theirs: string[] };
}

/** How long a call rings before it is missed. */
const RING_MS = 45_000;
/** How long gathering may take before an offer or answer leaves. */
const GATHER_MS = 2_000;

function idle(): CallView {
  return { phase: 'idle', room: '', peer: '', media: 'audio', muted: false, camera: false, since: 0, reconnecting: false, fingerprints: { mine: [], theirs: [] } };
}

class Calls {
  view: CallView = idle();
  /** iceTransportPolicy for new calls: "relay" forces the node's TURN
   * (tests, and operators who want no direct path). */
  policy: RTCIceTransportPolicy = 'all';
  private id = '';
  private pc: RTCPeerConnection | null = null;
  private offer = ''; // the ring's offer, while ringing
  private caller = false;
  private peerDevice = ''; // "user/device" of the other side once answered
  private ringTimer: ReturnType<typeof setTimeout> | null = null;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private listeners = new Set<() => void>();
  private notification: Notification | null = null;
  private ringPeerDevice = '';
  /** The sender of this device's shared screen, while it shares it. */
  private screenSender: RTCRtpSender | null = null;
  /** The transceiver of the screen, kept after sharing stops so that
   * sharing again reuses it (addTrack would add an m-line each time). */
  private screenTransceiver: RTCRtpTransceiver | null = null;
  /** The id of the other side's first stream (microphone, camera): a
   * video track of another stream is their shared screen. */
  private mainRemote = '';

  subscribe(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private emit(): void {
    this.view = { ...this.view };
    this.listeners.forEach((f) => f());
  }

  private me(): string {
    return store.me ? store.me.id + '/' + store.me.device : '';
  }

  // Sending.

  private async send(s: Omit<Signal, 'sig' | 'call'>, room = this.view.room, call = this.id): Promise<void> {
    const m = await e2e();
    await m.signal(room, encodeSignal({ call, ...s }));
  }

  private async iceServers(room: string): Promise<RTCIceServer[]> {
    try {
      const c = await store.request<{ urls: string[]; username: string; credential: string }>({ t: 'turn', room });
      return [{ urls: c.urls, username: c.username, credential: c.credential }];
    } catch {
      return []; // no relay on this node: direct paths only
    }
  }

  private async media(kind: 'audio' | 'video'): Promise<MediaStream | null> {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true, video: kind === 'video' });
    } catch (e) {
      console.warn('relais call: media refused', e);
      return null;
    }
  }

  private async connection(room: string, local: MediaStream): Promise<RTCPeerConnection> {
    const pc = new RTCPeerConnection({ iceServers: await this.iceServers(room), iceTransportPolicy: this.policy });
    for (const tr of local.getTracks()) pc.addTrack(tr, local);
    const remote = new MediaStream();
    this.view.remote = remote;
    pc.ontrack = (e) => {
      const s = e.streams[0];
      if (e.track.kind === 'video' && s && this.mainRemote && s.id !== this.mainRemote) {
        // Their screen: shown while its stream has a video track (the
        // sharer removes it and renegotiates when they stop).
        this.view.screen = s;
        const gone = () => {
          if (this.view.screen === s && !s.getVideoTracks().some((t) => t.readyState === 'live')) {
            this.view.screen = undefined;
            this.emit();
          }
        };
        s.onremovetrack = gone;
        e.track.addEventListener('ended', gone);
        this.emit();
        return;
      }
      if (!this.mainRemote && s) this.mainRemote = s.id;
      remote.addTrack(e.track);
      // A camera turned on in an audio call: the call shows video.
      if (e.track.kind === 'video') this.view.media = 'video';
      this.emit();
    };
    // Tracks added or removed during the call (camera, screen) need a new
    // offer/answer, through the encrypted signalling like the first one.
    // Before the call is up, the first offer/answer covers them.
    pc.onnegotiationneeded = () => {
      if (pc === this.pc && this.view.phase === 'active') void this.renegotiate();
    };
    pc.onicecandidate = (e) => {
      // Late candidates (after the offer or answer left) trickle.
      if (e.candidate && this.sentDescription && this.peerDevice)
        void this.send({ kind: 'ice', to: this.peerDevice, cand: { candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex } }).catch(() => {});
    };
    pc.onconnectionstatechange = () => this.connectionState(pc);
    return pc;
  }

  private sentDescription = false;

  /** describe sets a local description and waits for ICE gathering (at
   * most GATHER_MS), so that the SDP carries the candidates. */
  private async describe(pc: RTCPeerConnection, d: RTCSessionDescriptionInit): Promise<string> {
    await pc.setLocalDescription(d);
    if (pc.iceGatheringState !== 'complete') {
      await new Promise<void>((done) => {
        const timer = setTimeout(done, GATHER_MS);
        pc.addEventListener('icegatheringstatechange', () => {
          if (pc.iceGatheringState === 'complete') {
            clearTimeout(timer);
            done();
          }
        });
      });
    }
    const sdp = pc.localDescription?.sdp ?? '';
    this.view.fingerprints.mine = fingerprints(sdp);
    return sdp;
  }

  // Placing and taking calls.

  /** start calls the other person of a direct room. */
  async start(room: string, peer: string, kind: 'audio' | 'video'): Promise<void> {
    if (this.view.phase !== 'idle' && this.view.phase !== 'ended') return;
    this.reset();
    this.id = newCallID();
    this.caller = true;
    this.view = { ...idle(), phase: 'outgoing', room, peer, media: kind, camera: kind === 'video' };
    this.emit();
    const local = await this.media(kind);
    if (!local) return this.end('mic', false);
    this.view.local = local;
    try {
      this.pc = await this.connection(room, local);
      const offer = await this.pc.createOffer();
      const sdp = await this.describe(this.pc, offer);
      if (this.view.phase !== 'outgoing') return;
      await this.send({ kind: 'ring', media: kind, sdp });
      this.sentDescription = true;
    } catch (e) {
      console.warn('relais call: start', e);
      return this.end('failed', true);
    }
    this.ringTimer = setTimeout(() => {
      if (this.view.phase === 'outgoing') void this.hangup('missed');
    }, RING_MS);
    this.emit();
  }

  /** accept takes a ringing call on this device. */
  async accept(): Promise<void> {
    if (this.view.phase !== 'incoming') return;
    this.stopRinging();
    this.view.phase = 'connecting';
    this.emit();
    const local = await this.media(this.view.media);
    if (!local) {
      void this.send({ kind: 'decline' }).catch(() => {});
      return this.end('mic', false);
    }
    this.view.local = local;
    this.view.camera = this.view.media === 'video';
    this.peerDevice = this.ringPeerDevice;
    try {
      this.pc = await this.connection(this.view.room, local);
      await this.pc.setRemoteDescription({ type: 'offer', sdp: this.offer });
      const sdp = await this.describe(this.pc, await this.pc.createAnswer());
      await this.send({ kind: 'answer', to: this.peerDevice, sdp });
      this.sentDescription = true;
    } catch (e) {
      console.warn('relais call: accept', e);
      return this.end('failed', true);
    }
    this.emit();
  }

  decline(): void {
    if (this.view.phase !== 'incoming') return;
    void this.send({ kind: 'decline' }).catch(() => {});
    this.stopRinging();
    this.reset();
    this.emit();
  }

  /** hangup ends the call on both sides. */
  async hangup(reason: EndReason = 'hangup'): Promise<void> {
    if (this.view.phase === 'idle' || this.view.phase === 'ended') return;
    if (this.view.phase === 'incoming') return this.decline();
    void this.send({ kind: 'hangup' }).catch(() => {});
    this.end(reason, true);
  }

  toggleMute(): void {
    this.view.muted = !this.view.muted;
    for (const tr of this.view.local?.getAudioTracks() ?? []) tr.enabled = !this.view.muted;
    this.emit();
  }

  async toggleCamera(): Promise<void> {
    const v = this.view.local?.getVideoTracks() ?? [];
    if (!v.length) return this.addCamera();
    this.view.camera = !this.view.camera;
    for (const tr of v) tr.enabled = this.view.camera;
    this.emit();
  }

  /** addCamera turns the camera on in an audio call: a new track, and a
   * renegotiation (onnegotiationneeded). */
  private async addCamera(): Promise<void> {
    if (!this.pc || this.view.phase !== 'active' || !this.view.local) return;
    const s = await navigator.mediaDevices.getUserMedia({ video: true }).catch((e) => {
      console.warn('relais call: camera refused', e);
      return null;
    });
    const track = s?.getVideoTracks()[0];
    if (!track || !this.pc || this.view.phase !== 'active' || !this.view.local) {
      for (const t of s?.getTracks() ?? []) t.stop();
      return;
    }
    this.view.local.addTrack(track);
    this.pc.addTrack(track, this.view.local);
    this.view.media = 'video';
    this.view.camera = true;
    this.emit();
  }

  /** renegotiate sends a new offer for tracks added or removed during
   * the call; either side may, the answer comes back the same way. */
  private async renegotiate(): Promise<void> {
    const pc = this.pc;
    if (!pc || !this.peerDevice || pc.signalingState !== 'stable') return;
    try {
      const sdp = await this.describe(pc, await pc.createOffer());
      await this.send({ kind: 'offer', to: this.peerDevice, sdp });
    } catch (e) {
      console.warn('relais call: renegotiation', e);
    }
  }

  /** canShare: the browser can capture a screen (desktop browsers; phones
   * have no getDisplayMedia). */
  canShare(): boolean {
    return typeof navigator !== 'undefined' && typeof navigator.mediaDevices?.getDisplayMedia === 'function';
  }

  /** shareScreen sends this device's screen (or a window) as a second
   * video track, beside the camera. */
  async shareScreen(): Promise<void> {
    if (!this.pc || this.view.phase !== 'active' || this.screenSender || !this.canShare()) return;
    let s: MediaStream;
    try {
      s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (e) {
      console.warn('relais call: screen refused', e);
      this.view.shareRefused = true;
      this.emit();
      return;
    }
    const track = s.getVideoTracks()[0];
    if (!track || !this.pc || this.view.phase !== 'active') {
      for (const t of s.getTracks()) t.stop();
      return;
    }
    // The browser's own "stop sharing" bar ends the track.
    track.addEventListener('ended', () => void this.stopSharing());
    const tr = this.screenTransceiver;
    if (tr && tr.currentDirection !== 'stopped') {
      await tr.sender.replaceTrack(track);
      tr.sender.setStreams(s);
      tr.direction = 'sendrecv';
      this.screenSender = tr.sender;
    } else {
      this.screenSender = this.pc.addTrack(track, s);
      this.screenTransceiver = this.pc.getTransceivers().find((x) => x.sender === this.screenSender) ?? null;
    }
    this.view.sharing = s;
    this.view.shareRefused = false;
    this.emit();
  }

  /** stopSharing stops sending the screen. */
  stopSharing(): void {
    const sender = this.screenSender;
    if (!sender) return;
    this.screenSender = null;
    sender.track?.stop();
    if (this.pc && this.pc.signalingState !== 'closed') {
      // Not sending on it any more (a renegotiation tells the peer, whose
      // track leaves its stream); kept for the next share.
      void sender.replaceTrack(null);
      if (this.screenTransceiver) this.screenTransceiver.direction = 'recvonly';
      else this.pc.removeTrack(sender);
    }
    this.view.sharing = undefined;
    this.emit();
  }

  /** useMicrophone switches the microphone in the middle of a call. */
  async useMicrophone(deviceId: string): Promise<void> {
    const s = await navigator.mediaDevices.getUserMedia({ audio: { deviceId: { exact: deviceId } } }).catch(() => null);
    const track = s?.getAudioTracks()[0];
    if (!track || !this.pc) return;
    track.enabled = !this.view.muted;
    const sender = this.pc.getSenders().find((x) => x.track?.kind === 'audio');
    await sender?.replaceTrack(track);
    for (const old of this.view.local?.getAudioTracks() ?? []) {
      this.view.local!.removeTrack(old);
      old.stop();
    }
    this.view.local?.addTrack(track);
    this.emit();
  }

  // Receiving.

  /** onFrame takes a call frame from the node. */
  onFrame(f: Frame): void {
    const me = store.me;
    if (!me || (f.from === me.id && f.dev === me.device)) return;
    void this.open(f);
  }

  private async open(f: Frame): Promise<void> {
    let s: Signal | null = null;
    let from = '';
    try {
      const m = loadedE2E() ?? (await e2e());
      const o = await m.openSignal(f);
      from = o.user + '/' + o.device;
      s = parseSignal(o.plaintext);
    } catch (e) {
      // Not a signal this device can authenticate. In a call of this
      // room, the node (or the network) altered the call's signalling:
      // the call stops rather than trust anything that came that way.
      console.warn('relais call: signal refused', e);
      if (this.view.room === f.room && ['outgoing', 'connecting', 'active', 'incoming'].includes(this.view.phase)) {
        if (this.view.phase === 'incoming') this.stopRinging();
        else void this.send({ kind: 'hangup' }).catch(() => {});
        this.end('tampered', false);
      }
      return;
    }
    if (!s) return;
    const room = String(f.room);
    const user = String(f.from);
    if (groupKinds.has(s.kind)) {
      // One call at a time: a group ring during a call is not shown.
      if (s.kind === 'gring' && this.view.phase !== 'idle' && this.view.phase !== 'ended') return;
      return group.onSignal(room, user, from, s);
    }
    const mine = user === store.me?.id;
    if (s.to && s.to !== this.me()) {
      // For another device: of interest only as "answered elsewhere".
      if (mine && s.kind === 'answer' && this.view.phase === 'incoming' && s.call === this.id) this.elsewhere();
      return;
    }
    switch (s.kind) {
      case 'ring':
        if (mine) return;
        if ((this.view.phase !== 'idle' && this.view.phase !== 'ended') || group.view.phase === 'active') {
          if (s.call !== this.id) void this.send({ kind: 'busy', to: from }, room, s.call).catch(() => {});
          return;
        }
        this.reset();
        this.id = s.call;
        this.caller = false;
        this.offer = s.sdp!;
        this.ringPeerDevice = from;
        this.view = { ...idle(), phase: 'incoming', room, peer: user, media: s.media ?? 'audio' };
        this.view.fingerprints.theirs = fingerprints(this.offer);
        this.ring();
        this.emit();
        return;
    }
    if (s.call !== this.id) return;
    switch (s.kind) {
      case 'answer':
        if (!this.caller) {
          // The answer to this side's renegotiation (camera, screen).
          if (this.pc && from === this.peerDevice && this.pc.signalingState === 'have-local-offer') {
            this.view.fingerprints.theirs = fingerprints(s.sdp!);
            await this.pc.setRemoteDescription({ type: 'answer', sdp: s.sdp! }).catch((e) => console.warn('relais call: answer', e));
            this.emit();
          }
          return;
        }
        if (!this.pc || mine) return;
        if (this.peerDevice && this.peerDevice !== from) {
          // Another device of the callee answered too: it is told no.
          void this.send({ kind: 'hangup', to: from }).catch(() => {});
          return;
        }
        this.peerDevice = from;
        this.view.fingerprints.theirs = fingerprints(s.sdp!);
        if (this.ringTimer) clearTimeout(this.ringTimer);
        if (this.view.phase === 'outgoing') this.view.phase = 'connecting';
        await this.pc.setRemoteDescription({ type: 'answer', sdp: s.sdp! }).catch((e) => {
          console.warn('relais call: answer', e);
          void this.hangup('failed');
        });
        this.emit();
        return;
      case 'offer': {
        // An ICE restart from the caller, or a renegotiation from either
        // side (a camera turned on, a screen shared).
        if (!this.pc || from !== this.peerDevice) return;
        const pc = this.pc;
        let again = false;
        if (pc.signalingState !== 'stable') {
          // Both offered at once: the caller's offer wins; the callee
          // drops its own and offers again once this one is done.
          if (this.caller) return;
          console.info('relais call: offers crossed, the caller’s goes first');
          await pc.setLocalDescription({ type: 'rollback' });
          again = true;
        }
        await pc.setRemoteDescription({ type: 'offer', sdp: s.sdp! });
        this.view.fingerprints.theirs = fingerprints(s.sdp!);
        await this.send({ kind: 'answer', to: from, sdp: await this.describe(pc, await pc.createAnswer()) });
        if (again) void this.renegotiate();
        return;
      }
      case 'restart':
        if (this.caller && from === this.peerDevice) void this.restart();
        return;
      case 'ice':
        if (this.pc && from === this.peerDevice) await this.pc.addIceCandidate(s.cand!).catch(() => {});
        return;
      case 'decline':
      case 'busy':
        if (mine) {
          if (s.kind === 'decline' && this.view.phase === 'incoming') this.elsewhere();
          return;
        }
        if (this.caller && this.view.phase === 'outgoing') {
          // The callee's other devices stop ringing.
          void this.send({ kind: 'hangup' }).catch(() => {});
          this.end(s.kind === 'busy' ? 'busy' : 'declined', true);
        }
        return;
      case 'hangup':
        if (this.view.phase === 'incoming') {
          this.stopRinging();
          this.reset();
          this.emit();
          return;
        }
        if (!this.peerDevice || from === this.peerDevice) this.end('hangup', this.caller);
        return;
    }
  }

  private elsewhere(): void {
    this.stopRinging();
    this.view.phase = 'ended';
    this.view.reason = 'elsewhere';
    this.emit();
  }

  private ring(): void {
    this.ringTimer = setTimeout(() => {
      if (this.view.phase === 'incoming') {
        this.stopRinging();
        this.view.phase = 'ended';
        this.view.reason = 'missed';
        this.emit();
      }
    }, RING_MS);
    if (typeof document !== 'undefined' && document.hidden && typeof Notification !== 'undefined' && Notification.permission === 'granted') {
      try {
        this.notification = new Notification(t(this.view.media === 'video' ? 'call.incomingVideo' : 'call.incomingAudio'), {
          body: store.name(this.view.peer),
          tag: 'call-' + this.id,
          requireInteraction: true,
        });
        this.notification.onclick = () => {
          focus();
          this.notification?.close();
        };
      } catch {
        // Some browsers only notify from a service worker: the ring shows in the tab.
      }
    }
  }

  private stopRinging(): void {
    if (this.ringTimer) clearTimeout(this.ringTimer);
    this.ringTimer = null;
    this.notification?.close();
    this.notification = null;
  }

  // The connection.

  private connectionState(pc: RTCPeerConnection): void {
    if (pc !== this.pc) return;
    switch (pc.connectionState) {
      case 'connected':
        if (this.restartTimer) clearTimeout(this.restartTimer);
        this.restartTimer = null;
        this.view.reconnecting = false;
        if (this.view.phase === 'connecting' || this.view.phase === 'outgoing') {
          this.view.phase = 'active';
          this.view.since = Date.now();
        }
        this.emit();
        return;
      case 'disconnected':
      case 'failed':
        if (this.view.phase === 'connecting' && pc.connectionState === 'failed') {
          // Never connected: no path, or a DTLS handshake that did not
          // match the fingerprint the signalling carried.
          void this.hangup('failed');
          return;
        }
        if (this.view.phase !== 'active' && this.view.phase !== 'connecting') return;
        this.view.reconnecting = true;
        this.emit();
        // A network change: a new ICE negotiation over the same
        // (authenticated) DTLS session; the caller leads it.
        if (this.caller) void this.restart();
        else if (this.peerDevice) void this.send({ kind: 'restart', to: this.peerDevice }).catch(() => {});
        if (!this.restartTimer)
          this.restartTimer = setTimeout(() => {
            if (this.pc?.connectionState !== 'connected') void this.hangup('failed');
          }, 20_000);
        return;
    }
  }

  private async restart(): Promise<void> {
    if (!this.pc || !this.peerDevice) return;
    try {
      this.pc.setConfiguration({ iceServers: await this.iceServers(this.view.room), iceTransportPolicy: this.policy });
      const sdp = await this.describe(this.pc, await this.pc.createOffer({ iceRestart: true }));
      await this.send({ kind: 'offer', to: this.peerDevice, sdp });
    } catch (e) {
      console.warn('relais call: ICE restart', e);
    }
  }

  /** onNetworkChange restarts ICE when the browser comes back online. */
  onNetworkChange(): void {
    if (this.caller && this.view.phase === 'active') void this.restart();
  }

  private end(reason: EndReason, record: boolean): void {
    const v = this.view;
    const dur = v.since ? Math.round((Date.now() - v.since) / 1000) : 0;
    if (record && this.caller) {
      const state: CallRecord['state'] = v.since ? 'ended' : reason === 'declined' ? 'declined' : reason === 'busy' ? 'busy' : 'missed';
      const call: CallRecord = { state, media: v.media };
      if (v.since) call.dur = dur;
      store.send({ room: v.room, type: 'call', call } as Parameters<typeof store.send>[0]);
    }
    this.stopRinging();
    this.closeMedia();
    this.view = { ...v, phase: 'ended', reason, reconnecting: false, local: undefined, remote: undefined, sharing: undefined, screen: undefined };
    this.emit();
  }

  private closeMedia(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.screenSender?.track?.stop();
    this.screenSender = null;
    this.screenTransceiver = null;
    for (const tr of this.view.sharing?.getTracks() ?? []) tr.stop();
    this.pc?.close();
    this.pc = null;
    for (const tr of this.view.local?.getTracks() ?? []) tr.stop();
  }

  private reset(): void {
    this.closeMedia();
    this.id = '';
    this.offer = '';
    this.peerDevice = '';
    this.ringPeerDevice = '';
    this.mainRemote = '';
    this.caller = false;
    this.sentDescription = false;
    this.view = idle();
  }

  /** dismiss closes the message of an ended call. */
  dismiss(): void {
    if (this.view.phase === 'ended') {
      this.reset();
      this.emit();
    }
  }

  /** stats summarises the connection's RTP and the selected candidate
   * pair, from getStats (the call screen's diagnostics, and the browser
   * tests). */
  async stats(): Promise<{ inBytes: number; inPackets: number; outBytes: number; outPackets: number; energy: number; frames: number; screenFrames: number; local: string; remote: string; state: string; ufrag: string }> {
    const out = { inBytes: 0, inPackets: 0, outBytes: 0, outPackets: 0, energy: 0, frames: 0, screenFrames: 0, local: '', remote: '', state: this.pc?.connectionState ?? 'none', ufrag: '' };
    if (!this.pc) return out;
    out.ufrag = /a=ice-ufrag:(\S+)/.exec(this.pc.localDescription?.sdp ?? '')?.[1] ?? '';
    const screenTrack = this.view.screen?.getVideoTracks()[0]?.id ?? '';
    const r = await this.pc.getStats();
    const byId = new Map<string, Record<string, unknown>>();
    r.forEach((s: Record<string, unknown>) => byId.set(String(s.id), s));
    for (const s of byId.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.inBytes += Number(s.bytesReceived ?? 0);
        out.inPackets += Number(s.packetsReceived ?? 0);
        out.energy += Number(s.totalAudioEnergy ?? 0);
      }
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.frames += Number(s.framesDecoded ?? 0);
        if (screenTrack && s.trackIdentifier === screenTrack) out.screenFrames += Number(s.framesDecoded ?? 0);
      }
      if (s.type === 'outbound-rtp' && s.kind === 'audio') {
        out.outBytes += Number(s.bytesSent ?? 0);
        out.outPackets += Number(s.packetsSent ?? 0);
      }
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = byId.get(String(s.selectedCandidatePairId));
        out.local = String(byId.get(String(pair?.localCandidateId))?.candidateType ?? '');
        out.remote = String(byId.get(String(pair?.remoteCandidateId))?.candidateType ?? '');
      }
    }
    return out;
  }
}

/** calls is the device's one call at a time. */
export const calls = new Calls();

store.onCallFrame = (f) => calls.onFrame(f);
if (typeof window !== 'undefined') {
  window.addEventListener('online', () => calls.onNetworkChange());
  // The call screen's state, for diagnostics and the browser tests.
  (window as unknown as { relaisCalls: Calls }).relaisCalls = calls;
}
