import assert from 'node:assert/strict';
import { test } from 'node:test';
import jsQR from 'jsqr';
import { qr } from '../src/e2e/qr';

// picture draws a QR matrix as a reader sees it: black modules on white,
// scale pixels per module, with the 4-module quiet zone the standard asks.
function picture(m: boolean[][], scale = 4): { data: Uint8ClampedArray; size: number } {
  const size = (m.length + 8) * scale;
  const data = new Uint8ClampedArray(size * size * 4).fill(255);
  for (let y = 0; y < m.length; y++) {
    for (let x = 0; x < m.length; x++) {
      if (!m[y][x]) continue;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const i = (((y + 4) * scale + dy) * size + (x + 4) * scale + dx) * 4;
          data[i] = data[i + 1] = data[i + 2] = 0;
        }
      }
    }
  }
  return { data, size };
}

test('QR codes decode to what was encoded, in every version the encoder makes', () => {
  const digits = (n: number) => Array.from({ length: n }, (_, i) => String((i * 7 + 3) % 10)).join('');
  const texts = [
    'a',
    'hello',
    digits(60), // a safety number
    'relais:safety:' + digits(60),
    'Sécurité — numéro de sécurité ✓',
    ...[10, 20, 35, 55, 75, 95, 115, 140, 170, 205].map((n) => 'x'.repeat(n - 3) + 'end'),
  ];
  const versions = new Set<number>();
  for (const text of texts) {
    const m = qr(text);
    versions.add((m.length - 17) / 4);
    const { data, size } = picture(m);
    const got = jsQR(data, size, size, { inversionAttempts: 'dontInvert' });
    assert.ok(got, `no QR code found for ${JSON.stringify(text)} (version ${(m.length - 17) / 4})`);
    assert.equal(got.data, text);
  }
  assert.deepEqual([...versions].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});
