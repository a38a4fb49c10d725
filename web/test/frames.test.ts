import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classify, Cursors, splitFrames } from '../src/frames';

test('one message, several frames', () => {
  const fs = splitFrames('{"t":"room","id":"r-1"}\n{"t":"ev","room":"r-1","seq":1}\nnot json\n{"x":1}\n\n{"t":"synced","id":"s1"}');
  assert.deepEqual(
    fs.map((f) => f.t),
    ['room', 'ev', 'synced'],
  );
});

test('dedupe by room and seq', () => {
  assert.equal(classify(0, 5), 'next');
  assert.equal(classify(5, 6), 'next');
  assert.equal(classify(5, 5), 'dup');
  assert.equal(classify(5, 3), 'dup');
  assert.equal(classify(5, 8), 'hole');
});

test('cursors only move forward', () => {
  const c = new Cursors();
  c.set('r-a', 4);
  c.set('r-a', 2);
  c.set('r-b', 0);
  assert.deepEqual(c.toJSON(), { 'r-a': 4 });
  c.reset('r-a', 1);
  assert.equal(c.get('r-a'), 1);
});
