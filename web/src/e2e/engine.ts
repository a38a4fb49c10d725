// The MLS engine: a thin layer over ts-mls (RFC 9420) with the choices of
// Relais made once — cipher suites, credentials "<user>/<device>",
// KeyPackage lifetimes, commits that carry the ratchet tree in their
// Welcome and GroupInfo — and nothing else. No I/O, no storage: the
// functions take a group state and return the next one, so the same code
// runs in the browser, in the unit tests and in scripts/mls-bench.mjs.
//
// Signature keys are non-extractable WebCrypto keys. ts-mls wants the
// private signature key as bytes: it gets a 16-byte handle instead, which
// the signature implementation below maps back to the CryptoKey (see
// registerSigner). HPKE private keys and epoch secrets are bytes in
// ts-mls' group state; the caller encrypts that state at rest.

import {
  ciphersuites,
  createApplicationMessage,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPubAndRatchetTree,
  decodeGroupState,
  decodeMlsMessage,
  defaultCapabilities,
  defaultCryptoProvider,
  emptyPskIndex,
  encodeGroupState,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  joinGroup,
  joinGroupExternal,
  mlsExporter,
  processPrivateMessage,
  processPublicMessage,
} from 'ts-mls';
import type {
  CiphersuiteImpl,
  CiphersuiteName,
  ClientConfig,
  ClientState,
  GroupInfo,
  KeyPackage,
  PrivateKeyPackage,
  PrivateMessage,
  Proposal,
  PublicMessage,
  Welcome,
} from 'ts-mls';
import { defaultClientConfig as tsmlsClientConfig } from 'ts-mls/clientConfig.js';
import { ratchetTreeFromExtension } from 'ts-mls/groupInfo.js';
import { makeKeyPackageRef } from 'ts-mls/keyPackage.js';
import { decryptSenderData } from 'ts-mls/privateMessage.js';

/** The cipher suites Relais speaks (PROTOCOL.md): 83 is the hybrid
 * post-quantum X-Wing suite, 1 the classical one. */
export type SuiteID = 1 | 83;
export const SUITE_XWING: SuiteID = 83;
export const SUITE_CLASSIC: SuiteID = 1;
/** DEFAULT_SUITE is the suite of new groups and KeyPackages; web/ENCRYPTION.md
 * has the figures behind the choice. */
export const DEFAULT_SUITE: SuiteID = SUITE_XWING;

const suiteNames: Record<SuiteID, CiphersuiteName> = {
  1: 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519',
  83: 'MLS_256_XWING_AES256GCM_SHA512_Ed25519',
};

/** KEY_PACKAGE_DAYS is the lifetime of a KeyPackage (the node allows 92
 * days, ts-mls one month). */
export const KEY_PACKAGE_DAYS = 28;

/** A Signer is a device's signature key pair: the public key, and the
 * handle that stands for the non-extractable private key. */
export interface Signer {
  pub: Uint8Array;
  handle: Uint8Array;
}

const HANDLE_TAG = new TextEncoder().encode('relais-sig:');
const signers = new Map<string, CryptoKey>();

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

function isHandle(b: Uint8Array): boolean {
  if (b.length !== HANDLE_TAG.length + 8) return false;
  for (let i = 0; i < HANDLE_TAG.length; i++) if (b[i] !== HANDLE_TAG[i]) return false;
  return true;
}

/** registerSigner makes a private key usable through its handle. */
export function registerSigner(handle: Uint8Array, key: CryptoKey): void {
  signers.set(hex(handle), key);
}

/** newSigner generates an Ed25519 key pair whose private key cannot be
 * exported, registers it, and returns it with the CryptoKey to store. */
export async function newSigner(): Promise<Signer & { key: CryptoKey }> {
  const kp = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey));
  const handle = new Uint8Array(HANDLE_TAG.length + 8);
  handle.set(HANDLE_TAG);
  crypto.getRandomValues(handle.subarray(HANDLE_TAG.length));
  registerSigner(handle, kp.privateKey);
  return { pub, handle, key: kp.privateKey };
}

const impls = new Map<SuiteID, Promise<CiphersuiteImpl>>();

/** suite returns the ts-mls implementation of a suite, whose signatures
 * go through registered non-extractable keys. */
export function suite(id: SuiteID): Promise<CiphersuiteImpl> {
  let p = impls.get(id);
  if (!p) {
    p = (async () => {
      const cs = await defaultCryptoProvider.getCiphersuiteImpl(getCiphersuiteFromName(suiteNames[id]));
      const plain = cs.signature;
      return {
        ...cs,
        signature: {
          ...plain,
          async sign(signKey: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
            if (!isHandle(signKey)) return plain.sign(signKey, message);
            const key = signers.get(hex(signKey));
            if (!key) throw new Error('signature key not loaded');
            return new Uint8Array(await crypto.subtle.sign('Ed25519', key, message as BufferSource));
          },
        },
      };
    })();
    impls.set(id, p);
  }
  return p;
}

export function suiteOf(name: CiphersuiteName): SuiteID {
  const id = ciphersuites[name];
  if (id !== 1 && id !== 83) throw new Error('cipher suite ' + name + ' is not one of Relais');
  return id;
}

/** identity is a device's credential identity (PROTOCOL.md). */
export function identity(user: string, device: string): string {
  return user + '/' + device;
}

const dec = new TextDecoder();
const enc = new TextEncoder();

/** parseIdentity splits "<user>/<device>"; null if it is not one. */
export function parseIdentity(id: string): { user: string; device: string } | null {
  const m = /^(u-[a-z0-9]+-[a-z0-9]+)\/(d-[a-z0-9]+)$/.exec(id);
  return m ? { user: m[1], device: m[2] } : null;
}

/** Checks a member's credential (identity and signature key) during MLS
 * processing: false refuses the message that brings it. */
export type CredentialCheck = (identity: string, key: Uint8Array) => Promise<boolean>;

/** The client configuration of every group. Calls' signals are MLS
 * application messages that the node relays without storing, so a device
 * offline during calls finds the senders' ratchets moved on by their
 * signals: it may skip up to 2000 generations (ts-mls' default, 200, is a
 * few dozen calls), at a cost of microseconds each. */
const defaultClientConfig: ClientConfig = {
  ...tsmlsClientConfig,
  keyRetentionConfig: { ...tsmlsClientConfig.keyRetentionConfig, maximumForwardRatchetSteps: 2000 },
};

function config(check: CredentialCheck): ClientConfig {
  return {
    ...defaultClientConfig,
    authService: {
      async validateCredential(c, key) {
        if (c.credentialType !== 'basic') return false;
        return check(dec.decode(c.identity), key);
      },
    },
  };
}

const acceptAny: CredentialCheck = async () => true;

// Key packages.

export interface NewKeyPackage {
  public: KeyPackage;
  private: PrivateKeyPackage;
  /** The KeyPackage as an MLSMessage, as the node wants it. */
  message: Uint8Array;
  ref: Uint8Array;
}

export async function newKeyPackage(id: SuiteID, ident: string, signer: Signer, days = KEY_PACKAGE_DAYS): Promise<NewKeyPackage> {
  const cs = await suite(id);
  const now = BigInt(Math.floor(Date.now() / 1000));
  const lifetime = { notBefore: now - 600n, notAfter: now + BigInt(days) * 86400n };
  const kp = await generateKeyPackageWithKey(
    { credentialType: 'basic', identity: enc.encode(ident) },
    defaultCapabilities(),
    lifetime,
    [],
    { signKey: signer.handle, publicKey: signer.pub },
    cs,
  );
  const message = encodeMlsMessage({ version: 'mls10', wireformat: 'mls_key_package', keyPackage: kp.publicPackage });
  return { public: kp.publicPackage, private: kp.privatePackage, message, ref: await makeKeyPackageRef(kp.publicPackage, cs.hash) };
}

/** decodeKeyPackage reads a KeyPackage MLSMessage (from claim_keys). */
export function decodeKeyPackage(b: Uint8Array): KeyPackage {
  const m = decodeMlsMessage(b, 0)?.[0];
  if (!m || m.wireformat !== 'mls_key_package') throw new Error('not a KeyPackage');
  return m.keyPackage;
}

export function keyPackageIdentity(kp: KeyPackage): string {
  const c = kp.leafNode.credential;
  return c.credentialType === 'basic' ? dec.decode(c.identity) : '';
}

// Group state.

/** Group is a group state with its suite. */
export interface Group {
  suite: SuiteID;
  state: ClientState;
}

export function encodeGroup(g: Group): Uint8Array {
  return encodeGroupState(g.state);
}

export function decodeGroup(id: SuiteID, b: Uint8Array): Group {
  const s = decodeGroupState(b, 0)?.[0];
  if (!s) throw new Error('corrupt group state');
  return { suite: id, state: { ...s, clientConfig: defaultClientConfig } };
}

/** groupIdOf is the group's id: the room id for Relais. */
export function groupIdOf(g: Group): string {
  return dec.decode(g.state.groupContext.groupId);
}

export function epochOf(g: Group): bigint {
  return g.state.groupContext.epoch;
}

export function isActive(g: Group): boolean {
  return g.state.groupActiveState.kind === 'active';
}

/** A member of a group: its leaf index, credential identity and signature
 * key. */
export interface Member {
  leaf: number;
  identity: string;
  key: Uint8Array; // signature key
  hpke: Uint8Array; // the leaf's encryption key (changes when it rejoins)
}

function leaves(tree: ClientState['ratchetTree']): Member[] {
  const out: Member[] = [];
  tree.forEach((n, i) => {
    if (n && n.nodeType === 'leaf' && n.leaf.credential.credentialType === 'basic')
      out.push({ leaf: i / 2, identity: dec.decode(n.leaf.credential.identity), key: n.leaf.signaturePublicKey, hpke: n.leaf.hpkePublicKey });
  });
  return out;
}

export function members(g: Group): Member[] {
  return leaves(g.state.ratchetTree);
}

export function ownLeaf(g: Group): number {
  return g.state.privatePath.leafIndex;
}

export async function newGroup(id: SuiteID, groupId: string, kp: NewKeyPackage): Promise<Group> {
  const cs = await suite(id);
  const state = await createGroup(enc.encode(groupId), kp.public, kp.private, [], cs);
  return { suite: id, state };
}

function wrap(m: Parameters<typeof encodeMlsMessage>[0]): Uint8Array {
  return encodeMlsMessage(m);
}

export interface Committed {
  group: Group;
  commit: Uint8Array;
  welcome?: Uint8Array;
  groupInfo: Uint8Array;
}

async function groupInfoOf(g: Group): Promise<Uint8Array> {
  const cs = await suite(g.suite);
  const gi = await createGroupInfoWithExternalPubAndRatchetTree(g.state, [], cs);
  return wrap({ version: 'mls10', wireformat: 'mls_group_info', groupInfo: gi });
}

/** commit makes a commit adding KeyPackages and removing leaves, with its
 * Welcome (when it adds) and the GroupInfo of the epoch it makes. */
export async function commit(g: Group, adds: KeyPackage[], removes: number[]): Promise<Committed> {
  const cs = await suite(g.suite);
  const proposals: Proposal[] = [
    ...removes.map((removed): Proposal => ({ proposalType: 'remove', remove: { removed } })),
    ...adds.map((keyPackage): Proposal => ({ proposalType: 'add', add: { keyPackage } })),
  ];
  const r = await createCommit({ state: g.state, cipherSuite: cs }, { extraProposals: proposals, ratchetTreeExtension: true });
  const next = { suite: g.suite, state: r.newState };
  return {
    group: next,
    commit: encodeMlsMessage(r.commit),
    welcome: r.welcome ? wrap({ version: 'mls10', wireformat: 'mls_welcome', welcome: r.welcome }) : undefined,
    groupInfo: await groupInfoOf(next),
  };
}

/** welcomeRefs lists the KeyPackageRefs a Welcome is for, and its suite. */
export function readWelcome(b: Uint8Array): { welcome: Welcome; suite: SuiteID; refs: Uint8Array[] } {
  const m = decodeMlsMessage(b, 0)?.[0];
  if (!m || m.wireformat !== 'mls_welcome') throw new Error('not a Welcome');
  return { welcome: m.welcome, suite: suiteOf(m.welcome.cipherSuite), refs: m.welcome.secrets.map((s) => s.newMember) };
}

/** join enters a group from a Welcome, checking every member's credential. */
export async function join(welcome: Uint8Array, kp: { public: KeyPackage; private: PrivateKeyPackage }, check: CredentialCheck): Promise<Group> {
  const w = readWelcome(welcome);
  const cs = await suite(w.suite);
  const state = await joinGroup(w.welcome, kp.public, kp.private, emptyPskIndex, cs, undefined, undefined, config(check));
  return { suite: w.suite, state: { ...state, clientConfig: defaultClientConfig } };
}

export function readGroupInfo(b: Uint8Array): { groupInfo: GroupInfo; suite: SuiteID; epoch: bigint; groupId: string } {
  const m = decodeMlsMessage(b, 0)?.[0];
  if (!m || m.wireformat !== 'mls_group_info') throw new Error('not a GroupInfo');
  const gc = m.groupInfo.groupContext;
  return { groupInfo: m.groupInfo, suite: suiteOf(gc.cipherSuite), epoch: gc.epoch, groupId: dec.decode(gc.groupId) };
}

/** externalJoin makes the commit by which a device joins a group from its
 * GroupInfo; ad (authenticated, in clear) names the device for people. A
 * device whose signature key is already in the group takes its own place
 * again (a resync: its old leaf is removed in the same commit). */
export async function externalJoin(groupInfo: Uint8Array, kp: NewKeyPackage, check: CredentialCheck, ad = new Uint8Array()): Promise<Committed> {
  const gi = readGroupInfo(groupInfo);
  const cs = await suite(gi.suite);
  const tree = ratchetTreeFromExtension(gi.groupInfo);
  const resync = !!tree && leaves(tree).some((m) => equal(m.key, kp.public.leafNode.signaturePublicKey));
  const r = await joinGroupExternal(gi.groupInfo, kp.public, kp.private, resync, cs, undefined, config(check), ad);
  const next = { suite: gi.suite, state: { ...r.newState, clientConfig: defaultClientConfig } };
  return {
    group: next,
    commit: wrap({ version: 'mls10', wireformat: 'mls_public_message', publicMessage: r.publicMessage }),
    groupInfo: await groupInfoOf(next),
  };
}

/** Incoming is an MLS message of the room's log, decoded. */
export type Incoming =
  | { kind: 'private'; msg: PrivateMessage; epoch: bigint; contentType: string }
  | { kind: 'public'; msg: PublicMessage; epoch: bigint; contentType: string; senderType: string; ad: Uint8Array };

export function readMessage(b: Uint8Array): Incoming {
  const m = decodeMlsMessage(b, 0)?.[0];
  if (m?.wireformat === 'mls_private_message') return { kind: 'private', msg: m.privateMessage, epoch: m.privateMessage.epoch, contentType: m.privateMessage.contentType };
  if (m?.wireformat === 'mls_public_message') {
    const c = m.publicMessage.content;
    return { kind: 'public', msg: m.publicMessage, epoch: c.epoch, contentType: c.contentType, senderType: c.sender.senderType, ad: c.authenticatedData };
  }
  throw new Error('not an MLS message of a group');
}

/** CommitResult says what a processed commit changed. */
export interface CommitResult {
  group: Group;
  /** The committer's identity; for an external commit, the joiner's. */
  by: string;
  external: boolean;
  added: string[];
  removed: string[];
  /** Authenticated data of a public commit (an external joiner's name). */
  ad: Uint8Array;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** processCommit applies someone else's commit. It throws when the
 * commit does not verify, is not for this epoch, or brings a credential
 * that check refuses. */
export async function processCommit(g: Group, b: Uint8Array, check: CredentialCheck): Promise<CommitResult> {
  const cs = await suite(g.suite);
  const m = readMessage(b);
  if (m.contentType !== 'commit') throw new Error('not a commit');
  const before = members(g);
  const state = { ...g.state, clientConfig: config(check) };
  let committer: number | undefined;
  let proposals: Proposal[] = [];
  const cb = (i: { kind: string; senderLeafIndex?: number; proposals?: { proposal: Proposal }[] }) => {
    if (i.kind !== 'commit') return 'reject' as const;
    committer = i.senderLeafIndex;
    proposals = (i.proposals ?? []).map((p) => p.proposal);
    return 'accept' as const;
  };
  let next: ClientState;
  let external = false;
  let ad: Uint8Array = new Uint8Array();
  let joiner = '';
  if (m.kind === 'private') {
    const r = await processPrivateMessage(state, m.msg, emptyPskIndex, cs, cb);
    if (r.kind !== 'newState' || r.actionTaken !== 'accept') throw new Error('not a commit');
    next = r.newState;
  } else {
    external = m.senderType === 'new_member_commit';
    if (!external && m.senderType !== 'member') throw new Error('a commit from a sender who is not a member');
    ad = m.ad;
    const c = m.msg.content;
    if (external && c.contentType === 'commit' && c.commit.path?.leafNode.credential.credentialType === 'basic') joiner = dec.decode(c.commit.path.leafNode.credential.identity);
    const r = await processPublicMessage(state, m.msg, emptyPskIndex, cs, cb);
    if (r.actionTaken !== 'accept') throw new Error('commit refused');
    next = r.newState;
  }
  const group = { suite: g.suite, state: { ...next, clientConfig: defaultClientConfig } };
  const added: string[] = [];
  const removed: string[] = [];
  for (const p of proposals) {
    if (p.proposalType === 'add') added.push(keyPackageIdentity(p.add.keyPackage));
    if (p.proposalType === 'remove') removed.push(before.find((x) => x.leaf === p.remove.removed)?.identity ?? '');
  }
  if (external && joiner) added.push(joiner);
  const by = committer !== undefined ? (before.find((x) => x.leaf === committer)?.identity ?? '') : joiner;
  return { group, by, external, added, removed, ad };
}

/** exporter derives a secret of the group's current epoch (RFC 9420
 * MLS-Exporter): every member computes the same, nobody outside the
 * epoch can. */
export async function exporter(g: Group, label: string, context: Uint8Array, length: number): Promise<Uint8Array> {
  return mlsExporter(g.state.keySchedule.exporterSecret, label, context, length, await suite(g.suite));
}

/** encrypt makes an application message. */
export async function encrypt(g: Group, plaintext: Uint8Array): Promise<{ group: Group; message: Uint8Array }> {
  const cs = await suite(g.suite);
  const r = await createApplicationMessage(g.state, plaintext, cs);
  return {
    group: { suite: g.suite, state: r.newState },
    message: wrap({ version: 'mls10', wireformat: 'mls_private_message', privateMessage: r.privateMessage }),
  };
}

/** decrypt opens an application message and says who sent it (the
 * credential identity of its signer). */
export async function decrypt(g: Group, b: Uint8Array): Promise<{ group: Group; plaintext: Uint8Array; sender: string }> {
  const cs = await suite(g.suite);
  const m = readMessage(b);
  if (m.kind !== 'private' || m.contentType !== 'application') throw new Error('not an application message');
  const st = g.state;
  const old = m.epoch < st.groupContext.epoch ? st.historicalReceiverData.get(m.epoch) : undefined;
  const secret = old ? old.senderDataSecret : st.keySchedule.senderDataSecret;
  const tree = old ? old.ratchetTree : st.ratchetTree;
  const sd = await decryptSenderData(m.msg, secret, cs);
  const r = await processPrivateMessage(st, m.msg, emptyPskIndex, cs);
  if (r.kind !== 'applicationMessage') throw new Error('not an application message');
  const node = sd ? tree[sd.leafIndex * 2] : undefined;
  const sender = node && node.nodeType === 'leaf' && node.leaf.credential.credentialType === 'basic' ? dec.decode(node.leaf.credential.identity) : '';
  return { group: { suite: g.suite, state: r.newState }, plaintext: r.message, sender };
}

export { acceptAny };
