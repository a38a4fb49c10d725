// The device's end-to-end encryption storage, in the "e2e" object store
// of IndexedDB. Keys that WebCrypto can hold are CryptoKeys created
// non-extractable (script can use them, never read their bytes): the
// device's Ed25519 signature key and the AES-256-GCM "wrap" key. Every
// other record — MLS group states, KeyPackage private keys, the recovery
// key, decrypted history — is sealed with the wrap key, the record's id
// as additional data (so records cannot be swapped).
//
// What this does not do: a person with the unlocked browser profile on
// disk, or script running in the page, can still use the keys. See
// SECURITY.md ("The web client's part").

import * as idb from '../idb';

interface Sealed {
  id: string;
  iv: Uint8Array;
  ct: ArrayBuffer;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
let wrapKey: Promise<CryptoKey> | null = null;

/** wrap returns the device's wrap key, made on first use. */
export function wrap(): Promise<CryptoKey> {
  if (!wrapKey) {
    wrapKey = (async () => {
      const got = await idb.get<{ id: string; key: CryptoKey }>('e2e', 'wrap');
      if (got) return got.key;
      const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
      await idb.put('e2e', { id: 'wrap', key });
      return key;
    })();
    wrapKey.catch(() => (wrapKey = null));
  }
  return wrapKey;
}

/** forget drops the cached wrap key (after the store was cleared). */
export function forget(): void {
  wrapKey = null;
}

export async function put(id: string, data: Uint8Array): Promise<void> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: enc.encode(id) }, await wrap(), data as BufferSource);
  await idb.put<Sealed>('e2e', { id, iv, ct });
}

async function open(s: Sealed): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: s.iv as BufferSource, additionalData: enc.encode(s.id) }, await wrap(), s.ct));
}

export async function get(id: string): Promise<Uint8Array | undefined> {
  const s = await idb.get<Sealed>('e2e', id);
  return s && s.ct ? open(s) : undefined;
}

export async function putJSON(id: string, v: unknown): Promise<void> {
  await put(id, enc.encode(JSON.stringify(v)));
}

export async function getJSON<T>(id: string): Promise<T | undefined> {
  const b = await get(id);
  return b ? (JSON.parse(dec.decode(b)) as T) : undefined;
}

/** all opens every sealed record whose id starts with prefix. */
export async function all(prefix: string): Promise<{ id: string; data: Uint8Array }[]> {
  const rows = await idb.prefixed<Sealed>('e2e', prefix);
  return Promise.all(rows.map(async (r) => ({ id: r.id, data: await open(r) })));
}

export async function del(id: string): Promise<void> {
  await idb.del('e2e', id);
}

export async function delAll(prefix: string): Promise<void> {
  await idb.delPrefixed('e2e', prefix);
}

/** Plain records (not sealed): the device's identity, whose private key
 * is a non-extractable CryptoKey. */
export async function getRaw<T>(id: string): Promise<T | undefined> {
  return idb.get<T & { id: string }>('e2e', id);
}

export async function putRaw<T extends { id: string }>(v: T): Promise<void> {
  await idb.put('e2e', v);
}

/** clear wipes the e2e store but the wrap key (a new device identity). */
export async function clear(): Promise<void> {
  const key = await wrap();
  await idb.delPrefixed('e2e', '');
  await idb.put('e2e', { id: 'wrap', key });
}

export const b64 = {
  enc(b: Uint8Array): string {
    let s = '';
    for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
    return btoa(s);
  },
  dec(s: string): Uint8Array {
    const bin = atob(s);
    const b = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
    return b;
  },
};
