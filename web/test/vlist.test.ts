import assert from 'node:assert/strict';
import { test } from 'node:test';
import { atBottom, Heights } from '../src/vlist';

const keys = (n: number, p = 'k') => Array.from({ length: n }, (_, i) => p + i);

test('offsets and range with estimates and measures', () => {
  const h = new Heights(50);
  h.setKeys(keys(100));
  assert.equal(h.total(), 5000);
  h.set('k0', 100);
  assert.equal(h.offset(1), 100);
  assert.equal(h.total(), 5050);
  assert.equal(h.indexAt(0), 0);
  assert.equal(h.indexAt(99), 0);
  assert.equal(h.indexAt(100), 1);
  assert.equal(h.indexAt(1e9), 99);
  const r = h.range(1000, 500, 100);
  assert.ok(r.start <= h.indexAt(900) && r.end >= h.indexAt(1600) + 1);
  assert.ok(r.end - r.start < 20);
});

test('a 10,000-item list renders a bounded window', () => {
  const h = new Heights(64);
  h.setKeys(keys(10000));
  const r = h.range(300000, 800, 600);
  assert.ok(r.end - r.start <= 40, `window of ${r.end - r.start}`);
});

test('anchoring keeps the view when older items are prepended', () => {
  const h = new Heights(50);
  h.setKeys(keys(10, 'new'));
  const a = h.anchor(120)!;
  assert.deepEqual(a, { key: 'new2', delta: 20 });
  h.setKeys([...keys(100, 'old'), ...keys(10, 'new')]);
  assert.equal(h.scrollFor(a), 100 * 50 + 2 * 50 + 20);
  h.set('old5', 80);
  assert.equal(h.scrollFor(a), 100 * 50 + 30 + 2 * 50 + 20);
  h.setKeys(keys(3, 'other'));
  assert.equal(h.scrollFor(a), null);
});

test('at bottom', () => {
  assert.ok(atBottom(900, 100, 1000));
  assert.ok(atBottom(880, 100, 1000));
  assert.ok(!atBottom(800, 100, 1000));
});
