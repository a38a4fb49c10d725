package mls

import "fmt"

// GroupInfo is a parsed GroupInfo (RFC 9420 §12.4.3), published for
// external joins. Byte slices alias the input.
type GroupInfo struct {
	// CipherSuite, GroupID, Epoch, TreeHash, ConfirmedTranscriptHash and
	// GroupContextExtensions are the group context of the epoch the
	// GroupInfo describes.
	CipherSuite             CipherSuite
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	GroupContextExtensions  []Extension
	// Extensions are the GroupInfo's own extensions (ratchet_tree,
	// external_pub, ...).
	Extensions      []Extension
	ConfirmationTag []byte
	// Signer is the leaf index of the member that signed the GroupInfo.
	Signer uint32
	// Signature is not verified here.
	Signature []byte
}

// parseGroupInfo parses a GroupInfo.
func parseGroupInfo(r *reader, gi *GroupInfo) error {
	version, err := r.u16("group_context.version")
	if err != nil {
		return err
	}
	if version != mls10 {
		return &Error{Code: CodeUnsupportedVersion, Field: "group_context.version", Err: fmt.Errorf("%d", version)}
	}
	suite, err := r.u16("group_context.cipher_suite")
	if err != nil {
		return err
	}
	gi.CipherSuite = CipherSuite(suite)
	if gi.GroupID, err = r.opaque("group_context.group_id"); err != nil {
		return err
	}
	if gi.Epoch, err = r.u64("group_context.epoch"); err != nil {
		return err
	}
	if gi.TreeHash, err = r.opaque("group_context.tree_hash"); err != nil {
		return err
	}
	if gi.ConfirmedTranscriptHash, err = r.opaque("group_context.confirmed_transcript_hash"); err != nil {
		return err
	}
	gcExts, err := parseExtensions(r, "group_context.extensions")
	if err != nil {
		return err
	}
	exts, err := parseExtensions(r, "extensions")
	if err != nil {
		return err
	}
	if gi.ConfirmationTag, err = r.opaque("confirmation_tag"); err != nil {
		return err
	}
	if gi.Signer, err = r.u32("signer"); err != nil {
		return err
	}
	if gi.Signature, err = r.opaque("signature"); err != nil {
		return err
	}
	gi.GroupContextExtensions = decodeExtensions(gcExts)
	gi.Extensions = decodeExtensions(exts)
	return nil
}
