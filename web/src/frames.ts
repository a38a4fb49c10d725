// Splitting websocket messages into frames, and telling new room events
// from ones already seen (across reconnects a room's events may come again;
// they are recognised by room and seq).

/** A frame from the node: "t" says which. */
export interface Frame {
  t: string;
  [k: string]: unknown;
}

/** splitFrames parses one websocket message: one JSON frame per line. Lines
 * that are not JSON objects with a "t" are skipped. */
export function splitFrames(data: string): Frame[] {
  const out: Frame[] = [];
  for (const line of data.split('\n')) {
    if (!line.trim()) continue;
    try {
      const f = JSON.parse(line) as unknown;
      if (f && typeof f === 'object' && !Array.isArray(f) && typeof (f as Frame).t === 'string') out.push(f as Frame);
    } catch {
      // A broken line is dropped; the rest of the message still counts.
    }
  }
  return out;
}

/** Verdict of an event against what a room's timeline already holds. */
export type Seen = 'dup' | 'next' | 'hole';

/** classify says whether event seq follows a timeline that ends at last:
 * already held, the next one, or after a hole (missing events). A timeline
 * that holds nothing yet (last 0) takes anything as next. */
export function classify(last: number, seq: number): Seen {
  if (last > 0 && seq <= last) return 'dup';
  if (last === 0 || seq === last + 1) return 'next';
  return 'hole';
}

/** Cursors are the last seq held per room, sent with "sync". */
export class Cursors {
  private m = new Map<string, number>();
  get(room: string): number {
    return this.m.get(room) ?? 0;
  }
  set(room: string, seq: number): void {
    if (seq > this.get(room)) this.m.set(room, seq);
  }
  reset(room: string, seq: number): void {
    this.m.set(room, seq);
  }
  delete(room: string): void {
    this.m.delete(room);
  }
  toJSON(): Record<string, number> {
    const o: Record<string, number> = {};
    for (const [k, v] of this.m) if (v > 0) o[k] = v;
    return o;
  }
}
