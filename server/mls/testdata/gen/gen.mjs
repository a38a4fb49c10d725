// Generates the golden MLS vectors of server/mls/testdata with the real
// ts-mls library, so the Go parser is tested against what the web client
// actually sends. Usage (in a scratch directory, never inside the repo):
//
//	npm install --save-exact ts-mls@1.6.4 @noble/hashes@2.0.1 @hpke/hybridkem-x-wing@0.7.0
//	node gen.mjs <output directory>
//
// Every run draws fresh keys (and GREASE values), so the bytes change from
// run to run; the expected fields written next to each vector are read back
// from ts-mls objects, not recomputed here.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ciphersuites,
  createApplicationMessage,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPubAndRatchetTree,
  createProposal,
  decodeMlsMessage,
  defaultCapabilities,
  emptyPskIndex,
  encodeExternalSender,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  joinGroupExternal,
  proposeAddExternal,
  proposeExternal,
} from "ts-mls";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";

const out = process.argv[2];
if (!out) {
  console.error("usage: node gen.mjs <output directory>");
  process.exit(2);
}

// The installed versions, read from node_modules next to this script.
const versionOf = (pkg) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url), "utf8")).version;

const hex = (b) => Buffer.from(b).toString("hex");
const utf8 = (s) => new TextEncoder().encode(s);

const contentTypes = { application: 1, proposal: 2, commit: 3 };
const senderTypes = { member: 1, external: 2, new_member_proposal: 3, new_member_commit: 4 };
const wireFormats = {
  mls_public_message: 1,
  mls_private_message: 2,
  mls_welcome: 3,
  mls_group_info: 4,
  mls_key_package: 5,
};

// A lifetime inside ts-mls' default maximum total lifetime (one month).
const now = BigInt(Math.floor(Date.now() / 1000));
const lifetime = { notBefore: now - 3600n, notAfter: now + 27n * 86400n };

async function keyPackage(cs, identity) {
  const credential = { credentialType: "basic", identity: utf8(identity) };
  const kp = await generateKeyPackage(credential, defaultCapabilities(), lifetime, [], cs);
  const bytes = encodeMlsMessage({
    version: "mls10",
    wireformat: "mls_key_package",
    keyPackage: kp.publicPackage,
  });
  const ref = await makeKeyPackageRef(kp.publicPackage, cs.hash);
  return {
    kp,
    vector: {
      name: identity,
      hex: hex(bytes),
      cipher_suite: cs.id,
      init_key_len: kp.publicPackage.initKey.length,
      encryption_key_len: kp.publicPackage.leafNode.hpkePublicKey.length,
      signature_key: hex(kp.publicPackage.leafNode.signaturePublicKey),
      credential_type: 1,
      credential_identity: hex(kp.publicPackage.leafNode.credential.identity),
      not_before: kp.publicPackage.leafNode.lifetime.notBefore.toString(),
      not_after: kp.publicPackage.leafNode.lifetime.notAfter.toString(),
      signature_len: kp.publicPackage.signature.length,
      ref: hex(ref),
    },
  };
}

// framed describes an MLSMessage carrying a PublicMessage or PrivateMessage.
function framed(name, msg, note) {
  const bytes = encodeMlsMessage(msg);
  // Round-trip through ts-mls' own decoder so the expectations are what a
  // receiving client sees.
  const [dec] = decodeMlsMessage(bytes, 0);
  const v = { name, note, hex: hex(bytes), wire_format: wireFormats[dec.wireformat] };
  if (dec.wireformat === "mls_public_message") {
    const c = dec.publicMessage.content;
    v.group_id = hex(c.groupId);
    v.epoch = c.epoch.toString();
    v.content_type = contentTypes[c.contentType];
    v.sender_type = senderTypes[c.sender.senderType];
    v.sender_index = c.sender.leafIndex ?? c.sender.senderIndex ?? 0;
    v.authenticated_data = hex(c.authenticatedData);
  } else {
    const p = dec.privateMessage;
    v.group_id = hex(p.groupId);
    v.epoch = p.epoch.toString();
    v.content_type = contentTypes[p.contentType];
    v.authenticated_data = hex(p.authenticatedData);
  }
  return v;
}

function welcomeVector(name, welcome, cs, note) {
  const bytes = encodeMlsMessage({ version: "mls10", wireformat: "mls_welcome", welcome });
  return {
    name,
    note,
    hex: hex(bytes),
    wire_format: 3,
    cipher_suite: cs.id,
    key_package_refs: welcome.secrets.map((s) => hex(s.newMember)),
    encrypted_group_info_len: welcome.encryptedGroupInfo.length,
  };
}

function groupInfoVector(name, gi, cs, note) {
  const bytes = encodeMlsMessage({ version: "mls10", wireformat: "mls_group_info", groupInfo: gi });
  return {
    name,
    note,
    hex: hex(bytes),
    wire_format: 4,
    cipher_suite: cs.id,
    group_id: hex(gi.groupContext.groupId),
    epoch: gi.groupContext.epoch.toString(),
    signer: gi.signer,
  };
}

async function suite(name) {
  const def = getCiphersuiteFromName(name);
  const cs = await getCiphersuiteImpl(def);
  cs.id = ciphersuites[name];
  const keyPackages = [];
  const messages = [];

  const alice = await keyPackage(cs, "alice@mairie-exemple.fr/laptop");
  const bob = await keyPackage(cs, "bob@mairie-exemple.fr/phone");
  const carol = await keyPackage(cs, "carol@prefecture-exemple.gouv.fr/desk");
  const dave = await keyPackage(cs, "dave@prefecture-exemple.gouv.fr/tablet");
  const erin = await keyPackage(cs, "erin@prefecture-exemple.gouv.fr/laptop");
  keyPackages.push(alice.vector, bob.vector, carol.vector, dave.vector, erin.vector);

  // An external sender (the node, say) allowed to send proposals.
  const extSig = await cs.signature.keygen();
  const externalSenders = {
    extensionType: "external_senders",
    extensionData: encodeExternalSender({
      signaturePublicKey: extSig.publicKey,
      credential: { credentialType: "basic", identity: utf8("relais-node") },
    }),
  };

  const groupId = utf8(`relais-room-${name.slice(0, 12)}`);
  let a = await createGroup(groupId, alice.kp.publicPackage, alice.kp.privatePackage, [externalSenders], cs);

  // Epoch 0 -> 1: Alice adds Bob in a Commit sent as PublicMessage.
  let r = await createCommit(
    { state: a, cipherSuite: cs },
    {
      wireAsPublicMessage: true,
      ratchetTreeExtension: true,
      authenticatedData: utf8("commit-ad"),
      extraProposals: [{ proposalType: "add", add: { keyPackage: bob.kp.publicPackage } }],
    },
  );
  messages.push(framed("commit_add_public", r.commit, "Add(bob) commit, wireAsPublicMessage: true"));
  messages.push(welcomeVector("welcome_bob", r.welcome, cs, "Welcome for bob"));
  a = r.newState;
  let b = await joinGroup(r.welcome, bob.kp.publicPackage, bob.kp.privatePackage, emptyPskIndex, cs);

  // Application messages at epoch 1 (always PrivateMessage in ts-mls).
  let m = await createApplicationMessage(a, utf8("Bonjour Bob"), cs);
  a = m.newState;
  messages.push(
    framed("application_alice", { version: "mls10", wireformat: "mls_private_message", privateMessage: m.privateMessage }, "short application message"),
  );
  m = await createApplicationMessage(b, utf8("x".repeat(861)), cs, utf8("msg-id-42"));
  b = m.newState;
  messages.push(
    framed("application_1k", { version: "mls10", wireformat: "mls_private_message", privateMessage: m.privateMessage }, "application message of about 1 KiB with authenticated data"),
  );

  // A standalone Add proposal as PublicMessage (proposal content type).
  const p = await createProposal(b, true, { proposalType: "add", add: { keyPackage: erin.kp.publicPackage } }, cs);
  messages.push(framed("proposal_add_public", p.message, "Add(erin) proposal by bob, PublicMessage"));

  // Epoch 1 -> 2: Alice adds Carol with the default options (PrivateMessage).
  r = await createCommit(
    { state: a, cipherSuite: cs },
    { extraProposals: [{ proposalType: "add", add: { keyPackage: carol.kp.publicPackage } }], ratchetTreeExtension: true },
  );
  messages.push(framed("commit_add_private", r.commit, "Add(carol) commit with default options (PrivateMessage)"));
  messages.push(welcomeVector("welcome_carol", r.welcome, cs, "Welcome for carol"));
  a = r.newState;

  // GroupInfo for external joins at epoch 2.
  const gi = await createGroupInfoWithExternalPubAndRatchetTree(a, [], cs);
  const groupInfos = [groupInfoVector("group_info_epoch2", gi, cs, "createGroupInfoWithExternalPubAndRatchetTree")];
  messages.push(groupInfos[0]);

  // Proposals from non-members.
  messages.push(
    framed("proposal_external_remove", await proposeExternal(gi, { proposalType: "remove", remove: { removed: 1 } }, extSig.publicKey, extSig.signKey, cs, utf8("node-ad")), "Remove(1) from the external sender at index 0"),
  );
  messages.push(
    framed("proposal_new_member_add", await proposeAddExternal(gi, erin.kp.publicPackage, erin.kp.privatePackage, cs), "external Add proposal by erin (new_member_proposal)"),
  );

  // Epoch 2 -> 3: Dave joins with an external Commit.
  const ext = await joinGroupExternal(gi, dave.kp.publicPackage, dave.kp.privatePackage, false, cs);
  messages.push(
    framed("commit_external_join", { version: "mls10", wireformat: "mls_public_message", publicMessage: ext.publicMessage }, "external commit by dave (new_member_commit)"),
  );

  // Key packages also travel as MLSMessage.
  for (const kp of keyPackages) {
    messages.push({ name: `key_package_${kp.name.split("@")[0]}`, hex: kp.hex, wire_format: 5, cipher_suite: kp.cipher_suite });
  }

  return {
    description: `MLS vectors for cipher suite ${cs.id} (${name}) generated by ts-mls`,
    generator: "server/mls/testdata/gen/gen.mjs",
    node: process.version,
    ts_mls: versionOf("ts-mls"),
    noble_hashes: versionOf("@noble/hashes"),
    hpke_hybridkem_x_wing: versionOf("@hpke/hybridkem-x-wing"),
    cipher_suite: cs.id,
    hash: def.hash,
    key_package_ref_len: hex(await makeKeyPackageRef(alice.kp.publicPackage, cs.hash)).length / 2,
    key_packages: keyPackages,
    group_infos: groupInfos,
    messages,
  };
}

for (const [file, name] of [
  ["suite1.json", "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"],
  ["suite83.json", "MLS_256_XWING_AES256GCM_SHA512_Ed25519"],
]) {
  const v = await suite(name);
  writeFileSync(join(out, file), JSON.stringify(v, null, 1) + "\n");
  console.log(`${file}: ${v.messages.length} messages, ${v.key_packages.length} key packages`);
}
