import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backupKey, formatKey, newRecoveryKey, open, parseKey, seal } from '../src/e2e/backup';
import * as mls from '../src/e2e/engine';
import { qr } from '../src/e2e/qr';
import { deviceTag, safetyNumber } from '../src/e2e/safety';
import { messageID, newMessageID, encodePayload, parsePayload } from '../src/payload';
import { Plain, roomPlains, seqOfId, setPlain } from '../src/crypto';

const enc = new TextEncoder();
const raw = (o: unknown) => enc.encode(JSON.stringify(o));

test('payloads: the documented format, strictly', () => {
  const id = newMessageID();
  assert.match(id, messageID);
  assert.notEqual(newMessageID(), id);
  const other = newMessageID();
  const p = parsePayload(encodePayload({ type: 'text', id, body: 'Bonjour', reply: other, mentions: ['u-n1-abc'] }));
  assert.deepEqual(p, { v: 2, type: 'text', id, body: 'Bonjour', reply: other, mentions: ['u-n1-abc'] });
  assert.deepEqual(parsePayload(raw({ v: 2, type: 'react', ref: id, key: '👍' })), { v: 2, type: 'react', ref: id, key: '👍' });
  assert.deepEqual(parsePayload(raw({ v: 2, type: 'edit', ref: id, body: 'x', extra: true })), { v: 2, type: 'edit', ref: id, body: 'x' });
  assert.deepEqual(parsePayload(raw({ v: 2, type: 'delete', ref: id })), { v: 2, type: 'delete', ref: id });
  const file = { id: 'f-abc', name: 'note.pdf', size: 12, mime: 'application/pdf', key: 'AAAA', hash: 'BBBB' };
  assert.deepEqual(parsePayload(raw({ v: 2, type: 'file', id, body: '', file }))?.file, file);
  // Version 1, before message ids: still read (its references by seq are
  // not followed by the client).
  assert.deepEqual(parsePayload(raw({ v: 1, type: 'text', body: 'x', reply_to: 4 })), { v: 1, type: 'text', body: 'x', reply_to: 4 });
  assert.deepEqual(parsePayload(raw({ v: 1, type: 'react', target: 3, key: '👍' })), { v: 1, type: 'react', target: 3, key: '👍' });
  for (const bad of [
    { v: 3, type: 'text', id, body: 'x' },
    { v: 2, type: 'shout', id, body: 'x' },
    { v: 2, type: 'text', id },
    { v: 2, type: 'text', body: 'x' }, // a message without its id
    { v: 2, type: 'text', id: 'short', body: 'x' },
    { v: 2, type: 'text', id: id + '=', body: 'x' },
    { v: 2, type: 'text', id, body: 'x', reply_to: 4 }, // seqs are version 1's
    { v: 2, type: 'text', id, body: 'x', ref: other },
    { v: 2, type: 'edit', body: 'x' },
    { v: 2, type: 'edit', ref: other, target: 3, body: 'x' },
    { v: 2, type: 'edit', id, ref: other, body: 'x' },
    { v: 2, type: 'react', ref: other },
    { v: 2, type: 'delete', target: 3 },
    { v: 2, type: 'delete', ref: other, reply: id },
    { v: 1, type: 'edit', ref: other, body: 'x' }, // ids are version 2's
    { v: 1, type: 'text', id, body: 'x' },
    { v: 1, type: 'react', target: 0, key: 'x' },
    { v: 2, type: 'text', id, body: 'x', mentions: ['not a user'] },
    { v: 2, type: 'text', id, body: 'x'.repeat(20000) },
    { v: 2, type: 'file', id, file: { ...file, id: '../etc' } },
    [1, 2],
  ])
    assert.equal(parsePayload(raw(bad)), null, JSON.stringify(bad).slice(0, 80));
  assert.equal(parsePayload(new Uint8Array([0xff, 0xfe])), null);
});

test('message ids: a room’s messages by payload id, the first to bring one keeps it', () => {
  const room = 'r-test-ids';
  const a = newMessageID();
  const b = newMessageID();
  const msg = (id: string, body: string): Extract<Plain, { kind: 'msg' }> => ({ ok: true, kind: 'msg', from: 'u-n1-abc', type: 'text', id, body });
  setPlain(room, 5, msg(a, 'alpha'));
  setPlain(room, 6, msg(b, 'beta'));
  assert.equal(seqOfId(room, a), 5);
  assert.equal(seqOfId(room, b), 6);
  assert.equal(seqOfId('r-other', a), undefined, 'ids are per room');
  // A replay of alpha's id under another seq does not take it.
  setPlain(room, 9, msg(a, 'replay'));
  assert.equal(seqOfId(room, a), 5);
  // Edited or deleted, the message keeps its id.
  setPlain(room, 5, { ...msg(a, ''), deleted: true });
  assert.equal(seqOfId(room, a), 5);
  // Replaced by something else, it loses it.
  setPlain(room, 6, { ok: false, reason: 'invalid' });
  assert.equal(seqOfId(room, b), undefined);
  setPlain(room, 5, undefined);
  assert.equal(seqOfId(room, a), undefined);
  // restored from disk through the map itself
  roomPlains(room).set(7, msg(b, 'beta'));
  assert.equal(seqOfId(room, b), 7);
});

test('recovery keys: 160 bits, typed loosely, wrong keys refused', async () => {
  const k = newRecoveryKey();
  assert.match(k, /^([0-9A-HJKMNP-TV-Z]{4}-){7}[0-9A-HJKMNP-TV-Z]{4}$/);
  const b = parseKey(k)!;
  assert.equal(b.length, 20);
  assert.equal(formatKey(b), k);
  assert.deepEqual(parseKey(' ' + k.toLowerCase().replace(/-/g, ' ').replace(/0/g, 'o') + ' '), b);
  assert.equal(parseKey(k.slice(0, -1)), null);
  assert.equal(parseKey(k.slice(0, -1) + 'U'), null);

  const key = await backupKey(b, 'u-n1-bob', 'history');
  const box = await seal(key, 'u-n1-bob', 'h.r-n1-x.0', enc.encode('historique'));
  assert.equal(new TextDecoder().decode(await open(key, 'u-n1-bob', 'h.r-n1-x.0', box)), 'historique');
  // Another name, another user, another purpose or another key: refused.
  await assert.rejects(open(key, 'u-n1-bob', 'h.r-n1-x.1', box));
  await assert.rejects(open(await backupKey(b, 'u-n1-eve', 'history'), 'u-n1-eve', 'h.r-n1-x.0', box));
  await assert.rejects(open(await backupKey(b, 'u-n1-bob', 'meta'), 'u-n1-bob', 'h.r-n1-x.0', box));
  await assert.rejects(open(await backupKey(parseKey(newRecoveryKey())!, 'u-n1-bob', 'history'), 'u-n1-bob', 'h.r-n1-x.0', box));
  box[20] ^= 1;
  await assert.rejects(open(key, 'u-n1-bob', 'h.r-n1-x.0', box));
});

test('safety numbers: the same on both sides, changed by any device change', async () => {
  const k = (n: number) => new Uint8Array(32).fill(n);
  const alice = { user: 'u-n1-alice', devices: [{ device: 'd-a2', key: k(2) }, { device: 'd-a1', key: k(1) }] };
  const bob = { user: 'u-n1-bob', devices: [{ device: 'd-b1', key: k(3) }] };
  const ab = await safetyNumber(alice, bob);
  assert.equal(ab.length, 12);
  assert.ok(ab.every((g) => /^\d{5}$/.test(g)));
  assert.deepEqual(await safetyNumber(bob, alice), ab);
  assert.deepEqual(await safetyNumber({ ...alice, devices: [...alice.devices].reverse() }, bob), ab);
  assert.notDeepEqual(await safetyNumber(alice, { ...bob, devices: [...bob.devices, { device: 'd-b2', key: k(4) }] }), ab);
  assert.notDeepEqual(await safetyNumber(alice, { ...bob, devices: [{ device: 'd-b1', key: k(5) }] }), ab);
});

test('QR codes: sizes by version, finder patterns in the corners', () => {
  assert.equal(qr('hello').length, 21);
  assert.equal(qr('1'.repeat(60)).length, 33);
  assert.equal(qr('x'.repeat(200)).length, 57);
  const m = qr('123456789012345678901234567890123456789012345678901234567890');
  const n = m.length;
  for (const [x, y] of [
    [0, 0],
    [n - 7, 0],
    [0, n - 7],
  ]) {
    for (let i = 0; i < 7; i++) {
      assert.equal(m[y][x + i], true);
      assert.equal(m[y + 6][x + i], true);
      assert.equal(m[y + i][x], true);
    }
    assert.equal(m[y + 1][x + 1], false);
    assert.equal(m[y + 3][x + 3], true);
  }
  assert.throws(() => qr('x'.repeat(400)));
});

test('a device that lost its state takes its place again by external commit', async () => {
  const check: mls.CredentialCheck = async () => true;
  const a = { s: await mls.newSigner(), id: mls.identity('u-n1-alice', 'd-a1') };
  const b = { s: await mls.newSigner(), id: mls.identity('u-n1-bob', 'd-b1') };
  let ga = await mls.newGroup(1, 'r-n1-room', await mls.newKeyPackage(1, a.id, a.s));
  const c = await mls.commit(ga, [(await mls.newKeyPackage(1, b.id, b.s)).public], []);
  ga = c.group;
  assert.equal(mls.groupIdOf(ga), 'r-n1-room');
  // Bob's device lost its group state but has its signature key.
  const again = await mls.externalJoin(c.groupInfo, await mls.newKeyPackage(1, b.id, b.s), check);
  const r = await mls.processCommit(ga, again.commit, check);
  assert.equal(r.external, true);
  assert.deepEqual(r.added, [b.id]);
  assert.deepEqual(r.removed, [b.id]);
  assert.equal(mls.members(r.group).length, 2);
  const m = await mls.encrypt(again.group, enc.encode('revenu'));
  assert.equal(new TextDecoder().decode((await mls.decrypt(r.group, m.message)).plaintext), 'revenu');
});

test('device tags: the node\'s (proto.UserTag of the device id)', () => {
  // Values printed by proto.UserTag in Go.
  assert.equal(deviceTag('d-one'), '3W15');
  assert.equal(deviceTag('d-hiddenhiddenhid'), 'AXWK');
});
