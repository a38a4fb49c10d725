import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auditQuery, bucket, growth, linePath, niceMax, peak } from '../src/admin';

test('bucket sums groups ending with the last value', () => {
  assert.deepEqual(bucket([1, 2, 3, 4, 5], 2), [1, 5, 9]);
  assert.deepEqual(bucket([1, 2, 3], 1), [1, 2, 3]);
  assert.deepEqual(bucket([], 10), []);
});

test('peak keeps the highest of each group', () => {
  assert.deepEqual(peak([1, 7, 3, 4, 5], 2), [1, 7, 5]);
});

test('niceMax rounds up to 1, 2, 5 × 10^n', () => {
  assert.deepEqual([0, 1, 3, 7, 12, 99, 101].map(niceMax), [1, 1, 5, 10, 20, 100, 200]);
});

test('linePath spans the width, 0 at the bottom', () => {
  assert.equal(linePath([0, 5, 10], 100, 50, 10), 'M0.0 50.0 L50.0 25.0 L100.0 0.0');
  assert.equal(linePath([3], 100, 50, 10), 'M100.0 35.0');
  assert.equal(linePath([], 100, 50, 10), '');
});

test('growth over the last minutes', () => {
  assert.equal(growth([10, 20, 35], 60), 25);
  assert.equal(growth([10, 20, 35], 1), 15);
  assert.equal(growth([10], 60), 0);
});

test('auditQuery leaves empty fields out', () => {
  assert.equal(auditQuery({}), '');
  assert.equal(auditQuery({ action: 'user.approve', actor: '', from: '2026-12-01' }), '?action=user.approve&from=2026-12-01');
});
