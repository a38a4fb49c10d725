import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openSealed, sealToScanner } from '../src/e2e/scanner';
import { encodePayload, newMessageID, parsePayload } from '../src/payload';
import { CHUNK, chunkCount, decryptFile, encryptFile, fromB64, HEADER, newFileKey, sealedSize, sha256, toB64, UndecryptableError } from '../src/sealed';
import vector from './vectors/sealed-v1.json';

// The vector is written and checked by the Go code of server/media
// (TestSealedFileVector in server/webtest): this client must give the
// same bytes.

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const plain = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255);
const bytes = async (b: Blob) => new Uint8Array(await b.arrayBuffer());

test('relais file v1: the Go vector, byte for byte', async () => {
  const key = unhex(vector.key);
  for (const c of vector.cases) {
    const ct = await bytes(await encryptFile(new Blob([plain(c.size)]), key));
    assert.equal(ct.length, sealedSize(c.size), `size ${c.size}`);
    assert.equal(hex(await sha256(ct)), c.ciphertext_sha256, `size ${c.size}`);
    assert.deepEqual(await decryptFile(ct, key), plain(c.size), `size ${c.size}`);
  }
  const small = fromB64(vector.small.ciphertext);
  assert.deepEqual(await decryptFile(small, key), plain(vector.small.size));
  assert.equal(toB64(await bytes(await encryptFile(new Blob([plain(vector.small.size)]), key))), vector.small.ciphertext);
});

test('relais file v1: chunking and sizes', () => {
  assert.equal(chunkCount(0), 1);
  assert.equal(chunkCount(CHUNK), 1);
  assert.equal(chunkCount(CHUNK + 1), 2);
  assert.equal(sealedSize(0), HEADER + 16);
  assert.equal(sealedSize(2 * CHUNK + 5), HEADER + 2 * CHUNK + 5 + 3 * 16);
});

test('relais file v1: wrong keys and damaged blobs are refused', async () => {
  const key = newFileKey();
  const p = plain(2 * CHUNK + 100);
  const progress: number[] = [];
  const ct = await bytes(await encryptFile(new Blob([p]), key, (n) => progress.push(n)));
  assert.deepEqual(progress, [CHUNK, 2 * CHUNK, 2 * CHUNK + 100]);
  const flip = (i: number) => {
    const b = ct.slice();
    b[i] ^= 1;
    return b;
  };
  const full = CHUNK + 16;
  const cases: [string, Uint8Array, Uint8Array][] = [
    ['wrong key', ct, newFileKey()],
    ['short key', ct, key.subarray(0, 16)],
    ['tampered magic', flip(0), key],
    ['tampered commitment', flip(12), key],
    ['tampered chunk', flip(HEADER + full + 7), key],
    ['tampered tag', flip(ct.length - 1), key],
    ['truncated to whole chunks', ct.subarray(0, HEADER + 2 * full), key],
    ['truncated', ct.subarray(0, ct.length - 10), key],
    ['too short', ct.subarray(0, HEADER + 3), key],
  ];
  for (const [name, blob, k] of cases) await assert.rejects(decryptFile(blob, k), UndecryptableError, name);
  // Swapping two chunks is caught by the index in the nonce.
  const swapped = ct.slice();
  swapped.set(ct.subarray(HEADER + full, HEADER + 2 * full), HEADER);
  swapped.set(ct.subarray(HEADER, HEADER + full), HEADER + full);
  await assert.rejects(decryptFile(swapped, key), UndecryptableError, 'swapped chunks');
});

test('scanner key: the sealed key of the Go vector opens, and ours opens with it', async () => {
  const seed = unhex(vector.scanner.seed);
  const got = await openSealed(seed, fromB64(vector.scanner.enc), fromB64(vector.scanner.sealed));
  assert.equal(hex(got), vector.scanner.file_key);
  const key = newFileKey();
  const s = await sealToScanner(fromB64(vector.scanner.public_key), key);
  assert.equal(s.enc.length, 1120);
  assert.deepEqual(await openSealed(seed, s.enc, s.sealed), key);
});

test('payloads: an encrypted file with its inline thumbnail', () => {
  const file = {
    id: 'f-abc',
    name: 'plan.png',
    size: 1200,
    mime: 'image/png',
    key: toB64(newFileKey()),
    hash: 'BBBB',
    w: 800,
    h: 600,
    thumb: { data: 'AAAA', mime: 'image/jpeg', w: 320, h: 240 },
  };
  const id = newMessageID();
  assert.deepEqual(parsePayload(encodePayload({ type: 'file', id, file }))?.file, file);
  // A thumbnail of another type, or too large, is left out.
  const svg = parsePayload(encodePayload({ type: 'file', id, file: { ...file, thumb: { ...file.thumb, mime: 'image/svg+xml' } } }));
  assert.equal(svg?.file?.thumb, undefined);
  const big = parsePayload(encodePayload({ type: 'file', id, file: { ...file, thumb: { ...file.thumb, data: 'A'.repeat(200 * 1024) } } }));
  assert.equal(big?.file?.thumb, undefined);
});
