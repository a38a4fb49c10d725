// Package mlsframe builds MLS (RFC 9420) messages whose public framing is
// valid and whose cryptographic fields (keys, ciphertexts, signatures,
// tags) are random bytes, for tests and benchmarks of the node's Delivery
// Service. The node parses framing and never checks cryptography, so this
// is all it needs to see; nothing built here would pass a client's
// verification.
//
// Every function returns a whole MLSMessage, as clients send it.
package mlsframe

import (
	"crypto/rand"
	"encoding/binary"
	"time"

	"relais/server/mls"
)

// Wire formats, content types and sender types used below (RFC 9420 §6).
const (
	wirePublic     = 1
	wirePrivate    = 2
	wireWelcome    = 3
	wireGroupInfo  = 4
	wireKeyPackage = 5

	contentApplication = 1
	contentProposal    = 2
	contentCommit      = 3

	senderMember          = 1
	senderNewMemberCommit = 4

	credentialBasic = 1
)

// enc appends the TLS presentation language of RFC 9420.
type enc []byte

func (e enc) u8(v uint8) enc   { return append(e, v) }
func (e enc) u16(v uint16) enc { return binary.BigEndian.AppendUint16(e, v) }
func (e enc) u32(v uint32) enc { return binary.BigEndian.AppendUint32(e, v) }
func (e enc) u64(v uint64) enc { return binary.BigEndian.AppendUint64(e, v) }

// vec appends b as an opaque<V>: its length as a minimal variable-length
// integer (RFC 9420 §2.1.2), then b.
func (e enc) vec(b []byte) enc {
	switch n := len(b); {
	case n < 1<<6:
		e = append(e, byte(n))
	case n < 1<<14:
		e = append(e, 0x40|byte(n>>8), byte(n))
	default:
		e = append(e, 0x80|byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(e, b...)
}

// Random returns n random bytes.
func Random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// SignatureKey returns a random 32-byte stand-in for an Ed25519 public
// key, the signature key of both suites Relais uses.
func SignatureKey() []byte { return Random(32) }

// hpkeKeySize is the size of an HPKE public key of a suite: 32 bytes for
// X25519, 1216 for X-Wing.
func hpkeKeySize(suite mls.CipherSuite) int {
	if suite == mls.CipherSuiteXWingAES256GCMSHA512Ed25519 {
		return 1216
	}
	return 32
}

func header(wire uint16) enc { return enc{}.u16(1).u16(wire) }

func capabilities(suite mls.CipherSuite) enc {
	return enc{}.vec(enc{}.u16(1)).vec(enc{}.u16(uint16(suite))).vec(nil).vec(nil).vec(enc{}.u16(credentialBasic))
}

// leafNode encodes a LeafNode with a basic credential. source is 1
// (key_package, with a lifetime) or 3 (commit, with a parent hash).
func leafNode(suite mls.CipherSuite, identity string, sigKey []byte, source uint8, notBefore, notAfter uint64) enc {
	e := enc{}.vec(Random(hpkeKeySize(suite))).vec(sigKey).u16(credentialBasic).vec([]byte(identity))
	e = append(e, capabilities(suite)...).u8(source)
	switch source {
	case 1:
		e = e.u64(notBefore).u64(notAfter)
	case 3:
		e = e.vec(Random(32))
	}
	return e.vec(nil).vec(Random(64))
}

// KeyPackage returns a KeyPackage MLSMessage of a device whose credential
// identity is identity ("<user>/<device>") and signature key sigKey, valid
// from notBefore to notAfter.
func KeyPackage(suite mls.CipherSuite, identity string, sigKey []byte, notBefore, notAfter time.Time) []byte {
	e := header(wireKeyPackage).u16(1).u16(uint16(suite)).vec(Random(hpkeKeySize(suite)))
	e = append(e, leafNode(suite, identity, sigKey, 1, uint64(notBefore.Unix()), uint64(notAfter.Unix()))...)
	return e.vec(nil).vec(Random(64))
}

// ValidKeyPackage is KeyPackage valid from an hour ago for a week.
func ValidKeyPackage(suite mls.CipherSuite, identity string, sigKey []byte) []byte {
	now := time.Now()
	return KeyPackage(suite, identity, sigKey, now.Add(-time.Hour), now.Add(7*24*time.Hour))
}

// KeyPackageRef returns the KeyPackageRef of a KeyPackage MLSMessage.
func KeyPackageRef(kp []byte) []byte {
	p, err := mls.ParseKeyPackage(kp)
	if err != nil {
		panic("mlsframe: " + err.Error())
	}
	return p.Ref
}

func framed(wire uint16, group string, epoch uint64) enc {
	return header(wire).vec([]byte(group)).u64(epoch)
}

// PrivateCommit returns a commit of a group at epoch, framed as a
// PrivateMessage (ts-mls' default for commits).
func PrivateCommit(group string, epoch uint64) []byte {
	return private(group, epoch, contentCommit, Random(200))
}

// Application returns an application message of a group at epoch carrying
// ciphertext as its (opaque) ciphertext.
func Application(group string, epoch uint64, ciphertext []byte) []byte {
	return private(group, epoch, contentApplication, ciphertext)
}

// PrivateProposal returns a proposal framed as a PrivateMessage.
func PrivateProposal(group string, epoch uint64) []byte {
	return private(group, epoch, contentProposal, Random(100))
}

func private(group string, epoch uint64, content uint8, ciphertext []byte) []byte {
	return framed(wirePrivate, group, epoch).u8(content).vec(nil).vec(Random(32)).vec(ciphertext)
}

// PublicCommit returns an empty commit (no proposals, no path) by the
// member at leaf, framed as a PublicMessage.
func PublicCommit(group string, epoch uint64, leaf uint32) []byte {
	e := framed(wirePublic, group, epoch).u8(senderMember).u32(leaf).vec(nil).u8(contentCommit)
	e = e.vec(nil).u8(0) // proposals, no path
	return e.vec(Random(64)).vec(Random(32)).vec(Random(32))
}

// ExternalCommit returns the commit of a device joining a group at epoch
// through its GroupInfo (sender new_member_commit, an ExternalInit
// proposal and an UpdatePath whose leaf carries the joiner's credential).
func ExternalCommit(suite mls.CipherSuite, group string, epoch uint64, identity string, sigKey []byte) []byte {
	e := framed(wirePublic, group, epoch).u8(senderNewMemberCommit).vec(nil).u8(contentCommit)
	externalInit := enc{}.u8(1).u16(uint16(mls.ProposalExternalInit)).vec(Random(hpkeKeySize(suite)))
	e = e.vec(externalInit).u8(1)
	e = append(e, leafNode(suite, identity, sigKey, 3, 0, 0)...)
	e = e.vec(nil) // no other path nodes
	return e.vec(Random(64)).vec(Random(32))
}

// PublicProposal returns a Remove proposal by the member at leaf, framed
// as a PublicMessage.
func PublicProposal(group string, epoch uint64, leaf uint32) []byte {
	e := framed(wirePublic, group, epoch).u8(senderMember).u32(leaf).vec(nil).u8(contentProposal)
	e = e.u16(uint16(mls.ProposalRemove)).u32(leaf + 1)
	return e.vec(Random(64)).vec(Random(32))
}

// GroupInfo returns a GroupInfo of a group at epoch.
func GroupInfo(suite mls.CipherSuite, group string, epoch uint64) []byte {
	e := header(wireGroupInfo).u16(1).u16(uint16(suite)).vec([]byte(group)).u64(epoch)
	e = e.vec(Random(32)).vec(Random(32)).vec(nil)      // tree hash, transcript hash, context extensions
	ext := enc{}.u16(4).vec(Random(hpkeKeySize(suite))) // external_pub
	return e.vec(ext).vec(Random(32)).u32(0).vec(Random(64))
}

// Welcome returns a Welcome in suite for the KeyPackages named by refs.
func Welcome(suite mls.CipherSuite, refs ...[]byte) []byte {
	var secrets enc
	for _, ref := range refs {
		secrets = secrets.vec(ref).vec(Random(hpkeKeySize(suite))).vec(Random(64))
	}
	return header(wireWelcome).u16(uint16(suite)).vec(secrets).vec(Random(300))
}

// Ciphertext returns the ciphertext field of a PrivateMessage (what
// Application was given), nil if msg is not one.
func Ciphertext(msg []byte) []byte {
	m, err := mls.ParseMessage(msg)
	if err != nil || m.WireFormat != mls.WireFormatPrivateMessage {
		return nil
	}
	// The ciphertext is the last field: skip to it from the end of the
	// authenticated data, over the sender data.
	_, rest := readVec(afterAuthenticatedData(msg)) // encrypted_sender_data
	ct, _ := readVec(rest)
	return ct
}

// afterAuthenticatedData returns what follows the authenticated data of a
// well-formed PrivateMessage.
func afterAuthenticatedData(msg []byte) []byte {
	// version, wire format, group id, epoch, content type, then the
	// authenticated data vector.
	rest := msg[4:]
	_, rest = readVec(rest)
	rest = rest[8+1:]
	_, rest = readVec(rest)
	return rest
}

// readVec reads an opaque<V> from the front of b.
func readVec(b []byte) (v, rest []byte) {
	var n, size int
	switch b[0] >> 6 {
	case 0:
		n, size = int(b[0]), 1
	case 1:
		n, size = int(b[0]&0x3f)<<8|int(b[1]), 2
	default:
		n, size = int(b[0]&0x3f)<<24|int(b[1])<<16|int(b[2])<<8|int(b[3]), 4
	}
	return b[size : size+n], b[size+n:]
}
