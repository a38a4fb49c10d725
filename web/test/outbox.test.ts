import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ack, isDefinitive, next, OutEntry, Outbox, retryRateLimited, SendError, SendFields } from '../src/outbox';

const entry = (): OutEntry => ({ id: 'c-1', fields: { room: 'r-1', type: 'text', body: 'hi' }, state: 'pending', created: 1 });

test('state machine', () => {
  const e = entry();
  assert.equal(next(e, { type: 'error', code: 'disconnected' }).state, 'pending');
  assert.equal(next(e, { type: 'error', code: 'rate_limited' }).state, 'pending');
  assert.equal(next(e, { type: 'error', code: 'internal' }).state, 'pending');
  const failed = next(e, { type: 'error', code: 'forbidden' });
  assert.equal(failed.state, 'failed');
  assert.equal(failed.code, 'forbidden');
  assert.equal(next(failed, { type: 'retry' }).state, 'pending');
  const sent = next(e, { type: 'ack', seq: 7, ts: 9 });
  assert.deepEqual([sent.state, sent.seq], ['sent', 7]);
  assert.equal(next(sent, { type: 'error', code: 'forbidden' }).state, 'sent');
  assert.ok(isDefinitive('too_large') && !isDefinitive('unavailable'));
  // A room's home in another administration that does not answer: kept and sent again.
  assert.ok(!isDefinitive('home_unreachable'));
});

class Mem {
  m = new Map<string, OutEntry>();
  async load() {
    return [...this.m.values()];
  }
  async put(e: OutEntry) {
    this.m.set(e.id, e);
  }
  async delete(id: string) {
    this.m.delete(id);
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

test('offline sends wait, survive a reload, and go with the same id', async () => {
  const storage = new Mem();
  const seen: string[] = [];
  let online = false;
  const sender = async (id: string, _f: SendFields): Promise<Ack> => {
    seen.push(id);
    if (!online) throw new SendError('disconnected');
    return { seq: seen.length, ts: 1 };
  };
  const a = new Outbox(storage, sender, () => {});
  const e = await a.add({ room: 'r-1', type: 'text', body: 'typed offline' });
  await tick();
  assert.equal(seen.length, 0, 'nothing sent while offline');
  assert.equal(storage.m.get(e.id)?.state, 'pending');

  // A reload: a new outbox from the same storage.
  const b = new Outbox(storage, sender, () => {});
  await b.load();
  assert.equal(b.list().length, 1);
  online = true;
  b.setOnline(true);
  await tick();
  await tick();
  assert.deepEqual(seen, [e.id]);
  assert.equal(b.get(e.id)?.state, 'sent');
  assert.equal(storage.m.size, 0, 'acknowledged entries leave storage');
});

test('a connection lost mid-send keeps the entry pending; a refusal fails it', async () => {
  const storage = new Mem();
  let mode = 'drop';
  const b = new Outbox(
    storage,
    async () => {
      if (mode === 'drop') throw new SendError('disconnected');
      throw new SendError('forbidden');
    },
    () => {},
  );
  b.setOnline(true);
  const e = await b.add({ room: 'r-1', type: 'text', body: 'x' });
  await tick();
  assert.equal(b.get(e.id)?.state, 'pending');
  mode = 'refuse';
  b.flush();
  await tick();
  assert.equal(b.get(e.id)?.state, 'failed');
  await b.discard(e.id);
  assert.equal(b.list().length, 0);
});

test('frames refused with rate_limited are sent again after retry_after, others are not', async () => {
  const waits: number[] = [];
  const wait = async (ms: number) => {
    waits.push(ms);
  };
  let calls = 0;
  const limitedTwice = async () => {
    calls++;
    if (calls <= 2) throw new SendError('rate_limited', 'slow down', calls === 1 ? 3 : 0);
    return 'ack';
  };
  assert.equal(await retryRateLimited(limitedTwice, 6, wait), 'ack');
  assert.equal(calls, 3);
  assert.deepEqual(waits, [3000, 500]); // the node's retry_after, at least half a second

  calls = 0;
  await assert.rejects(
    retryRateLimited(async () => {
      calls++;
      throw new SendError('forbidden', 'no');
    }, 6, wait),
    /no/,
  );
  assert.equal(calls, 1);

  calls = 0;
  await assert.rejects(
    retryRateLimited(async () => {
      calls++;
      throw new SendError('rate_limited', 'still', 1);
    }, 4, wait),
    /still/,
  );
  assert.equal(calls, 4);
});
