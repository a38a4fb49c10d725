import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as mls from '../src/e2e/engine';

const enc = new TextEncoder();
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const dec = new TextDecoder();

async function device(suite: mls.SuiteID, user: string, dev: string) {
  const signer = await mls.newSigner();
  const ident = mls.identity(user, dev);
  return { signer, ident, kp: () => mls.newKeyPackage(suite, ident, signer) };
}

for (const suite of [mls.SUITE_CLASSIC, mls.SUITE_XWING]) {
  test(`a group's life in suite ${suite}`, async () => {
    const room = 'r-n1-aaaaaaaaaaaaaaaa';
    const alice = await device(suite, 'u-n1-alice', 'd-a1');
    const bob = await device(suite, 'u-n1-bob', 'd-b1');
    const carol = await device(suite, 'u-n1-carol', 'd-c1');
    const seen: string[] = [];
    const check: mls.CredentialCheck = async (id) => {
      seen.push(id);
      return !id.includes('mallory');
    };

    let a = await mls.newGroup(suite, room, await alice.kp());
    assert.equal(mls.epochOf(a), 0n);
    const bkp = await bob.kp();
    const ckp = await carol.kp();
    assert.equal(mls.keyPackageIdentity(mls.decodeKeyPackage(bkp.message)), bob.ident);
    const c1 = await mls.commit(a, [bkp.public, ckp.public], []);
    a = c1.group;
    assert.equal(mls.epochOf(a), 1n);
    assert.ok(c1.welcome);
    const refs = mls.readWelcome(c1.welcome!).refs.map(hex);
    assert.ok(refs.includes(hex(bkp.ref)));
    assert.equal(mls.readGroupInfo(c1.groupInfo).epoch, 1n);

    let b = await mls.join(c1.welcome!, bkp, check);
    let c = await mls.join(c1.welcome!, ckp, check);
    assert.ok(seen.includes(alice.ident));
    assert.deepEqual(
      mls.members(b).map((m) => m.identity),
      [alice.ident, bob.ident, carol.ident],
    );

    // Messages both ways, with the sender's identity.
    const m1 = await mls.encrypt(a, enc.encode('bonjour'));
    a = m1.group;
    const r1 = await mls.decrypt(b, m1.message);
    b = r1.group;
    assert.equal(dec.decode(r1.plaintext), 'bonjour');
    assert.equal(r1.sender, alice.ident);
    const r1c = await mls.decrypt(c, m1.message);
    c = r1c.group;

    // Bob's second device joins by external commit; the others accept it.
    const bob2 = await device(suite, 'u-n1-bob', 'd-b2');
    const ext = await mls.externalJoin(c1.groupInfo, await bob2.kp(), check, enc.encode('Firefox'));
    let b2 = ext.group;
    const pa = await mls.processCommit(a, ext.commit, check);
    a = pa.group;
    assert.equal(pa.external, true);
    assert.equal(pa.by, bob2.ident);
    assert.deepEqual(pa.added, [bob2.ident]);
    assert.equal(dec.decode(pa.ad), 'Firefox');
    b = (await mls.processCommit(b, ext.commit, check)).group;
    c = (await mls.processCommit(c, ext.commit, check)).group;

    // A device whose credential the check refuses cannot join.
    const mallory = await device(suite, 'u-n1-mallory', 'd-m1');
    const bad = await mls.externalJoin(ext.groupInfo, await mallory.kp(), async () => true);
    await assert.rejects(mls.processCommit(a, bad.commit, check));

    // Alice removes Carol: Carol cannot read what follows.
    const carolLeaf = mls.members(a).find((m) => m.identity === carol.ident)!.leaf;
    const c2 = await mls.commit(a, [], [carolLeaf]);
    a = c2.group;
    const pb = await mls.processCommit(b, c2.commit, check);
    b = pb.group;
    assert.deepEqual(pb.removed, [carol.ident]);
    assert.equal(pb.by, alice.ident);
    b2 = (await mls.processCommit(b2, c2.commit, check)).group;
    const pc = await mls.processCommit(c, c2.commit, check);
    assert.equal(mls.isActive(pc.group), false);
    const m2 = await mls.encrypt(b, enc.encode('après'));
    b = m2.group;
    assert.equal(dec.decode((await mls.decrypt(a, m2.message)).plaintext), 'après');
    assert.equal(dec.decode((await mls.decrypt(b2, m2.message)).plaintext), 'après');
    await assert.rejects(mls.decrypt(pc.group, m2.message));
    await assert.rejects(mls.decrypt(c, m2.message));

    // State survives encoding.
    const again = mls.decodeGroup(suite, mls.encodeGroup(a));
    const m3 = await mls.encrypt(b2, enc.encode('encore'));
    assert.equal(dec.decode((await mls.decrypt(again, m3.message)).plaintext), 'encore');
  });
}
