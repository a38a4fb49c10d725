import { sha256 } from '@noble/hashes/sha2.js';
// Safety numbers: what two people compare (read aloud, or with the QR
// code) to check that the node showed each of them the other's real
// devices. Construction (web/ENCRYPTION.md, "Verification"):
//
//   fingerprint(user) = SHA-256("relais-safety-v1" 0x00 user 0x00
//                        { device 0x00 len(key) key } for each active device,
//                        sorted by device id)
//   number(a, b)      = SHA-512("relais-safety-number-v1" 0x00
//                        min(fp(a), fp(b)) max(fp(a), fp(b)))
//
// The first 30 bytes of number make 12 groups of 5 digits (each 5 bytes,
// big-endian, modulo 100000): 60 digits, the same on both sides. Any
// change of either person's devices (a new one, a key changed) changes
// the number.

export interface DeviceKey {
  device: string;
  key: Uint8Array;
}

const enc = new TextEncoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export async function fingerprint(user: string, devices: DeviceKey[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [enc.encode('relais-safety-v1'), new Uint8Array([0]), enc.encode(user), new Uint8Array([0])];
  for (const d of [...devices].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0))) {
    parts.push(enc.encode(d.device), new Uint8Array([0, d.key.length]), d.key);
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(parts) as BufferSource));
}

function less(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] < b[i];
  return a.length < b.length;
}

/** safetyNumber is the 60-digit number of two people, in 12 groups. */
export async function safetyNumber(a: { user: string; devices: DeviceKey[] }, b: { user: string; devices: DeviceKey[] }): Promise<string[]> {
  const fa = await fingerprint(a.user, a.devices);
  const fb = await fingerprint(b.user, b.devices);
  const [x, y] = less(fa, fb) ? [fa, fb] : [fb, fa];
  const h = new Uint8Array(await crypto.subtle.digest('SHA-512', concat([enc.encode('relais-safety-number-v1'), new Uint8Array([0]), x, y]) as BufferSource));
  const groups: string[] = [];
  for (let i = 0; i < 12; i++) {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + h[i * 5 + j];
    groups.push(String(n % 100000).padStart(5, '0'));
  }
  return groups;
}

/** deviceTag is the four-character tag of a device id, as the node
 * computes it (proto.UserTag) and puts at the end of default device
 * names: a device the node does not name is still told by it. */
export function deviceTag(device: string): string {
  const digits = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  const h = sha256(new TextEncoder().encode(device));
  let v = (h[0]! << 12) | (h[1]! << 4) | (h[2]! >> 4);
  let out = '';
  for (let i = 0; i < 4; i++) {
    out = digits[v & 31] + out;
    v >>= 5;
  }
  return out;
}
