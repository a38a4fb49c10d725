// The outbox: every "send" goes through it. An entry is kept (in
// IndexedDB, through the Storage given) until the node acknowledges it, so
// that a message typed offline or before a reload is sent when the
// connection comes back, with the same idempotency id so that it is stored
// once. States: pending (not acknowledged yet), sent, failed (the node
// refused it for good).

import type { FileRef } from './payload';

export type OutState = 'pending' | 'sent' | 'failed';

/** The fields of a "send" frame, but "t" and "id". */
export interface SendFields {
  room: string;
  type: string;
  body?: string;
  reply_to?: number;
  mentions?: string[];
  target?: number;
  /** Encrypted rooms: the payload ids of the message concerned and of
   * the message answered (they replace target and reply_to, which are
   * the node's seqs). */
  ref?: string;
  reply?: string;
  key?: string;
  data?: string;
  /** A file: its id for the node; in an encrypted room, the whole
   * reference (key, name…), which goes into the encrypted payload. */
  file?: { id: string } | FileRef;
}

export interface OutEntry {
  id: string; // the idempotency key, also the event's cid
  fields: SendFields;
  state: OutState;
  created: number;
  code?: string; // why it failed
  seq?: number; // once sent
  ts?: number;
}

export type OutEvent =
  | { type: 'ack'; seq: number; ts: number }
  | { type: 'error'; code: string }
  | { type: 'retry' };

/** Error codes after which sending again cannot succeed. Others
 * (rate_limited, unavailable, internal, a broken connection, the home of a
 * room shared with another administration not answering) are retried. */
const transient = new Set(['rate_limited', 'unavailable', 'internal', 'disconnected', 'timeout', 'home_unreachable']);

export function isDefinitive(code: string): boolean {
  return !transient.has(code);
}

/** next is the outbox's state machine. */
export function next(e: OutEntry, ev: OutEvent): OutEntry {
  switch (ev.type) {
    case 'ack':
      if (e.state === 'sent') return e;
      return { ...e, state: 'sent', seq: ev.seq, ts: ev.ts, code: undefined };
    case 'error':
      if (e.state !== 'pending') return e;
      return isDefinitive(ev.code) ? { ...e, state: 'failed', code: ev.code } : e;
    case 'retry':
      return e.state === 'failed' ? { ...e, state: 'pending', code: undefined } : e;
  }
}

export interface Storage {
  load(): Promise<OutEntry[]>;
  put(e: OutEntry): Promise<void>;
  delete(id: string): Promise<void>;
}

export interface Ack {
  seq: number;
  ts: number;
}

/** SendError is how a sender reports a refusal (code) or a broken
 * connection (code "disconnected"). */
export class SendError extends Error {
  constructor(
    public code: string,
    message = code,
    public retryAfter = 0,
    /** The error frame, for codes that carry more (epoch_mismatch has
     * "epoch", remove_pending "devices"). */
    public frame: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export type Sender = (id: string, f: SendFields) => Promise<Ack>;

export function newID(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return 'c-' + Array.from(b, (x) => x.toString(36).padStart(2, '0')).join('');
}

/** retryRateLimited calls send again, after the node's retry_after, while
 * it is refused with rate_limited — a refused frame was not carried out,
 * so sending it again is the first try — up to `tries` times in all.
 * Other refusals and broken connections are the caller's. */
export async function retryRateLimited<T>(send: () => Promise<T>, tries = 6, wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await send();
    } catch (err) {
      if (!(err instanceof SendError) || err.code !== 'rate_limited' || i >= tries) throw err;
      await wait(Math.min(Math.max(err.retryAfter, 0.5), 30) * 1000);
    }
  }
}

export class Outbox {
  private entries = new Map<string, OutEntry>();
  private inFlight = new Set<string>();
  private online = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private storage: Storage,
    private sender: Sender,
    private onChange: (e: OutEntry) => void,
  ) {}

  async load(): Promise<void> {
    for (const e of await this.storage.load()) this.entries.set(e.id, e);
  }

  list(): OutEntry[] {
    return [...this.entries.values()].sort((a, b) => a.created - b.created);
  }

  get(id: string): OutEntry | undefined {
    return this.entries.get(id);
  }

  /** add queues a send and tries it at once if connected. */
  async add(fields: SendFields, id = newID()): Promise<OutEntry> {
    const e: OutEntry = { id, fields, state: 'pending', created: Date.now() };
    this.entries.set(id, e);
    this.onChange(e);
    await this.storage.put(e);
    this.trySend(e);
    return e;
  }

  /** setOnline is told when the connection is ready (synced) or lost;
   * when ready, every pending entry is sent again in order. */
  setOnline(on: boolean): void {
    this.online = on;
    if (on) this.flush();
  }

  flush(): void {
    for (const e of this.list()) if (e.state === 'pending') this.trySend(e);
  }

  retry(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.update(next(e, { type: 'retry' }));
    this.trySend(this.entries.get(id)!);
  }

  /** discard drops an entry (a failed message the user gives up). */
  async discard(id: string): Promise<void> {
    const e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    await this.storage.delete(id);
    this.onChange({ ...e, state: 'failed', code: 'discarded' });
  }

  /** forget drops a sent entry from memory once its event is shown. */
  forget(id: string): void {
    const e = this.entries.get(id);
    if (e && e.state === 'sent') this.entries.delete(id);
  }

  private update(e: OutEntry): void {
    const prev = this.entries.get(e.id);
    if (!prev) return;
    this.entries.set(e.id, e);
    if (prev !== e) {
      if (e.state === 'sent') void this.storage.delete(e.id);
      else void this.storage.put(e);
      this.onChange(e);
    }
  }

  private trySend(e: OutEntry): void {
    if (!this.online || e.state !== 'pending' || this.inFlight.has(e.id)) return;
    this.inFlight.add(e.id);
    this.sender(e.id, e.fields).then(
      (ack) => {
        this.inFlight.delete(e.id);
        const cur = this.entries.get(e.id);
        if (cur) this.update(next(cur, { type: 'ack', seq: ack.seq, ts: ack.ts }));
      },
      (err: unknown) => {
        this.inFlight.delete(e.id);
        const code = err instanceof SendError ? err.code : 'disconnected';
        const cur = this.entries.get(e.id);
        if (!cur) return;
        this.update(next(cur, { type: 'error', code }));
        if (code === 'rate_limited' || code === 'unavailable' || code === 'internal' || code === 'home_unreachable') {
          const after = err instanceof SendError && err.retryAfter > 0 ? err.retryAfter * 1000 : 2000;
          if (!this.timer) this.timer = setTimeout(() => ((this.timer = null), this.flush()), after);
        }
      },
    );
  }
}
