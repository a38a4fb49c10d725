// The "relais file v1" format of end-to-end encrypted attachments, in
// WebCrypto (HKDF-SHA256, AES-256-GCM). It must give the very bytes of
// server/media/sealed.go, which documents it:
//
//	encKey     = HKDF-SHA256(K, salt empty, info "relais file v1 aes-256-gcm")
//	commitment = HKDF-SHA256(K, salt empty, info "relais file v1 key commitment")
//	blob       = "RELAISF1" || commitment || chunk_0 || … || chunk_n-1
//	chunk_i    = AES-256-GCM(encKey, nonce_i, plaintext_i) (plaintext + 16-byte tag)
//	nonce_i    = uint88 big-endian i || last (1 for the final chunk, else 0)
//
// Plaintext chunks are 65,536 bytes, the last one holding the rest (an
// empty file is one empty final chunk). web/test/sealed.test.ts checks
// this code against a vector made by the Go code.

export const FILE_KEY_SIZE = 32;
export const CHUNK = 64 * 1024;
const TAG = 16;
const MAGIC = new TextEncoder().encode('RELAISF1');
export const HEADER = MAGIC.length + 32;

/** UndecryptableError: the key does not open the blob (wrong key, damaged
 * or truncated blob). */
export class UndecryptableError extends Error {}

const subtle = () => globalThis.crypto.subtle;

async function fileKeys(key: Uint8Array): Promise<{ aes: CryptoKey; commitment: Uint8Array }> {
  if (key.length !== FILE_KEY_SIZE) throw new UndecryptableError('file key of ' + key.length + ' bytes');
  const ikm = await subtle().importKey('raw', key as BufferSource, 'HKDF', false, ['deriveBits']);
  const derive = async (info: string) =>
    new Uint8Array(await subtle().deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: new TextEncoder().encode(info) }, ikm, 256));
  const encKey = await derive('relais file v1 aes-256-gcm');
  const commitment = await derive('relais file v1 key commitment');
  const aes = await subtle().importKey('raw', encKey as BufferSource, 'AES-GCM', false, ['encrypt', 'decrypt']);
  encKey.fill(0);
  return { aes, commitment };
}

function nonce(i: number, last: boolean): Uint8Array {
  const n = new Uint8Array(12);
  // i < 2^53: bytes 0..3 stay zero.
  const v = new DataView(n.buffer);
  v.setUint32(3, Math.floor(i / 2 ** 32));
  v.setUint32(7, i >>> 0);
  n[11] = last ? 1 : 0;
  return n;
}

/** chunks is the number of chunks of a plaintext of size bytes. */
export function chunkCount(size: number): number {
  return Math.max(1, Math.ceil(size / CHUNK));
}

/** sealedSize is the size of the blob of a plaintext of size bytes. */
export function sealedSize(size: number): number {
  return HEADER + size + chunkCount(size) * TAG;
}

/** newFileKey returns a fresh random file key. */
export function newFileKey(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(FILE_KEY_SIZE));
}

/** encryptFile encrypts a file (a Blob, read a slice at a time) into the
 * parts of its blob, in order; progress is told the plaintext bytes done. */
export async function encryptFile(file: Blob, key: Uint8Array, progress?: (done: number) => void, signal?: AbortSignal): Promise<Blob> {
  const { aes, commitment } = await fileKeys(key);
  const parts: BlobPart[] = [MAGIC, commitment as BlobPart];
  const n = chunkCount(file.size);
  const READ = 16 * CHUNK;
  let buf = new Uint8Array(0);
  let bufAt = 0; // plaintext offset of buf[0]
  for (let i = 0; i < n; i++) {
    signal?.throwIfAborted();
    const start = i * CHUNK;
    const end = Math.min(start + CHUNK, file.size);
    if (end > bufAt + buf.length) {
      bufAt = start;
      buf = new Uint8Array(await file.slice(start, Math.min(start + READ, file.size)).arrayBuffer());
    }
    const plain = buf.subarray(start - bufAt, end - bufAt);
    const ct = await subtle().encrypt({ name: 'AES-GCM', iv: nonce(i, i === n - 1) as BufferSource }, aes, plain as BufferSource);
    parts.push(ct);
    progress?.(end);
  }
  return new Blob(parts, { type: 'application/octet-stream' });
}

/** decryptFile checks the commitment of a blob and decrypts it. */
export async function decryptFile(blob: Uint8Array, key: Uint8Array): Promise<Uint8Array> {
  const { aes, commitment } = await fileKeys(key);
  const payload = blob.length - HEADER;
  if (payload < TAG) throw new UndecryptableError('encrypted file too short');
  for (let i = 0; i < MAGIC.length; i++) if (blob[i] !== MAGIC[i]) throw new UndecryptableError('not a relais encrypted file');
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= blob[MAGIC.length + i] ^ commitment[i];
  if (diff !== 0) throw new UndecryptableError('the key does not match the file’s commitment');
  const full = CHUNK + TAG;
  const n = Math.ceil(payload / full);
  if (n > 1 && payload - (n - 1) * full === TAG) throw new UndecryptableError('encrypted file ends with an empty chunk');
  const out = new Uint8Array(payload - n * TAG);
  for (let i = 0; i < n; i++) {
    const off = HEADER + i * full;
    const ct = blob.subarray(off, Math.min(off + full, blob.length));
    let plain: ArrayBuffer;
    try {
      plain = await subtle().decrypt({ name: 'AES-GCM', iv: nonce(i, i === n - 1) as BufferSource }, aes, ct as BufferSource);
    } catch {
      throw new UndecryptableError('chunk ' + i + ' does not open');
    }
    out.set(new Uint8Array(plain), i * CHUNK);
  }
  return out;
}

/** sha256 returns the SHA-256 of bytes. */
export async function sha256(b: Uint8Array | ArrayBuffer): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-256', b as BufferSource));
}

/** sha256Blob hashes a Blob a slice at a time (files can be large). */
export async function sha256Blob(b: Blob): Promise<Uint8Array> {
  // WebCrypto has no incremental digest: for files of reasonable size
  // (the node's limit is 100 MiB by default) one buffer is fine.
  return sha256(await b.arrayBuffer());
}

export function toB64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromB64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
