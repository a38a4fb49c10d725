// The arithmetic of a windowed list with variable heights: offsets from
// measured (or estimated) heights, the range of items to render for a
// scroll position, and scroll anchoring so that content does not jump when
// items are added above or measured. No DOM here.

export interface Range {
  start: number; // first index rendered
  end: number; // one past the last index rendered
}

export interface Anchor {
  key: string;
  delta: number; // scrollTop minus the item's offset
}

export class Heights {
  private keys: string[] = [];
  private index = new Map<string, number>();
  private measured = new Map<string, number>();
  private offs: number[] = [0];
  private dirty = true;

  constructor(public estimate = 60) {}

  /** setKeys sets the items, in order; measured heights are kept by key. */
  setKeys(keys: string[]): void {
    this.keys = keys;
    this.index.clear();
    keys.forEach((k, i) => this.index.set(k, i));
    this.dirty = true;
  }

  get length(): number {
    return this.keys.length;
  }

  keyAt(i: number): string {
    return this.keys[i];
  }

  indexOf(key: string): number {
    return this.index.get(key) ?? -1;
  }

  heightOf(key: string): number {
    return this.measured.get(key) ?? this.estimate;
  }

  isMeasured(key: string): boolean {
    return this.measured.has(key);
  }

  /** set records a measured height; it reports whether it changed. */
  set(key: string, h: number): boolean {
    if (this.measured.get(key) === h) return false;
    this.measured.set(key, h);
    this.dirty = true;
    return true;
  }

  private compute(): void {
    if (!this.dirty) return;
    const n = this.keys.length;
    const offs = new Array<number>(n + 1);
    offs[0] = 0;
    for (let i = 0; i < n; i++) offs[i + 1] = offs[i] + this.heightOf(this.keys[i]);
    this.offs = offs;
    this.dirty = false;
  }

  /** offset is the top of item i (i = length: the total height). */
  offset(i: number): number {
    this.compute();
    return this.offs[Math.max(0, Math.min(i, this.keys.length))];
  }

  total(): number {
    return this.offset(this.keys.length);
  }

  /** indexAt returns the item that covers y (clamped to the list). */
  indexAt(y: number): number {
    this.compute();
    const n = this.keys.length;
    if (n === 0) return 0;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.offs[mid] <= y) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** range returns the items to render for a viewport, with overscan
   * pixels above and below. */
  range(scrollTop: number, viewport: number, overscan: number): Range {
    const n = this.keys.length;
    if (n === 0) return { start: 0, end: 0 };
    const start = this.indexAt(Math.max(0, scrollTop - overscan));
    const end = Math.min(n, this.indexAt(scrollTop + viewport + overscan) + 1);
    return { start, end };
  }

  /** anchor remembers the item at the top of the viewport and how far
   * into it the view is scrolled. */
  anchor(scrollTop: number): Anchor | null {
    if (this.keys.length === 0) return null;
    const i = this.indexAt(scrollTop);
    return { key: this.keys[i], delta: scrollTop - this.offset(i) };
  }

  /** scrollFor returns the scrollTop that keeps an anchor in place after
   * items were added or re-measured; null if the item is gone. */
  scrollFor(a: Anchor): number | null {
    const i = this.indexOf(a.key);
    if (i < 0) return null;
    return this.offset(i) + a.delta;
  }
}

/** atBottom tells whether a scroller is (nearly) scrolled to the end. */
export function atBottom(scrollTop: number, viewport: number, total: number, slack = 24): boolean {
  return scrollTop + viewport >= total - slack;
}
