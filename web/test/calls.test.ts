import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeSignal, fingerprints, newCallID, parseSignal } from '../src/call/signal';
import { encodePayload, parsePayload } from '../src/payload';

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const sdp = 'v=0\r\na=fingerprint:sha-256 AB:CD:EF\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 ab:cd:ef\r\n';

test('signals round-trip and are strictly parsed', () => {
  const call = newCallID();
  assert.match(call, /^[A-Za-z0-9_-]{22}$/);
  assert.deepEqual(parseSignal(encodeSignal({ call, kind: 'ring', media: 'audio', sdp })), { sig: 1, call, kind: 'ring', media: 'audio', sdp });
  assert.ok(parseSignal(encodeSignal({ call, kind: 'hangup', to: 'u-a-b/d-c' })));
  assert.ok(parseSignal(encodeSignal({ call, kind: 'ice', cand: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 } })));
  assert.ok(parseSignal(encodeSignal({ call, kind: 'gring', media: 'audio' })));
  assert.ok(parseSignal(encodeSignal({ call, kind: 'gjoin' })));
  assert.ok(parseSignal(encodeSignal({ call, kind: 'goffer', to: 'u-a-b/d-c', sdp })));
  for (const [why, o] of [
    ['group ring without media', { sig: 1, call, kind: 'gring' }],
    ['group offer without sdp', { sig: 1, call, kind: 'goffer' }],
    ['media on a hangup', { sig: 1, call, kind: 'hangup', media: 'audio' }],
    ['no sig', { call, kind: 'hangup' }],
    ['bad call id', { sig: 1, call: 'x', kind: 'hangup' }],
    ['unknown kind', { sig: 1, call, kind: 'text' }],
    ['ring without sdp', { sig: 1, call, kind: 'ring', media: 'audio' }],
    ['ring without media', { sig: 1, call, kind: 'ring', sdp }],
    ['answer without sdp', { sig: 1, call, kind: 'answer' }],
    ['hangup with sdp', { sig: 1, call, kind: 'hangup', sdp }],
    ['ice without candidate', { sig: 1, call, kind: 'ice' }],
    ['unknown field', { sig: 1, call, kind: 'hangup', body: 'x' }],
    ['a message payload', { v: 2, type: 'text', id: call, body: 'bonjour' }],
  ] as const)
    assert.equal(parseSignal(enc(o)), null, why);
});

test('a signal is never a message, a message never a signal', () => {
  const call = newCallID();
  assert.equal(parsePayload(encodeSignal({ call, kind: 'ring', media: 'audio', sdp })), null);
  const rec = encodePayload({ type: 'call', id: call, call: { state: 'missed', media: 'audio' } });
  assert.equal(parseSignal(rec), null);
  assert.deepEqual(parsePayload(rec)?.call, { state: 'missed', media: 'audio' });
  assert.deepEqual(parsePayload(encodePayload({ type: 'call', id: call, call: { state: 'ended', media: 'video', dur: 61 } }))?.call, { state: 'ended', media: 'video', dur: 61 });
  for (const bad of [
    { v: 2, type: 'call', id: call },
    { v: 2, type: 'call', id: call, call: { state: 'won', media: 'audio' } },
    { v: 2, type: 'call', id: call, call: { state: 'ended', media: 'audio', dur: -1 } },
    { v: 2, type: 'text', id: call, body: 'x', call: { state: 'missed', media: 'audio' } },
    { v: 2, type: 'call', call: { state: 'missed', media: 'audio' } },
  ])
    assert.equal(parsePayload(enc(bad)), null, JSON.stringify(bad));
});

test('fingerprints of an SDP', () => {
  assert.deepEqual(fingerprints(sdp), ['sha-256 AB:CD:EF']);
});
