package mls

import (
	"fmt"
)

// mls10 is the only ProtocolVersion (RFC 9420 §6).
const mls10 = 1

// WireFormat says what an MLSMessage carries (RFC 9420 §6).
type WireFormat uint16

// Wire formats.
const (
	WireFormatPublicMessage  WireFormat = 1
	WireFormatPrivateMessage WireFormat = 2
	WireFormatWelcome        WireFormat = 3
	WireFormatGroupInfo      WireFormat = 4
	WireFormatKeyPackage     WireFormat = 5
)

var wireFormatNames = [...]string{"", "public_message", "private_message", "welcome", "group_info", "key_package"}

// String returns the RFC 9420 name without its "mls_" prefix
// ("public_message").
func (w WireFormat) String() string {
	if w > 0 && int(w) < len(wireFormatNames) {
		return wireFormatNames[w]
	}
	return fmt.Sprintf("wire_format(%d)", uint16(w))
}

// ContentType is the type of a framed message's content (RFC 9420 §6).
type ContentType uint8

// Content types.
const (
	ContentApplication ContentType = 1
	ContentProposal    ContentType = 2
	ContentCommit      ContentType = 3
)

var contentTypeNames = [...]string{"", "application", "proposal", "commit"}

// String returns the RFC 9420 name ("commit").
func (c ContentType) String() string {
	if c > 0 && int(c) < len(contentTypeNames) {
		return contentTypeNames[c]
	}
	return fmt.Sprintf("content_type(%d)", uint8(c))
}

// SenderType is the kind of sender of a PublicMessage (RFC 9420 §6).
type SenderType uint8

// Sender types.
const (
	SenderMember            SenderType = 1
	SenderExternal          SenderType = 2
	SenderNewMemberProposal SenderType = 3
	SenderNewMemberCommit   SenderType = 4
)

var senderTypeNames = [...]string{"", "member", "external", "new_member_proposal", "new_member_commit"}

// String returns the RFC 9420 name ("new_member_commit").
func (s SenderType) String() string {
	if s > 0 && int(s) < len(senderTypeNames) {
		return senderTypeNames[s]
	}
	return fmt.Sprintf("sender_type(%d)", uint8(s))
}

// ProposalType is the type of a proposal (RFC 9420 §12.1).
type ProposalType uint16

// Proposal types of RFC 9420. Other types are rejected: their encoding is
// not self-delimiting, so a message carrying one cannot be bounded.
const (
	ProposalAdd                    ProposalType = 1
	ProposalUpdate                 ProposalType = 2
	ProposalRemove                 ProposalType = 3
	ProposalPSK                    ProposalType = 4
	ProposalReInit                 ProposalType = 5
	ProposalExternalInit           ProposalType = 6
	ProposalGroupContextExtensions ProposalType = 7
)

// Message is the public framing of an MLSMessage. Which fields are set
// depends on WireFormat:
//
//   - public_message: GroupID, Epoch, ContentType, AuthenticatedData,
//     SenderType, SenderIndex, and ProposalType for a proposal;
//   - private_message: GroupID, Epoch, ContentType, AuthenticatedData (the
//     sender is encrypted: SenderType is 0);
//   - welcome: CipherSuite, KeyPackageRefs;
//   - group_info: GroupInfo, and GroupID, Epoch, CipherSuite copied from its
//     group context;
//   - key_package: KeyPackage, and CipherSuite.
//
// Byte slices alias the input given to ParseMessage.
type Message struct {
	WireFormat WireFormat

	GroupID           []byte
	Epoch             uint64
	ContentType       ContentType
	AuthenticatedData []byte

	SenderType SenderType
	// SenderIndex is the leaf index of a member sender, or the index in
	// the group's external_senders extension of an external sender.
	SenderIndex  uint32
	ProposalType ProposalType

	CipherSuite CipherSuite
	// KeyPackageRefs are the EncryptedGroupSecrets.new_member values of a
	// Welcome, in order: the KeyPackageRefs of the KeyPackages it consumes,
	// hence of the devices to deliver it to.
	KeyPackageRefs [][]byte

	GroupInfo  *GroupInfo
	KeyPackage *KeyPackage
}

// IsHandshake reports whether m is a proposal or a commit, framed as a
// PublicMessage or a PrivateMessage.
func (m *Message) IsHandshake() bool {
	return (m.WireFormat == WireFormatPublicMessage || m.WireFormat == WireFormatPrivateMessage) &&
		(m.ContentType == ContentProposal || m.ContentType == ContentCommit)
}

// Default size limits of a Parser.
const (
	DefaultMaxMessageSize    = 1 << 20
	DefaultMaxKeyPackageSize = 64 << 10
)

// Parser parses MLS objects under size limits. The zero value uses the
// default limits; a Parser is safe for concurrent use.
type Parser struct {
	// MaxMessageSize caps any input, in bytes; 0 or less means
	// DefaultMaxMessageSize. A Welcome or GroupInfo that carries the
	// ratchet tree grows with the group: with the X-Wing suite, whose
	// public keys are 1216 bytes, a GroupInfo for a group of a few hundred
	// devices approaches the default.
	MaxMessageSize int
	// MaxKeyPackageSize caps a KeyPackage, in bytes; 0 or less means
	// DefaultMaxKeyPackageSize. ts-mls KeyPackages are about 350 bytes
	// with suite 1 and 2.7 KB with the X-Wing suite.
	MaxKeyPackageSize int
}

func (p Parser) maxMessage() int {
	if p.MaxMessageSize <= 0 {
		return DefaultMaxMessageSize
	}
	return p.MaxMessageSize
}

func (p Parser) maxKeyPackage() int {
	if p.MaxKeyPackageSize <= 0 {
		return DefaultMaxKeyPackageSize
	}
	return p.MaxKeyPackageSize
}

func tooLarge(what string, n, limit int) error {
	return &Error{Code: CodeTooLarge, Field: what, Err: fmt.Errorf("%d bytes, limit %d", n, limit)}
}

// ParseMessage parses an MLSMessage of any wire format with the default
// limits. See Parser.ParseMessage.
func ParseMessage(b []byte) (*Message, error) { return Parser{}.ParseMessage(b) }

// ParseKeyPackage parses a KeyPackage with the default limits. See
// Parser.ParseKeyPackage.
func ParseKeyPackage(b []byte) (*KeyPackage, error) { return Parser{}.ParseKeyPackage(b) }

// ParseGroupInfo parses a GroupInfo with the default limits. See
// Parser.ParseGroupInfo.
func ParseGroupInfo(b []byte) (*GroupInfo, error) { return Parser{}.ParseGroupInfo(b) }

// ParseMessage parses b, which must be exactly one MLSMessage, of any wire
// format. A key_package is also held to MaxKeyPackageSize and, like
// ParseKeyPackage, needs a known cipher suite. The result aliases b.
//
// For a PublicMessage or PrivateMessage, parsing does not allocate beyond
// the returned Message.
func (p Parser) ParseMessage(b []byte) (*Message, error) {
	if len(b) > p.maxMessage() {
		return nil, tooLarge("mls_message", len(b), p.maxMessage())
	}
	m := new(Message)
	if err := p.parse(b, m, 0); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseKeyPackage parses b, which must be exactly one MLSMessage of wire
// format key_package: the form in which ts-mls encodes KeyPackages with
// encodeMlsMessage({version: "mls10", wireformat: "mls_key_package",
// keyPackage}). It computes the KeyPackageRef, so the cipher suite must be
// known (CipherSuite.Known). The result aliases b except Ref.
func (p Parser) ParseKeyPackage(b []byte) (*KeyPackage, error) {
	if len(b) > p.maxKeyPackage() {
		return nil, tooLarge("key_package", len(b), p.maxKeyPackage())
	}
	var m Message
	if err := p.parse(b, &m, WireFormatKeyPackage); err != nil {
		return nil, err
	}
	return m.KeyPackage, nil
}

// ParseGroupInfo parses b, which must be exactly one MLSMessage of wire
// format group_info. The result aliases b.
func (p Parser) ParseGroupInfo(b []byte) (*GroupInfo, error) {
	if len(b) > p.maxMessage() {
		return nil, tooLarge("group_info", len(b), p.maxMessage())
	}
	var m Message
	if err := p.parse(b, &m, WireFormatGroupInfo); err != nil {
		return nil, err
	}
	return m.GroupInfo, nil
}

// parse decodes the MLSMessage in b into m. If want is not zero, the wire
// format must be want.
func (p Parser) parse(b []byte, m *Message, want WireFormat) error {
	r := reader{b}
	version, err := r.u16("mls_message.version")
	if err != nil {
		return err
	}
	if version != mls10 {
		return &Error{Code: CodeUnsupportedVersion, Field: "mls_message.version", Err: fmt.Errorf("%d", version)}
	}
	wf, err := r.u16("mls_message.wire_format")
	if err != nil {
		return err
	}
	m.WireFormat = WireFormat(wf)
	if want != 0 && m.WireFormat != want {
		return &Error{Code: CodeUnsupportedWireFormat, Field: "mls_message.wire_format", Err: fmt.Errorf("%v, want %v", m.WireFormat, want)}
	}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		if err := parsePublicMessage(&r, m); err != nil {
			return within("public_message", err)
		}
	case WireFormatPrivateMessage:
		if err := parsePrivateMessage(&r, m); err != nil {
			return within("private_message", err)
		}
	case WireFormatWelcome:
		if err := parseWelcome(&r, m); err != nil {
			return within("welcome", err)
		}
	case WireFormatGroupInfo:
		gi := new(GroupInfo)
		if err := parseGroupInfo(&r, gi); err != nil {
			return within("group_info", err)
		}
		m.GroupInfo, m.GroupID, m.Epoch, m.CipherSuite = gi, gi.GroupID, gi.Epoch, gi.CipherSuite
	case WireFormatKeyPackage:
		if len(b) > p.maxKeyPackage() {
			return tooLarge("key_package", len(b), p.maxKeyPackage())
		}
		var kp keyPackage
		if err := parseKeyPackage(&r, &kp); err != nil {
			return within("key_package", err)
		}
		if err := r.end("mls_message"); err != nil {
			return err
		}
		out, err := kp.export()
		if err != nil {
			return err
		}
		m.KeyPackage, m.CipherSuite = out, out.CipherSuite
	default:
		return &Error{Code: CodeUnsupportedWireFormat, Field: "mls_message.wire_format", Err: fmt.Errorf("%d", wf)}
	}
	return r.end("mls_message")
}

// parsePublicMessage parses a PublicMessage (RFC 9420 §6.2), flattening
// FramedContent into it for field names: "public_message.epoch".
func parsePublicMessage(r *reader, m *Message) error {
	var err error
	if m.GroupID, err = r.opaque("group_id"); err != nil {
		return err
	}
	if m.Epoch, err = r.u64("epoch"); err != nil {
		return err
	}
	st, err := r.u8("sender.sender_type")
	if err != nil {
		return err
	}
	m.SenderType = SenderType(st)
	switch m.SenderType {
	case SenderMember:
		if m.SenderIndex, err = r.u32("sender.leaf_index"); err != nil {
			return err
		}
	case SenderExternal:
		if m.SenderIndex, err = r.u32("sender.sender_index"); err != nil {
			return err
		}
	case SenderNewMemberProposal, SenderNewMemberCommit:
	default:
		return badValue("sender.sender_type", "%d", st)
	}
	if m.AuthenticatedData, err = r.opaque("authenticated_data"); err != nil {
		return err
	}
	ct, err := r.u8("content_type")
	if err != nil {
		return err
	}
	m.ContentType = ContentType(ct)
	switch m.ContentType {
	case ContentApplication:
		// RFC 9420 §6: applications MUST use PrivateMessage for
		// application data.
		return badValue("content_type", "application data must be sent as a private_message")
	case ContentProposal:
		if m.SenderType == SenderNewMemberCommit {
			return badValue("content_type", "%v from a %v sender", m.ContentType, m.SenderType)
		}
		pt, err := parseProposal(r)
		if err != nil {
			return within("proposal", err)
		}
		m.ProposalType = pt
		if m.SenderType == SenderNewMemberProposal && pt != ProposalAdd {
			return badValue("proposal.proposal_type", "%d from a %v sender", pt, m.SenderType)
		}
	case ContentCommit:
		if m.SenderType == SenderExternal || m.SenderType == SenderNewMemberProposal {
			return badValue("content_type", "%v from a %v sender", m.ContentType, m.SenderType)
		}
		if err := parseCommit(r); err != nil {
			return within("commit", err)
		}
	default:
		return badValue("content_type", "%d", ct)
	}
	if _, err = r.opaque("auth.signature"); err != nil {
		return err
	}
	if m.ContentType == ContentCommit {
		if _, err = r.opaque("auth.confirmation_tag"); err != nil {
			return err
		}
	}
	if m.SenderType == SenderMember {
		if _, err = r.opaque("membership_tag"); err != nil {
			return err
		}
	}
	return nil
}

// parseProposal parses a Proposal (RFC 9420 §12.1) and returns its type.
func parseProposal(r *reader) (ProposalType, error) {
	t, err := r.u16("proposal_type")
	if err != nil {
		return 0, err
	}
	pt := ProposalType(t)
	switch pt {
	case ProposalAdd:
		var kp keyPackage
		if err := parseKeyPackage(r, &kp); err != nil {
			return pt, within("add.key_package", err)
		}
	case ProposalUpdate:
		var ln leafNode
		if err := parseLeafNode(r, sourceUpdate, &ln); err != nil {
			return pt, within("update.leaf_node", err)
		}
	case ProposalRemove:
		if _, err := r.u32("remove.removed"); err != nil {
			return pt, err
		}
	case ProposalPSK:
		if err := parsePreSharedKeyID(r); err != nil {
			return pt, within("psk.psk", err)
		}
	case ProposalReInit:
		if _, err := r.opaque("reinit.group_id"); err != nil {
			return pt, err
		}
		if _, err := r.u16("reinit.version"); err != nil {
			return pt, err
		}
		if _, err := r.u16("reinit.cipher_suite"); err != nil {
			return pt, err
		}
		if _, err := parseExtensions(r, "reinit.extensions"); err != nil {
			return pt, err
		}
	case ProposalExternalInit:
		if _, err := r.opaque("external_init.kem_output"); err != nil {
			return pt, err
		}
	case ProposalGroupContextExtensions:
		if _, err := parseExtensions(r, "group_context_extensions.extensions"); err != nil {
			return pt, err
		}
	default:
		return pt, badValue("proposal_type", "unsupported proposal type 0x%04x", t)
	}
	return pt, nil
}

// parsePreSharedKeyID parses a PreSharedKeyID (RFC 9420 §8.4).
func parsePreSharedKeyID(r *reader) error {
	t, err := r.u8("psktype")
	if err != nil {
		return err
	}
	switch t {
	case 1: // external
		if _, err := r.opaque("psk_id"); err != nil {
			return err
		}
	case 2: // resumption
		if _, err := r.u8("usage"); err != nil {
			return err
		}
		if _, err := r.opaque("psk_group_id"); err != nil {
			return err
		}
		if _, err := r.u64("psk_epoch"); err != nil {
			return err
		}
	default:
		return badValue("psktype", "%d", t)
	}
	_, err = r.opaque("psk_nonce")
	return err
}

// parseCommit parses a Commit (RFC 9420 §12.4): the proposals it covers and
// its optional UpdatePath (§7.6).
func parseCommit(r *reader) error {
	props, err := r.vector("proposals")
	if err != nil {
		return err
	}
	for i := 0; props.len() > 0; i++ {
		if err := parseProposalOrRef(&props); err != nil {
			return within(fmt.Sprintf("proposals[%d]", i), err)
		}
	}
	present, err := r.present("path")
	if err != nil || !present {
		return err
	}
	var ln leafNode
	if err := parseLeafNode(r, sourceCommit, &ln); err != nil {
		return within("path.leaf_node", err)
	}
	nodes, err := r.vector("path.nodes")
	if err != nil {
		return err
	}
	for i := 0; nodes.len() > 0; i++ {
		if err := parseUpdatePathNode(&nodes); err != nil {
			return within(fmt.Sprintf("path.nodes[%d]", i), err)
		}
	}
	return nil
}

func parseProposalOrRef(r *reader) error {
	t, err := r.u8("type")
	if err != nil {
		return err
	}
	switch t {
	case 1: // proposal
		if _, err := parseProposal(r); err != nil {
			return within("proposal", err)
		}
		return nil
	case 2: // reference
		_, err := r.opaque("reference")
		return err
	}
	return badValue("type", "%d", t)
}

func parseUpdatePathNode(r *reader) error {
	if _, err := r.opaque("encryption_key"); err != nil {
		return err
	}
	cts, err := r.vector("encrypted_path_secret")
	if err != nil {
		return err
	}
	for i := 0; cts.len() > 0; i++ {
		if err := parseHPKECiphertext(&cts); err != nil {
			return within(fmt.Sprintf("encrypted_path_secret[%d]", i), err)
		}
	}
	return nil
}

func parseHPKECiphertext(r *reader) error {
	if _, err := r.opaque("kem_output"); err != nil {
		return err
	}
	_, err := r.opaque("ciphertext")
	return err
}

// parsePrivateMessage parses a PrivateMessage (RFC 9420 §6.3).
func parsePrivateMessage(r *reader, m *Message) error {
	var err error
	if m.GroupID, err = r.opaque("group_id"); err != nil {
		return err
	}
	if m.Epoch, err = r.u64("epoch"); err != nil {
		return err
	}
	ct, err := r.u8("content_type")
	if err != nil {
		return err
	}
	m.ContentType = ContentType(ct)
	if ct < uint8(ContentApplication) || ct > uint8(ContentCommit) {
		return badValue("content_type", "%d", ct)
	}
	if m.AuthenticatedData, err = r.opaque("authenticated_data"); err != nil {
		return err
	}
	if _, err = r.opaque("encrypted_sender_data"); err != nil {
		return err
	}
	_, err = r.opaque("ciphertext")
	return err
}

// parseWelcome parses a Welcome (RFC 9420 §12.4.3.1).
func parseWelcome(r *reader, m *Message) error {
	suite, err := r.u16("cipher_suite")
	if err != nil {
		return err
	}
	m.CipherSuite = CipherSuite(suite)
	secrets, err := r.vector("secrets")
	if err != nil {
		return err
	}
	// First pass: check and count, to allocate the references once.
	n := 0
	for s := secrets; s.len() > 0; n++ {
		if _, err := s.opaque("new_member"); err != nil {
			return within(fmt.Sprintf("secrets[%d]", n), err)
		}
		if err := parseHPKECiphertext(&s); err != nil {
			return within(fmt.Sprintf("secrets[%d].encrypted_group_secrets", n), err)
		}
	}
	if n > 0 {
		m.KeyPackageRefs = make([][]byte, 0, n)
		for secrets.len() > 0 {
			ref, _ := secrets.opaque("")
			_ = parseHPKECiphertext(&secrets)
			m.KeyPackageRefs = append(m.KeyPackageRefs, ref)
		}
	}
	_, err = r.opaque("encrypted_group_info")
	return err
}
