// Draws the Relais icon as SVG and as PNG (with a small PNG encoder), so
// that the icons are generated, not binary files in the repository.

import { deflateSync } from 'node:zlib';

export const brand = { bg: '#1c55b8', fg: '#ffffff' };

// Shapes in unit coordinates (0..1), drawn over the background.
const bubble = { x0: 0.2, y0: 0.24, x1: 0.8, y1: 0.68, r: 0.12 };
const tail = [
  [0.3, 0.6],
  [0.3, 0.82],
  [0.5, 0.66],
];
const dots = [0.36, 0.5, 0.64].map((x) => ({ x, y: 0.46, r: 0.05 }));

export function svg() {
  const b = bubble;
  const s = (v) => +(v * 100).toFixed(2);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100" role="img" aria-label="Relais">
<rect width="100" height="100" rx="22" fill="${brand.bg}"/>
<rect x="${s(b.x0)}" y="${s(b.y0)}" width="${s(b.x1 - b.x0)}" height="${s(b.y1 - b.y0)}" rx="${s(b.r)}" fill="${brand.fg}"/>
<path d="M${tail.map(([x, y]) => s(x) + ' ' + s(y)).join('L')}Z" fill="${brand.fg}"/>
${dots.map((d) => `<circle cx="${s(d.x)}" cy="${s(d.y)}" r="${s(d.r)}" fill="${brand.bg}"/>`).join('\n')}
</svg>
`;
}

function inRoundRect(x, y, x0, y0, x1, y1, r) {
  if (x < x0 || x > x1 || y < y0 || y > y1) return false;
  const cx = Math.min(Math.max(x, x0 + r), x1 - r);
  const cy = Math.min(Math.max(y, y0 + r), y1 - r);
  return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
}

function inTriangle(x, y, [a, b, c]) {
  const d = (p, q) => (x - q[0]) * (p[1] - q[1]) - (p[0] - q[0]) * (y - q[1]);
  const d1 = d(a, b), d2 = d(b, c), d3 = d(c, a);
  const neg = d1 < 0 || d2 < 0 || d3 < 0;
  const pos = d1 > 0 || d2 > 0 || d3 > 0;
  return !(neg && pos);
}

function hex(c) {
  return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
}

/** pixels renders the icon at size×size RGBA; maskable icons fill the
 * square and keep the drawing in the safe zone. */
function pixels(size, maskable) {
  const bg = hex(brand.bg);
  const fg = hex(brand.fg);
  const out = new Uint8Array(size * size * 4);
  const n = 4; // supersampling per axis
  const scale = maskable ? 0.72 : 1;
  const off = (1 - scale) / 2;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let cover = 0, fgc = 0;
      for (let sy = 0; sy < n; sy++) {
        for (let sx = 0; sx < n; sx++) {
          const ux = (px + (sx + 0.5) / n) / size;
          const uy = (py + (sy + 0.5) / n) / size;
          if (!maskable && !inRoundRect(ux, uy, 0, 0, 1, 1, 0.22)) continue;
          cover++;
          const x = (ux - off) / scale, y = (uy - off) / scale;
          const inBubble = inRoundRect(x, y, bubble.x0, bubble.y0, bubble.x1, bubble.y1, bubble.r) || inTriangle(x, y, tail);
          const inDot = dots.some((d) => (x - d.x) ** 2 + (y - d.y) ** 2 <= d.r * d.r);
          if (inBubble && !inDot) fgc++;
        }
      }
      const i = (py * size + px) * 4;
      const a = cover / (n * n);
      const f = cover ? fgc / cover : 0;
      for (let k = 0; k < 3; k++) out[i + k] = Math.round(bg[k] * (1 - f) + fg[k] * f);
      out[i + 3] = Math.round(a * 255);
    }
  }
  return out;
}

const crcTable = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** png encodes RGBA pixels as a PNG file. */
export function encodePNG(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const raw = Buffer.alloc((size * 4 + 1) * size);
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // no filter
    Buffer.from(rgba.buffer, y * size * 4, size * 4).copy(raw, y * (size * 4 + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export function png(size, maskable = false) {
  return encodePNG(size, pixels(size, maskable));
}
