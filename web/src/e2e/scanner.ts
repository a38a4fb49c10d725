// Sealing a file key to the node's scanner key (PROTOCOL.md, "Files",
// encrypted rooms): HPKE (RFC 9180) mode base, KEM X-Wing (0x647a), KDF
// HKDF-SHA256, AEAD AES-256-GCM, info "relais media scanner v1", no
// additional data — the suite of server/media/sealed.go. It lives in the
// MLS chunk, which already carries @hpke/core and X-Wing for ts-mls.

import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { XWing } from '@hpke/hybridkem-x-wing';

export const SCANNER_INFO = 'relais media scanner v1';
const SUITE = { kem: 0x647a, kdf: 0x0001, aead: 0x0002 };

let suite: CipherSuite | null = null;
function cipherSuite(): CipherSuite {
  return (suite ??= new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Aes256Gcm() }));
}

/** checkSuite refuses a scanner key of another suite than the one this
 * client implements. */
export function checkSuite(s: { kem: number; kdf: number; aead: number } | undefined, info: string | undefined): void {
  if (!s || s.kem !== SUITE.kem || s.kdf !== SUITE.kdf || s.aead !== SUITE.aead || (info !== undefined && info !== SCANNER_INFO))
    throw new Error('scanner key of an unknown suite');
}

/** sealToScanner seals a file key to the scanner's public key. */
export async function sealToScanner(publicKey: Uint8Array, fileKey: Uint8Array): Promise<{ enc: Uint8Array; sealed: Uint8Array }> {
  const s = cipherSuite();
  const pk = await s.kem.deserializePublicKey(publicKey);
  const r = await s.seal({ recipientPublicKey: pk, info: new TextEncoder().encode(SCANNER_INFO) }, fileKey);
  return { enc: new Uint8Array(r.enc), sealed: new Uint8Array(r.ct) };
}

/** openSealed opens a sealed file key with the scanner's private key
 * (its 32-byte seed): what the node does; the unit tests use it on a
 * vector made by the Go code. */
export async function openSealed(seed: Uint8Array, enc: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> {
  const s = cipherSuite();
  const sk = await s.kem.deserializePrivateKey(seed);
  const pt = await s.open({ recipientKey: sk, enc, info: new TextEncoder().encode(SCANNER_INFO) }, sealed);
  return new Uint8Array(pt);
}
