// Measures the costs that decide the default cipher suite, with the same
// engine the client runs: a group of n members made in one commit, adding
// one member to it, joining it, encrypting and decrypting, and the sizes
// of what travels. Run in Node by scripts/mls-bench.mjs and in Chromium
// by the browser test TestMLSSuiteFigures.

import * as mls from './engine';

export interface Figures {
  suite: mls.SuiteID;
  members: number;
  key_package_gen_ms: number; // one KeyPackage, mean
  key_package_bytes: number; // mean
  create_group_ms: number; // create + commit adding n-1 + GroupInfo
  welcome_bytes: number; // the Welcome of that commit
  group_info_bytes: number;
  join_ms: number; // a member processes that Welcome
  add_one_ms: number; // commit adding one member to the n-member group
  add_one_welcome_bytes: number;
  add_one_commit_bytes: number;
  process_add_ms: number; // a member processes that commit
  encrypt_ms: number; // 1 KiB message, mean
  decrypt_ms: number;
  message_bytes: number;
}

const now = (): number => performance.now();
const round = (x: number): number => Math.round(x * 100) / 100;

export async function bench(suite: mls.SuiteID, n = 200, rounds = 20): Promise<Figures> {
  const signers = await Promise.all(Array.from({ length: n + 1 }, () => mls.newSigner()));
  const ids = signers.map((_, i) => mls.identity('u-bench-' + i.toString().padStart(4, '0'), 'd-bench' + i));
  const accept: mls.CredentialCheck = async () => true;

  let t = now();
  const kps: mls.NewKeyPackage[] = [];
  for (let i = 0; i <= n; i++) kps.push(await mls.newKeyPackage(suite, ids[i], signers[i]));
  const kpGen = (now() - t) / (n + 1);
  const kpBytes = kps.reduce((s, k) => s + k.message.length, 0) / kps.length;

  t = now();
  const g0 = await mls.newGroup(suite, 'r-bench-group', kps[0]);
  const c = await mls.commit(
    g0,
    kps.slice(1, n).map((k) => k.public),
    [],
  );
  const create = now() - t;

  t = now();
  let member = await mls.join(c.welcome!, kps[1], accept);
  const joinMs = now() - t;

  t = now();
  const add = await mls.commit(c.group, [kps[n].public], []);
  const addOne = now() - t;

  t = now();
  member = (await mls.processCommit(member, add.commit, accept)).group;
  const processAdd = now() - t;

  let owner = add.group;
  const body = new Uint8Array(1024).fill(0x61);
  let encMs = 0;
  let decMs = 0;
  let size = 0;
  for (let i = 0; i < rounds; i++) {
    t = now();
    const e = await mls.encrypt(owner, body);
    encMs += now() - t;
    owner = e.group;
    size = e.message.length;
    t = now();
    const d = await mls.decrypt(member, e.message);
    decMs += now() - t;
    member = d.group;
  }
  return {
    suite,
    members: n,
    key_package_gen_ms: round(kpGen),
    key_package_bytes: Math.round(kpBytes),
    create_group_ms: round(create),
    welcome_bytes: c.welcome!.length,
    group_info_bytes: c.groupInfo.length,
    join_ms: round(joinMs),
    add_one_ms: round(addOne),
    add_one_welcome_bytes: add.welcome!.length,
    add_one_commit_bytes: add.commit.length,
    process_add_ms: round(processAdd),
    encrypt_ms: round(encMs / rounds),
    decrypt_ms: round(decMs / rounds),
    message_bytes: size,
  };
}
