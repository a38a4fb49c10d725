// The websocket: connect, read "hello", send "sync" with the cursors,
// dispatch frames, match answers to requests by id, and reconnect with
// backoff after any disconnection. A heartbeat notices a connection that
// went silent without closing (a NAT or Wi-Fi dropping the flow): the
// node's pings are answered by the browser below JavaScript, so the
// client pings too.

import { Frame, splitFrames } from './frames';
import { SendError } from './outbox';

export type Status = 'connecting' | 'online' | 'offline';

export interface Handlers {
  cursors(): Record<string, number>;
  onHello(f: Frame): void;
  onFrame(f: Frame): void;
  onSynced(): void;
  onStatus(s: Status): void;
  /** The session is over (signed out elsewhere, device revoked). */
  onRevoked(): void;
  /** Called after repeated failures to connect, to check the session. */
  checkSession(): Promise<boolean>;
}

interface Waiter {
  resolve(f: Frame): void;
  reject(e: SendError): void;
  timer: ReturnType<typeof setTimeout>;
}

const backoff = [250, 500, 1000, 2000, 4000, 8000, 15000];
const requestTimeout = 20000;

/** Heartbeat: after idle ms without any frame from the node, a ping;
 * without any frame for timeout ms more, the connection is dead. A
 * connection attempt that gets no frame in idle + timeout is abandoned. */
export interface Heartbeat {
  idle: number;
  timeout: number;
}

const heartbeatDefaults: Heartbeat = { idle: 15000, timeout: 10000 };

/** heartbeat reads the intervals, which tests shorten through
 * localStorage["relais.heartbeat"] (JSON {idle, timeout}). */
export function heartbeat(): Heartbeat {
  try {
    const v = JSON.parse(localStorage.getItem('relais.heartbeat') ?? 'null') as Partial<Heartbeat> | null;
    const ok = (n: unknown): n is number => typeof n === 'number' && n >= 100;
    if (v && ok(v.idle) && ok(v.timeout)) return { idle: v.idle, timeout: v.timeout };
  } catch {
    // A malformed setting: the defaults.
  }
  return heartbeatDefaults;
}

export class Socket {
  private ws: WebSocket | null = null;
  private waiting = new Map<string, Waiter>();
  private ids = 0;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = true;
  private ready = false;
  private readyWaiters: (() => void)[] = [];
  private syncID = '';
  private beat: Heartbeat = heartbeatDefaults;
  private beatTimer: ReturnType<typeof setTimeout> | null = null;
  /** The browser said it is offline: no reconnection but the slowest
   * until it says it is online again. */
  private offline = false;
  status: Status = 'offline';

  constructor(private h: Handlers) {
    addEventListener('offline', () => {
      this.offline = true;
      // The connection is gone with the network: say so now, not after
      // the heartbeat.
      if (this.ws) this.dead(this.ws, this.ready);
    });
    addEventListener('online', () => {
      this.offline = false;
      const ws = this.ws;
      if (!ws) this.now();
      else if (!this.ready) {
        // An attempt made on the old network may hang: start afresh.
        this.dead(ws, false);
        this.now();
      } else this.probe(ws);
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.now();
    });
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.unbeat();
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000);
    this.lost();
  }

  /** now reconnects at once if a reconnection is waiting. */
  now(): void {
    if (!this.stopped && !this.ws && this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
      this.connect();
    }
  }

  isReady(): boolean {
    return this.ready;
  }

  private setStatus(s: Status): void {
    if (this.status !== s) {
      this.status = s;
      this.h.onStatus(s);
    }
  }

  private connect(): void {
    if (this.stopped || this.ws) return;
    this.setStatus('connecting');
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/ws';
    const ws = new WebSocket(url);
    this.ws = ws;
    this.beat = heartbeat();
    let hello = false;
    this.arm(ws, () => hello);
    ws.onmessage = (m) => {
      if (this.ws !== ws) return;
      this.arm(ws, () => hello);
      for (const f of splitFrames(String(m.data))) {
        if (!hello) {
          if (f.t !== 'hello') continue;
          hello = true;
          this.h.onHello(f);
          this.syncID = 's' + ++this.ids;
          if (isOpen(ws)) ws.send(JSON.stringify({ t: 'sync', id: this.syncID, rooms: this.h.cursors() }));
          continue;
        }
        this.dispatch(f);
      }
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.unbeat();
      this.lost();
      if (ev.code === 4001) {
        this.stopped = true;
        this.h.onRevoked();
        return;
      }
      this.schedule(hello);
    };
    ws.onerror = () => {
      // onclose follows and handles it.
    };
  }

  /** arm restarts the silence timer: any frame from the node proves the
   * connection alive. */
  private arm(ws: WebSocket, hadHello: () => boolean): void {
    this.unbeat();
    this.beatTimer = setTimeout(() => {
      if (this.ws === ws) this.probe(ws, hadHello());
    }, this.beat.idle);
  }

  /** probe pings (once the node said hello); any frame before the
   * timeout re-arms the timer, none means the connection is dead. */
  private probe(ws: WebSocket, hadHello = true): void {
    this.unbeat();
    if (hadHello && isOpen(ws)) ws.send(JSON.stringify({ t: 'ping', id: 'p' + ++this.ids }));
    this.beatTimer = setTimeout(() => {
      if (this.ws === ws) this.dead(ws, hadHello);
    }, this.beat.timeout);
  }

  private unbeat(): void {
    if (this.beatTimer) clearTimeout(this.beatTimer);
    this.beatTimer = null;
  }

  /** dead gives up on a connection that went silent, without waiting
   * for its close handshake (which a dead network never completes), and
   * goes through the ordinary reconnection: the sync resumes from the
   * cursors and the outbox re-sends with the same ids. */
  private dead(ws: WebSocket, hadHello: boolean): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.unbeat();
    ws.onmessage = ws.onclose = ws.onerror = null;
    ws.close();
    this.lost();
    this.schedule(hadHello);
  }

  private schedule(hadHello: boolean): void {
    if (this.stopped) return;
    const d = this.offline ? backoff[backoff.length - 1] : backoff[Math.min(this.attempt, backoff.length - 1)];
    this.attempt++;
    if (!hadHello && this.attempt % 3 === 0) {
      // The upgrade keeps failing: the session may be over.
      this.h.checkSession().then((ok) => {
        if (!ok) {
          this.stopped = true;
          this.h.onRevoked();
        }
      });
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, d * (0.8 + Math.random() * 0.4));
  }

  private lost(): void {
    this.ready = false;
    for (const [, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new SendError('disconnected'));
    }
    this.waiting.clear();
    this.setStatus('offline');
  }

  private dispatch(f: Frame): void {
    const id = typeof f.id === 'string' ? f.id : '';
    if (f.t === 'synced' && id === this.syncID) {
      this.ready = true;
      this.attempt = 0;
      this.setStatus('online');
      this.h.onSynced();
      const ws = this.readyWaiters;
      this.readyWaiters = [];
      ws.forEach((r) => r());
      return;
    }
    if (id && (f.t === 'result' || f.t === 'ack' || f.t === 'error' || f.t === 'pong')) {
      const w = this.waiting.get(id);
      if (w) {
        this.waiting.delete(id);
        clearTimeout(w.timer);
        if (f.t === 'error') w.reject(new SendError(String(f.code), String(f.message ?? ''), Number(f.retry_after ?? 0), f));
        else w.resolve(f);
        return;
      }
    }
    if (f.t === 'error') return; // an answer to a frame without id (typing, read)
    if (f.t === 'pong') return; // the heartbeat's answer: arriving was its purpose
    this.h.onFrame(f);
  }

  /** whenReady resolves once the connection is synced. */
  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((r) => this.readyWaiters.push(r));
  }

  /** frame sends a frame that expects an answer; it resolves with the
   * answer frame (result or ack) and rejects with a SendError. */
  frame(f: Record<string, unknown>, id?: string): Promise<Frame> {
    if (!this.ready || !this.ws || !isOpen(this.ws)) return Promise.reject(new SendError('disconnected'));
    const rid = id ?? 'q' + ++this.ids;
    const ws = this.ws;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(rid);
        reject(new SendError('timeout'));
      }, requestTimeout);
      this.waiting.set(rid, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...f, id: rid }));
    });
  }

  /** request sends a request and resolves with the "data" of its result. */
  async request<T>(f: Record<string, unknown>): Promise<T> {
    if (!this.ready) await this.whenReady();
    const r = await this.frame(f);
    return r.data as T;
  }

  /** notify sends a frame that expects no answer (typing, read). */
  notify(f: Record<string, unknown>): void {
    if (this.ready && this.ws && isOpen(this.ws)) this.ws.send(JSON.stringify(f));
  }
}

/** isOpen: between the server's close frame and onclose the socket is
 * CLOSING, and sending on it only logs an error; the frame would be lost
 * anyway and is retried after the reconnection. */
function isOpen(ws: WebSocket): boolean {
  return ws.readyState === WebSocket.OPEN;
}
