// A small QR code encoder (ISO/IEC 18004), enough for safety numbers:
// byte mode, error correction level M, versions 1 to 10, the mask with the
// lowest penalty. It returns the matrix; the interface draws it as SVG.

// Per version 1..10, level M: [error correction codewords per block,
// blocks in group 1, data codewords per block in group 1, blocks in
// group 2, data codewords per block in group 2].
const blocksM: [number, number, number, number, number][] = [
  [10, 1, 16, 0, 0],
  [16, 1, 28, 0, 0],
  [26, 1, 44, 0, 0],
  [18, 2, 32, 0, 0],
  [24, 2, 43, 0, 0],
  [16, 4, 27, 0, 0],
  [18, 4, 31, 0, 0],
  [22, 2, 38, 2, 39],
  [22, 3, 36, 2, 37],
  [26, 4, 43, 1, 44],
];

const alignment: number[][] = [[], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34], [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50]];

// GF(256) with the QR polynomial 0x11d.
const exp = new Uint8Array(512);
const log = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    exp[i] = x;
    log[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (let i = 255; i < 512; i++) exp[i] = exp[i - 255];
}
const mul = (a: number, b: number): number => (a && b ? exp[log[a] + log[b]] : 0);

function generator(degree: number): Uint8Array {
  let g = new Uint8Array([1]);
  for (let i = 0; i < degree; i++) {
    const next = new Uint8Array(g.length + 1);
    for (let j = 0; j < g.length; j++) {
      next[j] ^= g[j];
      next[j + 1] ^= mul(g[j], exp[i]);
    }
    g = next;
  }
  return g;
}

function ecc(data: Uint8Array, degree: number): Uint8Array {
  const g = generator(degree);
  const r = new Uint8Array(degree);
  for (const d of data) {
    const f = d ^ r[0];
    r.copyWithin(0, 1);
    r[degree - 1] = 0;
    for (let i = 0; i < degree; i++) r[i] ^= mul(g[i + 1], f);
  }
  return r;
}

function capacity(v: number): number {
  const [, b1, d1, b2, d2] = blocksM[v - 1];
  return b1 * d1 + b2 * d2;
}

function codewords(bytes: Uint8Array, v: number): Uint8Array {
  const cap = capacity(v);
  const bits: number[] = [];
  const put = (val: number, n: number) => {
    for (let i = n - 1; i >= 0; i--) bits.push((val >> i) & 1);
  };
  put(0b0100, 4);
  put(bytes.length, v < 10 ? 8 : 16);
  for (const b of bytes) put(b, 8);
  put(0, Math.min(4, cap * 8 - bits.length));
  while (bits.length % 8) bits.push(0);
  const data = new Uint8Array(cap);
  for (let i = 0; i < bits.length / 8; i++) for (let j = 0; j < 8; j++) data[i] = (data[i] << 1) | bits[i * 8 + j];
  for (let i = bits.length / 8, pad = 0xec; i < cap; i++, pad ^= 0xec ^ 0x11) data[i] = pad;
  // Split into blocks, add error correction, interleave.
  const [ec, b1, d1, b2, d2] = blocksM[v - 1];
  const blocks: Uint8Array[] = [];
  let off = 0;
  for (let i = 0; i < b1 + b2; i++) {
    const n = i < b1 ? d1 : d2;
    blocks.push(data.subarray(off, off + n));
    off += n;
  }
  const ecs = blocks.map((b) => ecc(b, ec));
  const out: number[] = [];
  for (let i = 0; i < Math.max(d1, d2); i++) for (const b of blocks) if (i < b.length) out.push(b[i]);
  for (let i = 0; i < ec; i++) for (const e of ecs) out.push(e[i]);
  return new Uint8Array(out);
}

/** qr encodes text into a square matrix of modules (true is dark). */
export function qr(text: string): boolean[][] {
  const bytes = new TextEncoder().encode(text);
  let v = 1;
  while (v <= 10 && capacity(v) < bytes.length + (v < 10 ? 2 : 3)) v++;
  if (v > 10) throw new Error('too long for a QR code here');
  const size = 17 + 4 * v;
  const m: boolean[][] = Array.from({ length: size }, () => Array<boolean>(size).fill(false));
  const fixed: boolean[][] = Array.from({ length: size }, () => Array<boolean>(size).fill(false));
  const set = (x: number, y: number, dark: boolean) => {
    m[y][x] = dark;
    fixed[y][x] = true;
  };
  // Finder patterns with separators.
  for (const [cx, cy] of [
    [3, 3],
    [size - 4, 3],
    [3, size - 4],
  ])
    for (let dy = -4; dy <= 4; dy++)
      for (let dx = -4; dx <= 4; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        if (x < 0 || y < 0 || x >= size || y >= size) continue;
        const d = Math.max(Math.abs(dx), Math.abs(dy));
        set(x, y, d !== 2 && d !== 4);
      }
  // Timing patterns.
  for (let i = 8; i < size - 8; i++) {
    set(i, 6, i % 2 === 0);
    set(6, i, i % 2 === 0);
  }
  // Alignment patterns.
  const al = alignment[v - 1];
  for (const ay of al)
    for (const ax of al) {
      if ((ax === 6 && ay === 6) || (ax === 6 && ay === size - 7) || (ax === size - 7 && ay === 6)) continue;
      for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) set(ax + dx, ay + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
    }
  // Reserve the format areas and the dark module; version information.
  for (let i = 0; i < 9; i++) {
    fixed[8][i] = fixed[i][8] = true;
    if (i < 8) fixed[8][size - 1 - i] = fixed[size - 1 - i][8] = true;
  }
  set(8, size - 8, true);
  if (v >= 7) {
    let rem = v;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >> 11) * 0x1f25);
    const bits = (v << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const dark = ((bits >> i) & 1) === 1;
      const a = size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      set(a, b, dark);
      set(b, a, dark);
    }
  }
  // Data, in the zigzag order.
  const data = codewords(bytes, v);
  let bit = 0;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    for (let vert = 0; vert < size; vert++)
      for (let j = 0; j < 2; j++) {
        const x = right - j;
        const upward = ((right + 1) & 2) === 0;
        const y = upward ? size - 1 - vert : vert;
        if (fixed[y][x]) continue;
        if (bit < data.length * 8) m[y][x] = ((data[bit >> 3] >> (7 - (bit & 7))) & 1) === 1;
        bit++;
      }
  }
  // Try the eight masks, keep the one with the lowest penalty.
  const masks: ((x: number, y: number) => boolean)[] = [
    (x, y) => (x + y) % 2 === 0,
    (_x, y) => y % 2 === 0,
    (x) => x % 3 === 0,
    (x, y) => (x + y) % 3 === 0,
    (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
    (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
    (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
    (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
  ];
  let best: boolean[][] = m;
  let bestScore = Infinity;
  masks.forEach((mask, k) => {
    const c = m.map((row, y) => row.map((d, x) => (fixed[y][x] ? d : d !== mask(x, y))));
    drawFormat(c, k, size);
    const s = penalty(c);
    if (s < bestScore) {
      bestScore = s;
      best = c;
    }
  });
  return best;
}

function drawFormat(m: boolean[][], mask: number, size: number): void {
  const data = (0b00 << 3) | mask; // level M is 00
  let rem = data;
  for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >> 9) * 0x537);
  const bits = ((data << 10) | rem) ^ 0x5412;
  const bit = (i: number) => ((bits >> i) & 1) === 1;
  for (let i = 0; i <= 5; i++) m[i][8] = bit(i);
  m[7][8] = bit(6);
  m[8][8] = bit(7);
  m[8][7] = bit(8);
  for (let i = 9; i < 15; i++) m[8][14 - i] = bit(i);
  for (let i = 0; i < 8; i++) m[8][size - 1 - i] = bit(i);
  for (let i = 8; i < 15; i++) m[size - 15 + i][8] = bit(i);
  m[size - 8][8] = true;
}

function penalty(m: boolean[][]): number {
  const n = m.length;
  let score = 0;
  const lines = (get: (i: number, j: number) => boolean) => {
    for (let i = 0; i < n; i++) {
      let run = 1;
      for (let j = 1; j <= n; j++) {
        if (j < n && get(i, j) === get(i, j - 1)) run++;
        else {
          if (run >= 5) score += run - 2;
          run = 1;
        }
      }
      for (let j = 0; j + 10 < n + 1; j++) {
        const p = [1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0];
        const fwd = p.every((b, k) => j + k < n && get(i, j + k) === (b === 1));
        const back = p.every((_b, k) => j + k < n && get(i, j + k) === (p[10 - k] === 1));
        if (fwd || back) score += 40;
      }
    }
  };
  lines((i, j) => m[i][j]);
  lines((i, j) => m[j][i]);
  let dark = 0;
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      if (m[y][x]) dark++;
      if (x < n - 1 && y < n - 1 && m[y][x] === m[y][x + 1] && m[y][x] === m[y + 1][x] && m[y][x] === m[y + 1][x + 1]) score += 3;
    }
  score += Math.floor(Math.abs((dark * 20) / (n * n) - 10)) * 10;
  return score;
}
