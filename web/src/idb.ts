// A small promise wrapper over IndexedDB: one database, a few object
// stores keyed by "id". The outbox, the offline cache of rooms and the
// end-to-end encryption state ("e2e": keys, MLS group states, decrypted
// history, all but the keys encrypted at rest, see e2e/keystore.ts) live
// here.

const DB_NAME = 'relais';
const VERSION = 2;
export const STORES = ['outbox', 'rooms', 'kv', 'e2e'] as const;
export type StoreName = (typeof STORES)[number];

let dbp: Promise<IDBDatabase> | null = null;

function open(): Promise<IDBDatabase> {
  if (!dbp) {
    dbp = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, VERSION);
      req.onupgradeneeded = () => {
        for (const s of STORES) if (!req.result.objectStoreNames.contains(s)) req.result.createObjectStore(s, { keyPath: 'id' });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return dbp;
}

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(store: StoreName, mode: IDBTransactionMode): Promise<IDBObjectStore> {
  return (await open()).transaction(store, mode).objectStore(store);
}

export async function all<T>(store: StoreName): Promise<T[]> {
  return done((await tx(store, 'readonly')).getAll()) as Promise<T[]>;
}

export async function get<T>(store: StoreName, id: string): Promise<T | undefined> {
  return done((await tx(store, 'readonly')).get(id)) as Promise<T | undefined>;
}

export async function put<T extends { id: string }>(store: StoreName, v: T): Promise<void> {
  await done((await tx(store, 'readwrite')).put(v));
}

/** putMany writes several values in one transaction. */
export async function putMany<T extends { id: string }>(store: StoreName, vs: T[]): Promise<void> {
  if (!vs.length) return;
  const s = await tx(store, 'readwrite');
  await Promise.all(vs.map((v) => done(s.put(v))));
}

/** prefixed returns the values whose id starts with prefix. */
export async function prefixed<T>(store: StoreName, prefix: string): Promise<T[]> {
  return done((await tx(store, 'readonly')).getAll(IDBKeyRange.bound(prefix, prefix + '\uffff'))) as Promise<T[]>;
}

/** delPrefixed deletes the values whose id starts with prefix. */
export async function delPrefixed(store: StoreName, prefix: string): Promise<void> {
  await done((await tx(store, 'readwrite')).delete(IDBKeyRange.bound(prefix, prefix + '\uffff')));
}

export async function del(store: StoreName, id: string): Promise<void> {
  await done((await tx(store, 'readwrite')).delete(id));
}

export async function clearAll(): Promise<void> {
  const db = await open();
  const t = db.transaction([...STORES], 'readwrite');
  await Promise.all(STORES.map((s) => done(t.objectStore(s).clear())));
}
