// The signalling messages of a call: JSON inside an MLS application
// message of the room's group, sent with a "call" frame that the node
// relays without storing (PROTOCOL.md, "Calls"). The DTLS fingerprints of
// the offer and answer travel here, so the media path is authenticated by
// the room's end-to-end encryption: a node that alters a signal breaks
// its MLS authentication and the signal is dropped.
//
// The format is separate from the messages' payloads (payload.ts): "sig"
// is required here and refused there, so that the node can neither show a
// signal as a message nor play a message as a signal.

import { jsonObject, newMessageID } from '../payload';

export type SignalKind =
  | 'ring'
  | 'answer'
  | 'offer'
  | 'ice'
  | 'hangup'
  | 'decline'
  | 'busy'
  | 'restart'
  // group calls (group.ts): a ring to the room, a device joining, the
  // mesh's offers, answers and candidates between two devices, leaving
  | 'gring'
  | 'gjoin'
  | 'goffer'
  | 'ganswer'
  | 'gice'
  | 'leave';

export interface Signal {
  sig: 1;
  /** The call's id: 16 random bytes, unpadded base64url. */
  call: string;
  kind: SignalKind;
  /** What the caller offers: audio only, or with video. */
  media?: 'audio' | 'video';
  /** An SDP offer (ring, offer) or answer (answer), with its candidates. */
  sdp?: string;
  /** A late ICE candidate (ice). */
  cand?: { candidate: string; sdpMid: string | null; sdpMLineIndex: number | null };
  /** The device a signal is for, "user/device" (answer, offer, ice,
   * hangup after the call is answered); absent: every device. */
  to?: string;
}

const kinds = new Set<SignalKind>(['ring', 'answer', 'offer', 'ice', 'hangup', 'decline', 'busy', 'restart', 'gring', 'gjoin', 'goffer', 'ganswer', 'gice', 'leave']);
const callID = /^[A-Za-z0-9_-]{22}$/;
const MAX_SDP = 32 * 1024;

/** newCallID draws a call's id, like a message's. */
export const newCallID = newMessageID;

export function encodeSignal(s: Omit<Signal, 'sig'>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ sig: 1, ...s }));
}

/** parseSignal reads a decrypted signal; null if it is not one. */
export function parseSignal(b: Uint8Array): Signal | null {
  const o = jsonObject(b);
  if (!o) return null;
  if (o.sig !== 1 || typeof o.call !== 'string' || !callID.test(o.call) || !kinds.has(o.kind as SignalKind)) return null;
  for (const k of Object.keys(o)) if (!['sig', 'call', 'kind', 'media', 'sdp', 'cand', 'to'].includes(k)) return null;
  const s: Signal = { sig: 1, call: o.call, kind: o.kind as SignalKind };
  if (o.media !== undefined) {
    if (o.media !== 'audio' && o.media !== 'video') return null;
    s.media = o.media;
  }
  if (o.sdp !== undefined) {
    if (typeof o.sdp !== 'string' || o.sdp.length > MAX_SDP) return null;
    s.sdp = o.sdp;
  }
  if (o.to !== undefined) {
    if (typeof o.to !== 'string' || o.to.length > 100) return null;
    s.to = o.to;
  }
  if (o.cand !== undefined) {
    const c = o.cand as Record<string, unknown>;
    if (!c || typeof c !== 'object' || typeof c.candidate !== 'string' || c.candidate.length > 1024) return null;
    const mid = c.sdpMid === null || typeof c.sdpMid === 'string' ? (c.sdpMid as string | null) : undefined;
    const idx = c.sdpMLineIndex === null || typeof c.sdpMLineIndex === 'number' ? (c.sdpMLineIndex as number | null) : undefined;
    if (mid === undefined || idx === undefined) return null;
    s.cand = { candidate: c.candidate, sdpMid: mid, sdpMLineIndex: idx };
  }
  const needsSDP = ['ring', 'offer', 'answer', 'goffer', 'ganswer'].includes(s.kind);
  if (needsSDP !== (s.sdp !== undefined)) return null;
  if ((s.kind === 'ice' || s.kind === 'gice') !== (s.cand !== undefined)) return null;
  if ((s.kind === 'ring' || s.kind === 'gring') !== (s.media !== undefined)) return null;
  return s;
}

/** fingerprints are the DTLS certificate fingerprints an SDP announces. */
export function fingerprints(sdp: string): string[] {
  const out: string[] = [];
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^a=fingerprint:(\S+) (\S+)/.exec(line);
    if (m) out.push(m[1].toLowerCase() + ' ' + m[2].toUpperCase());
  }
  return [...new Set(out)];
}
