package mls

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

// enc builds TLS-encoded test inputs.
type enc []byte

func (e enc) u8(v uint8) enc   { return append(e, v) }
func (e enc) u16(v uint16) enc { return binary.BigEndian.AppendUint16(e, v) }
func (e enc) u32(v uint32) enc { return binary.BigEndian.AppendUint32(e, v) }
func (e enc) u64(v uint64) enc { return binary.BigEndian.AppendUint64(e, v) }
func (e enc) raw(b ...byte) enc {
	return append(e, b...)
}
func (e enc) vec(b []byte) enc {
	var buf [4]byte
	return append(append(e, putVarint(buf[:], len(b))...), b...)
}
func (e enc) str(s string) enc { return e.vec([]byte(s)) }

// Hand-built valid structures, to be broken one field at a time.

func header(wf WireFormat) enc { return enc{}.u16(1).u16(uint16(wf)) }

func framedHeader(wf WireFormat, sender enc) enc {
	return header(wf).str("room").u64(7).raw(sender...).str("ad")
}

var memberSender = enc{}.u8(uint8(SenderMember)).u32(2)

// removeProposal is a Remove proposal of leaf 1.
var removeProposal = enc{}.u16(uint16(ProposalRemove)).u32(1)

func publicProposal(sender enc, proposal enc) []byte {
	e := framedHeader(WireFormatPublicMessage, sender).u8(uint8(ContentProposal)).raw(proposal...).str("sig")
	if sender[0] == uint8(SenderMember) {
		e = e.str("tag")
	}
	return e
}

// capabilities encodes a Capabilities with one value in each list.
func capabilities() enc {
	two := enc{}.u16(1)
	return enc{}.vec(two).vec(two).vec(nil).vec(nil).vec(two)
}

// leafNodeKP encodes a key_package LeafNode with the given credential.
func leafNodeKP(credential enc, source uint8) enc {
	e := enc{}.str("enc-key").str("sig-key").raw(credential...).raw(capabilities()...).u8(source)
	switch source {
	case sourceKeyPackage:
		e = e.u64(100).u64(200)
	case sourceCommit:
		e = e.str("parent-hash")
	}
	return e.vec(enc{}.u16(0x0a0a).str("grease")).str("leaf-sig")
}

var basicCredential = enc{}.u16(uint16(CredentialBasic)).str("alice@example.fr")

func keyPackageBody(version, suite uint16, leaf enc) enc {
	return enc{}.u16(version).u16(suite).str("init-key").raw(leaf...).vec(nil).str("kp-sig")
}

func keyPackageMsg(body enc) []byte { return header(WireFormatKeyPackage).raw(body...) }

func validKeyPackage() []byte {
	return keyPackageMsg(keyPackageBody(1, 1, leafNodeKP(basicCredential, sourceKeyPackage)))
}

func publicCommit(sender enc, commit enc) []byte {
	e := framedHeader(WireFormatPublicMessage, sender).u8(uint8(ContentCommit)).raw(commit...).str("sig").str("confirmation")
	if sender[0] == uint8(SenderMember) {
		e = e.str("tag")
	}
	return e
}

func commitWithPath(presence uint8) enc {
	add := enc{}.u8(1).u16(uint16(ProposalAdd)).raw(keyPackageBody(1, 1, leafNodeKP(basicCredential, sourceKeyPackage))...)
	ref := enc{}.u8(2).str("proposal-ref")
	e := enc{}.vec(append(add, ref...)).u8(presence)
	if presence == 1 {
		node := enc{}.str("node-key").vec(enc{}.str("kem").str("ct"))
		e = e.raw(leafNodeKP(basicCredential, sourceCommit)...).vec(node)
	}
	return e
}

func privateMessage(ct uint8) []byte {
	return header(WireFormatPrivateMessage).str("room").u64(7).u8(ct).str("ad").str("sender-data").str("ciphertext")
}

func welcome(refs ...string) []byte {
	var secrets enc
	for _, r := range refs {
		secrets = secrets.str(r).str("kem").str("ct")
	}
	return header(WireFormatWelcome).u16(1).vec(secrets).str("encrypted-group-info")
}

func TestHandBuiltValid(t *testing.T) {
	for name, b := range map[string][]byte{
		"public remove":          publicProposal(memberSender, removeProposal),
		"public commit":          publicCommit(memberSender, commitWithPath(1)),
		"public commit, no path": publicCommit(memberSender, commitWithPath(0)),
		"external remove":        publicProposal(enc{}.u8(uint8(SenderExternal)).u32(0), removeProposal),
		"new member add":         publicProposal(enc{}.u8(uint8(SenderNewMemberProposal)), enc{}.u16(1).raw(keyPackageBody(1, 1, leafNodeKP(basicCredential, sourceKeyPackage))...)),
		"external commit":        publicCommit(enc{}.u8(uint8(SenderNewMemberCommit)), commitWithPath(1)),
		"update":                 publicProposal(memberSender, enc{}.u16(uint16(ProposalUpdate)).raw(leafNodeKP(basicCredential, sourceUpdate)...)),
		"psk external":           publicProposal(memberSender, enc{}.u16(uint16(ProposalPSK)).u8(1).str("id").str("nonce")),
		"psk resumption":         publicProposal(memberSender, enc{}.u16(uint16(ProposalPSK)).u8(2).u8(1).str("group").u64(3).str("nonce")),
		"reinit":                 publicProposal(memberSender, enc{}.u16(uint16(ProposalReInit)).str("group").u16(1).u16(83).vec(nil)),
		"external init":          publicProposal(memberSender, enc{}.u16(uint16(ProposalExternalInit)).str("kem")),
		"group context ext":      publicProposal(memberSender, enc{}.u16(uint16(ProposalGroupContextExtensions)).vec(enc{}.u16(5).str("x"))),
		"private":                privateMessage(1),
		"welcome":                welcome("ref-1", "ref-2"),
		"welcome, nobody":        welcome(),
		"key package":            validKeyPackage(),
		"x509 key package": keyPackageMsg(keyPackageBody(1, 1, leafNodeKP(
			enc{}.u16(uint16(CredentialX509)).vec(enc{}.str("cert-1").str("cert-2")), sourceKeyPackage))),
	} {
		t.Run(name, func(t *testing.T) {
			m, err := ParseMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if name == "welcome" && (len(m.KeyPackageRefs) != 2 || string(m.KeyPackageRefs[1]) != "ref-2") {
				t.Errorf("KeyPackageRefs = %q", m.KeyPackageRefs)
			}
			if name == "x509 key package" {
				kp := m.KeyPackage
				if kp.CredentialType != CredentialX509 || len(kp.Certificates) != 2 || string(kp.Certificates[1]) != "cert-2" || kp.CredentialIdentity != nil {
					t.Errorf("x509 credential: %+v", kp)
				}
			}
			if m.WireFormat == WireFormatPublicMessage && (string(m.GroupID) != "room" || m.Epoch != 7 || string(m.AuthenticatedData) != "ad") {
				t.Errorf("framing: %+v", m)
			}
		})
	}
}

// replaceVarint re-encodes the one-byte length at b[off] as a non-minimal
// varint of size bytes.
func replaceVarint(b []byte, off, size int) []byte {
	n := b[off]
	var v []byte
	switch size {
	case 2:
		v = []byte{0x40, n}
	case 4:
		v = []byte{0x80, 0, 0, n}
	}
	out := append([]byte{}, b[:off]...)
	out = append(out, v...)
	return append(out, b[off+1:]...)
}

func TestMalformed(t *testing.T) {
	vectors := loadVectors(t)
	app := findMessage(t, vectors["suite1.json"], "application_alice")
	kpX := findMessage(t, vectors["suite83.json"], "key_package_bob")
	welcomeMsg := findMessage(t, vectors["suite1.json"], "welcome_bob")
	withSuite := func(b []byte, suite uint16) []byte {
		out := bytes.Clone(b)
		binary.BigEndian.PutUint16(out[6:], suite)
		return out
	}

	big := make([]byte, DefaultMaxMessageSize+1)
	copy(big, app)
	bigKP := keyPackageMsg(keyPackageBody(1, 1, leafNodeKP(enc{}.u16(1).vec(make([]byte, 70_000)), sourceKeyPackage)))

	tests := []struct {
		name   string
		parse  func([]byte) error
		in     []byte
		code   Code
		field  string // expected Error.Field, if not empty
		reason error  // expected wrapped reason, if not nil
		text   string // expected substring of the message, if not empty
	}{
		{name: "empty", in: nil, code: CodeMalformed, field: "mls_message.version", reason: errTruncated},
		{name: "version 2", in: enc{}.u16(2).u16(2), code: CodeUnsupportedVersion, field: "mls_message.version"},
		{name: "version 0", in: append(enc{}.u16(0), app[2:]...), code: CodeUnsupportedVersion},
		{name: "wire format 0", in: enc{}.u16(1).u16(0), code: CodeUnsupportedWireFormat, field: "mls_message.wire_format"},
		{name: "wire format 6", in: append(enc{}.u16(1).u16(6), app[4:]...), code: CodeUnsupportedWireFormat},
		{name: "wire format 0xffff", in: enc{}.u16(1).u16(0xffff), code: CodeUnsupportedWireFormat},
		{name: "trailing byte", in: append(bytes.Clone(app), 0), code: CodeMalformed, field: "mls_message", reason: errTrailingBytes},
		{name: "trailing bytes after key package", in: append(bytes.Clone(kpX), 1, 2, 3), code: CodeMalformed, field: "mls_message", reason: errTrailingBytes},
		{name: "non-minimal 2-byte length", in: replaceVarint(app, 4, 2), code: CodeMalformed, field: "private_message.group_id", reason: errNonMinimal},
		{name: "non-minimal 4-byte length", in: replaceVarint(app, 4, 4), code: CodeMalformed, field: "private_message.group_id", reason: errNonMinimal},
		{name: "non-minimal 4-byte length of 16383", in: header(WireFormatPrivateMessage).raw(0x80, 0, 0x3f, 0xff), code: CodeMalformed, reason: errNonMinimal},
		{name: "varint prefix 0b11", in: header(WireFormatPrivateMessage).raw(0xc0, 0, 0, 0, 0, 0, 0, 1), code: CodeMalformed, field: "private_message.group_id", reason: errVarintPrefix},
		{name: "length beyond end", in: header(WireFormatPrivateMessage).raw(0x3f, 'a', 'b'), code: CodeMalformed, field: "private_message.group_id", reason: errBeyondEnd},
		{name: "huge declared length", in: header(WireFormatPrivateMessage).raw(0xbf, 0xff, 0xff, 0xff), code: CodeMalformed, reason: errBeyondEnd},
		{name: "huge declared vector in welcome", in: header(WireFormatWelcome).u16(1).raw(0xbf, 0xff, 0xff, 0xff, 0), code: CodeMalformed, field: "welcome.secrets", reason: errBeyondEnd},
		{name: "oversized input", in: big, code: CodeTooLarge, field: "mls_message"},
		{name: "oversized for a small limit", parse: func(b []byte) error { _, err := Parser{MaxMessageSize: 100}.ParseMessage(b); return err }, in: app, code: CodeTooLarge},
		{name: "oversized key package", parse: func(b []byte) error { _, err := ParseKeyPackage(b); return err }, in: bigKP, code: CodeTooLarge, field: "key_package"},
		{name: "oversized key package in ParseMessage", in: bigKP, code: CodeTooLarge, field: "key_package"},
		{name: "oversized key package for a small limit", parse: func(b []byte) error { _, err := Parser{MaxKeyPackageSize: 1000}.ParseKeyPackage(b); return err }, in: kpX, code: CodeTooLarge},
		{name: "private content type 0", in: privateMessage(0), code: CodeMalformed, field: "private_message.content_type", reason: errBadValue},
		{name: "private content type 4", in: privateMessage(4), code: CodeMalformed, field: "private_message.content_type"},
		{name: "public application", in: framedHeader(WireFormatPublicMessage, memberSender).u8(1).str("hello").str("sig").str("tag"), code: CodeMalformed, field: "public_message.content_type", text: "private_message"},
		{name: "public content type 9", in: framedHeader(WireFormatPublicMessage, memberSender).u8(9), code: CodeMalformed, field: "public_message.content_type"},
		{name: "sender type 0", in: publicProposal(enc{}.u8(0), removeProposal), code: CodeMalformed, field: "public_message.sender.sender_type"},
		{name: "sender type 5", in: publicProposal(enc{}.u8(5), removeProposal), code: CodeMalformed, field: "public_message.sender.sender_type"},
		{name: "truncated leaf index", in: framedHeader(WireFormatPublicMessage, enc{}.u8(1).raw(0, 0))[:20], code: CodeMalformed, field: "public_message.sender.leaf_index", reason: errTruncated},
		{name: "commit from external sender", in: publicCommit(enc{}.u8(uint8(SenderExternal)).u32(0), commitWithPath(0)), code: CodeMalformed, field: "public_message.content_type"},
		{name: "commit from new member proposal", in: publicCommit(enc{}.u8(uint8(SenderNewMemberProposal)), commitWithPath(0)), code: CodeMalformed, field: "public_message.content_type"},
		{name: "proposal from new member commit", in: publicProposal(enc{}.u8(uint8(SenderNewMemberCommit)), removeProposal), code: CodeMalformed, field: "public_message.content_type"},
		{name: "remove from new member", in: publicProposal(enc{}.u8(uint8(SenderNewMemberProposal)), removeProposal), code: CodeMalformed, field: "public_message.proposal.proposal_type"},
		{name: "unknown proposal type", in: publicProposal(memberSender, enc{}.u16(0x0a0a).str("custom")), code: CodeMalformed, field: "public_message.proposal.proposal_type", text: "0x0a0a"},
		{name: "unknown psk type", in: publicProposal(memberSender, enc{}.u16(uint16(ProposalPSK)).u8(3).str("x")), code: CodeMalformed, field: "public_message.proposal.psk.psk.psktype"},
		{name: "missing membership tag", in: publicProposal(memberSender, removeProposal)[:len(publicProposal(memberSender, removeProposal))-4], code: CodeMalformed, field: "public_message.membership_tag", reason: errTruncated},
		{name: "missing confirmation tag", in: framedHeader(WireFormatPublicMessage, enc{}.u8(uint8(SenderNewMemberCommit))).u8(3).raw(commitWithPath(0)...).str("sig"), code: CodeMalformed, field: "public_message.auth.confirmation_tag", reason: errTruncated},
		{name: "commit path presence 2", in: publicCommit(memberSender, commitWithPath(2)), code: CodeMalformed, field: "public_message.commit.path", text: "presence octet 2"},
		{name: "commit path with key_package source", in: publicCommit(memberSender, enc{}.vec(nil).u8(1).raw(leafNodeKP(basicCredential, sourceKeyPackage)...).vec(nil)), code: CodeMalformed, field: "public_message.commit.path.leaf_node.leaf_node_source"},
		{name: "commit proposal-or-ref type 3", in: publicCommit(memberSender, enc{}.vec(enc{}.u8(3).str("x")).u8(0)), code: CodeMalformed, field: "public_message.commit.proposals[0].type"},
		{name: "commit with bad second proposal", in: publicCommit(memberSender, enc{}.vec(enc{}.u8(2).str("ref").u8(1).u16(0x0a0a)).u8(0)), code: CodeMalformed, field: "public_message.commit.proposals[1].proposal.proposal_type"},
		{name: "truncated update path node", in: publicCommit(memberSender, enc{}.vec(nil).u8(1).raw(leafNodeKP(basicCredential, sourceCommit)...).vec(enc{}.str("key").vec(enc{}.str("kem")))), code: CodeMalformed, field: "public_message.commit.path.nodes[0].encrypted_path_secret[0].ciphertext", reason: errTruncated},
		{name: "add with key package version 2", in: publicProposal(memberSender, enc{}.u16(1).raw(keyPackageBody(2, 1, leafNodeKP(basicCredential, sourceKeyPackage))...)), code: CodeUnsupportedVersion, field: "public_message.proposal.add.key_package.version"},
		{name: "welcome truncated secret", in: header(WireFormatWelcome).u16(1).vec(enc{}.str("ref").str("kem")).str("egi"), code: CodeMalformed, field: "welcome.secrets[0].encrypted_group_secrets.ciphertext", reason: errTruncated},
		{name: "welcome without group info", in: welcomeMsg[:len(welcomeMsg)-200], code: CodeMalformed, field: "welcome.encrypted_group_info", reason: errBeyondEnd},
		{name: "key package version 2", in: keyPackageMsg(keyPackageBody(2, 1, leafNodeKP(basicCredential, sourceKeyPackage))), code: CodeUnsupportedVersion, field: "key_package.version"},
		{name: "key package unknown suite", parse: func(b []byte) error { _, err := ParseKeyPackage(b); return err }, in: withSuite(kpX, 0x0a0a), code: CodeUnsupportedCipherSuite, field: "key_package.cipher_suite"},
		{name: "key package unknown suite in ParseMessage", in: withSuite(kpX, 0xf00d), code: CodeUnsupportedCipherSuite},
		{name: "key package with update leaf node", in: keyPackageMsg(keyPackageBody(1, 1, leafNodeKP(basicCredential, sourceUpdate))), code: CodeMalformed, field: "key_package.leaf_node.leaf_node_source"},
		{name: "key package leaf node source 0", in: keyPackageMsg(keyPackageBody(1, 1, leafNodeKP(basicCredential, 0))), code: CodeMalformed, field: "key_package.leaf_node.leaf_node_source"},
		{name: "key package custom credential", in: keyPackageMsg(keyPackageBody(1, 1, leafNodeKP(enc{}.u16(0xf000).str("custom"), sourceKeyPackage))), code: CodeMalformed, field: "key_package.leaf_node.credential.credential_type", text: "unsupported credential type"},
		{name: "key package bad certificate", in: keyPackageMsg(keyPackageBody(1, 1, leafNodeKP(enc{}.u16(2).vec(enc{}.str("cert").raw(0x05, 'x')), sourceKeyPackage))), code: CodeMalformed, field: "key_package.leaf_node.credential.certificates[1].cert_data", reason: errBeyondEnd},
		{name: "key package odd capabilities", in: keyPackageMsg(keyPackageBody(1, 1, enc{}.str("e").str("s").raw(basicCredential...).vec([]byte{0, 1, 0}))), code: CodeMalformed, field: "key_package.leaf_node.capabilities.versions", reason: errBadElements},
		{name: "key package bad extension", in: keyPackageMsg(enc{}.u16(1).u16(1).str("init").raw(leafNodeKP(basicCredential, sourceKeyPackage)...).vec(enc{}.u16(5).str("ok").u16(6)).str("sig")), code: CodeMalformed, field: "key_package.extensions[1].extension_data", reason: errTruncated},
		{name: "ParseKeyPackage of a welcome", parse: func(b []byte) error { _, err := ParseKeyPackage(b); return err }, in: welcomeMsg, code: CodeUnsupportedWireFormat, field: "mls_message.wire_format"},
		{name: "ParseGroupInfo of a key package", parse: func(b []byte) error { _, err := ParseGroupInfo(b); return err }, in: kpX, code: CodeUnsupportedWireFormat},
		{name: "group info version 2", parse: func(b []byte) error { _, err := ParseGroupInfo(b); return err }, in: header(WireFormatGroupInfo).u16(2), code: CodeUnsupportedVersion, field: "group_info.group_context.version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := tt.parse
			if parse == nil {
				parse = func(b []byte) error { _, err := ParseMessage(b); return err }
			}
			err := parse(tt.in)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want an *Error", err, err)
			}
			if e.Code != tt.code {
				t.Errorf("code %s, want %s (%v)", e.Code, tt.code, err)
			}
			if !errors.Is(err, &Error{Code: tt.code}) {
				t.Errorf("errors.Is(%v, sentinel of %s) = false", err, tt.code)
			}
			if tt.field != "" && e.Field != tt.field {
				t.Errorf("field %q, want %q (%v)", e.Field, tt.field, err)
			}
			if tt.reason != nil && !errors.Is(err, tt.reason) {
				t.Errorf("error %v, want reason %v", err, tt.reason)
			}
			if tt.text != "" && !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not contain %q", err, tt.text)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	b := publicProposal(memberSender, removeProposal)
	_, err := ParseMessage(b[:4+5+3]) // in the middle of the epoch
	if got, want := err.Error(), "mls_malformed: public_message.epoch: truncated"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) {
		t.Errorf("errors.Is misclassifies %v", err)
	}
}

// TestTruncatedEverywhere parses every proper prefix of every valid input:
// each must fail as malformed, with a truncation, without panicking.
func TestTruncatedEverywhere(t *testing.T) {
	inputs := allInputs(t)
	for name, b := range map[string][]byte{
		"hand/public commit":  publicCommit(memberSender, commitWithPath(1)),
		"hand/x509":           keyPackageMsg(keyPackageBody(1, 1, leafNodeKP(enc{}.u16(2).vec(enc{}.str("c1").str("c2")), sourceKeyPackage))),
		"hand/psk resumption": publicProposal(memberSender, enc{}.u16(uint16(ProposalPSK)).u8(2).u8(1).str("group").u64(3).str("nonce")),
	} {
		inputs[name] = b
	}
	for name, b := range inputs {
		if _, err := ParseMessage(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := range len(b) {
			_, err := ParseMessage(b[:i])
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s truncated to %d bytes: %v, want %s", name, i, err, CodeMalformed)
			}
			if !errors.Is(err, errTruncated) && !errors.Is(err, errBeyondEnd) {
				t.Fatalf("%s truncated to %d bytes: %v, want a truncation", name, i, err)
			}
		}
	}
}

func TestLifetimeContains(t *testing.T) {
	l := Lifetime{NotBefore: 100, NotAfter: 200}
	for s, want := range map[int64]bool{99: false, 100: true, 150: true, 200: true, 201: false, -5: false} {
		if got := l.Contains(time.Unix(s, 0)); got != want {
			t.Errorf("Contains(%d) = %v, want %v", s, got, want)
		}
	}
	max := Lifetime{NotBefore: 0, NotAfter: 1<<64 - 1}
	if !max.Contains(time.Now()) {
		t.Error("unbounded lifetime does not contain now")
	}
}

func TestNames(t *testing.T) {
	for got, want := range map[string]string{
		WireFormatGroupInfo.String():                    "group_info",
		WireFormat(9).String():                          "wire_format(9)",
		ContentCommit.String():                          "commit",
		SenderNewMemberCommit.String():                  "new_member_commit",
		CipherSuiteXWingAES256GCMSHA512Ed25519.String(): "MLS_256_XWING_AES256GCM_SHA512_Ed25519",
		CipherSuite(0xf00d).String():                    "0xf00d",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}

func TestPutVarint(t *testing.T) {
	var buf [4]byte
	for _, n := range []int{0, 63, 64, 16383, 16384, maxVarint} {
		r := reader{putVarint(buf[:], n)}
		got, err := r.varint("n")
		if err != nil || got != n || r.len() != 0 {
			t.Errorf("round trip of %d: %d, %v", n, got, err)
		}
	}
	// RFC 9420 §2.1.2 examples.
	for in, want := range map[string]int{"\x9d\x7f\x3e\x7d": 494878333, "\x7b\xbd": 15293, "\x25": 37} {
		r := reader{[]byte(in)}
		if got, err := r.varint("n"); err != nil || got != want {
			t.Errorf("%x: %d, %v; want %d", in, got, err, want)
		}
	}
}
