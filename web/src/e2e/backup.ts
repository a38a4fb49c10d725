// The recovery key and the encrypted backups of history (web/ENCRYPTION.md,
// "Recovery key and backups").
//
// The recovery key is 20 random bytes (160 bits) written as 32 characters
// of Crockford's base32 in groups of four. It never leaves the user's
// devices. Backups are derived from it with HKDF-SHA256 (salt: the user
// id; info: "relais backup v1 " + purpose) into AES-256-GCM keys; each
// backup is 0x01 ‖ a 12-byte random nonce ‖ AES-GCM ciphertext, whose
// additional data is "relais-backup-v1|<user>|<name>", so the node cannot
// swap one backup for another. The node stores the bytes under
// /api/v1/backups/{name} and can open none.

const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const KEY_BYTES = 20;
const enc = new TextEncoder();

/** newRecoveryKey draws a recovery key, formatted for people. */
export function newRecoveryKey(): string {
  return formatKey(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
}

export function formatKey(b: Uint8Array): string {
  let bits = 0;
  let acc = 0;
  let s = '';
  for (const x of b) {
    acc = (acc << 8) | x;
    bits += 8;
    while (bits >= 5) {
      s += alphabet[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) s += alphabet[(acc << (5 - bits)) & 31];
  return s.match(/.{1,4}/g)!.join('-');
}

/** parseKey reads a recovery key as people type it: case, spaces and
 * dashes do not matter, and the letters I, L and O read as 1, 1 and 0.
 * It returns null if it is not 32 characters of the alphabet. */
export function parseKey(s: string): Uint8Array | null {
  const clean = s
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/[IL]/g, '1')
    .replace(/O/g, '0');
  if (clean.length !== 32) return null;
  const out = new Uint8Array(KEY_BYTES);
  let bits = 0;
  let acc = 0;
  let i = 0;
  for (const c of clean) {
    const v = alphabet.indexOf(c);
    if (v < 0) return null;
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[i++] = (acc >> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

/** backupKey derives the AES-256-GCM key of one purpose ("meta",
 * "history") from the recovery key. */
export async function backupKey(recovery: Uint8Array, user: string, purpose: string): Promise<CryptoKey> {
  const ikm = await crypto.subtle.importKey('raw', recovery as BufferSource, 'HKDF', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: enc.encode(user), info: enc.encode('relais backup v1 ' + purpose) },
    ikm,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

function aad(user: string, name: string): Uint8Array {
  return enc.encode('relais-backup-v1|' + user + '|' + name);
}

export async function seal(key: CryptoKey, user: string, name: string, plaintext: Uint8Array): Promise<Uint8Array> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad(user, name) as BufferSource }, key, plaintext as BufferSource));
  const out = new Uint8Array(1 + 12 + ct.length);
  out[0] = 1;
  out.set(iv, 1);
  out.set(ct, 13);
  return out;
}

/** open decrypts a backup; it throws if the key is wrong or the bytes
 * were changed. */
export async function open(key: CryptoKey, user: string, name: string, b: Uint8Array): Promise<Uint8Array> {
  if (b.length < 13 + 16 || b[0] !== 1) throw new Error('not a backup of this version');
  return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: b.subarray(1, 13) as BufferSource, additionalData: aad(user, name) as BufferSource }, key, b.subarray(13) as BufferSource));
}

// The node's backup endpoints.

export interface BackupInfo {
  name: string;
  size: number;
  updated: number;
}

export async function list(): Promise<BackupInfo[]> {
  const r = await fetch('/api/v1/backups', { credentials: 'same-origin' });
  if (!r.ok) throw new Error('backups: ' + r.status);
  return ((await r.json()) as { backups: BackupInfo[] }).backups ?? [];
}

export async function download(name: string): Promise<Uint8Array | null> {
  const r = await fetch('/api/v1/backups/' + encodeURIComponent(name), { credentials: 'same-origin' });
  if (r.status === 404) return null;
  if (!r.ok) throw new Error('backup ' + name + ': ' + r.status);
  return new Uint8Array(await r.arrayBuffer());
}

export async function upload(name: string, data: Uint8Array): Promise<void> {
  const r = await fetch('/api/v1/backups/' + encodeURIComponent(name), {
    method: 'PUT',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: data as BodyInit,
  });
  if (!r.ok) throw new Error('backup ' + name + ': ' + r.status);
}
