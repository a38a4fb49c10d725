package mls

import (
	"fmt"
	"time"
)

// CredentialType is an MLS credential type (RFC 9420 §5.3).
type CredentialType uint16

// Credential types whose encoding this package knows. A credential of any
// other type cannot be delimited and makes its LeafNode malformed.
const (
	CredentialBasic CredentialType = 1
	CredentialX509  CredentialType = 2
)

// Lifetime is the validity period of a KeyPackage's LeafNode, in seconds
// since the Unix epoch (RFC 9420 §7.2).
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// Contains reports whether t lies within the lifetime, bounds included.
func (l Lifetime) Contains(t time.Time) bool {
	s := t.Unix()
	if s < 0 {
		return false
	}
	return l.NotBefore <= uint64(s) && uint64(s) <= l.NotAfter
}

// Extension is an MLS extension (RFC 9420 §13). Data aliases the input.
type Extension struct {
	Type uint16
	Data []byte
}

// KeyPackage is the public part of a KeyPackage (RFC 9420 §10) as far as the
// node needs it. Byte slices alias the input except Ref.
type KeyPackage struct {
	CipherSuite CipherSuite
	// InitKey is the HPKE public key a Welcome is encrypted to.
	InitKey []byte
	// EncryptionKey is the leaf node's HPKE public key.
	EncryptionKey []byte
	// SignatureKey is the leaf node's signature public key: the device key
	// the node binds to its user.
	SignatureKey []byte
	// CredentialType is CredentialBasic or CredentialX509.
	CredentialType CredentialType
	// CredentialIdentity is the identity of a basic credential (nil for
	// X.509).
	CredentialIdentity []byte
	// Certificates is the DER certificate chain of an X.509 credential,
	// end-entity first (nil for basic).
	Certificates [][]byte
	// Lifetime is the leaf node's validity period.
	Lifetime Lifetime
	// LeafNodeExtensions and Extensions are the leaf node's and the
	// KeyPackage's extensions.
	LeafNodeExtensions []Extension
	Extensions         []Extension
	// Signature is the KeyPackage's signature over KeyPackageTBS (not
	// verified here).
	Signature []byte
	// Encoded is the encoded KeyPackage, without the MLSMessage header.
	Encoded []byte
	// Ref is the KeyPackageRef: RefHash("MLS 1.0 KeyPackage Reference",
	// Encoded) with the suite's hash (RFC 9420 §5.2). A Welcome names the
	// KeyPackages it consumes by this value.
	Ref []byte
}

// keyPackageRefLabel is the RefHash label of a KeyPackageRef.
const keyPackageRefLabel = "MLS 1.0 KeyPackage Reference"

// Leaf node sources (RFC 9420 §7.2).
const (
	sourceKeyPackage = 1
	sourceUpdate     = 2
	sourceCommit     = 3
)

// leafNode is a parsed LeafNode whose vectors are kept encoded (and
// validated), so that parsing one inside a message does not allocate.
type leafNode struct {
	encryptionKey  []byte
	signatureKey   []byte
	credentialType CredentialType
	identity       []byte // basic
	certificates   []byte // x509: content of certificates<V>
	lifetime       Lifetime
	extensions     []byte // content of extensions<V>
	signature      []byte
}

// parseLeafNode parses a LeafNode whose leaf_node_source must be want.
func parseLeafNode(r *reader, want uint8, ln *leafNode) error {
	var err error
	if ln.encryptionKey, err = r.opaque("encryption_key"); err != nil {
		return err
	}
	if ln.signatureKey, err = r.opaque("signature_key"); err != nil {
		return err
	}
	if err = parseCredential(r, ln); err != nil {
		return within("credential", err)
	}
	if err = skipCapabilities(r); err != nil {
		return within("capabilities", err)
	}
	source, err := r.u8("leaf_node_source")
	if err != nil {
		return err
	}
	if source != want {
		return badValue("leaf_node_source", "%d, want %d", source, want)
	}
	switch source {
	case sourceKeyPackage:
		if ln.lifetime.NotBefore, err = r.u64("lifetime.not_before"); err != nil {
			return err
		}
		if ln.lifetime.NotAfter, err = r.u64("lifetime.not_after"); err != nil {
			return err
		}
	case sourceCommit:
		if _, err = r.opaque("parent_hash"); err != nil {
			return err
		}
	}
	if ln.extensions, err = parseExtensions(r, "extensions"); err != nil {
		return err
	}
	ln.signature, err = r.opaque("signature")
	return err
}

func parseCredential(r *reader, ln *leafNode) error {
	t, err := r.u16("credential_type")
	if err != nil {
		return err
	}
	ln.credentialType = CredentialType(t)
	switch ln.credentialType {
	case CredentialBasic:
		ln.identity, err = r.opaque("identity")
		return err
	case CredentialX509:
		certs, err := r.vector("certificates")
		if err != nil {
			return err
		}
		ln.certificates = certs.b
		for i := 0; certs.len() > 0; i++ {
			if _, err := certs.opaque("cert_data"); err != nil {
				return within(fmt.Sprintf("certificates[%d]", i), err)
			}
		}
		return nil
	}
	return badValue("credential_type", "unsupported credential type %d", t)
}

// skipCapabilities checks the five vectors of 16-bit values of a
// Capabilities structure. Their content is not needed here; unknown values
// in them are legal (RFC 9420 §13).
func skipCapabilities(r *reader) error {
	for _, f := range [...]string{"versions", "cipher_suites", "extensions", "proposals", "credentials"} {
		if _, err := r.fixedVector(f, 2); err != nil {
			return err
		}
	}
	return nil
}

// parseExtensions checks an Extension extensions<V> vector and returns its
// content.
func parseExtensions(r *reader, field string) ([]byte, error) {
	v, err := r.vector(field)
	if err != nil {
		return nil, err
	}
	raw := v.b
	for i := 0; v.len() > 0; i++ {
		if _, err := v.u16("extension_type"); err != nil {
			return nil, within(fmt.Sprintf("%s[%d]", field, i), err)
		}
		if _, err := v.opaque("extension_data"); err != nil {
			return nil, within(fmt.Sprintf("%s[%d]", field, i), err)
		}
	}
	return raw, nil
}

// decodeExtensions decodes the content of an extensions vector already
// checked by parseExtensions.
func decodeExtensions(raw []byte) []Extension {
	if len(raw) == 0 {
		return nil
	}
	var exts []Extension
	r := reader{raw}
	for r.len() > 0 {
		t, _ := r.u16("")
		d, _ := r.opaque("")
		exts = append(exts, Extension{Type: t, Data: d})
	}
	return exts
}

// keyPackage is a parsed KeyPackage, without allocation.
type keyPackage struct {
	encoded     []byte
	cipherSuite CipherSuite
	initKey     []byte
	leaf        leafNode
	extensions  []byte
	signature   []byte
}

// parseKeyPackage parses a KeyPackage (RFC 9420 §10).
func parseKeyPackage(r *reader, kp *keyPackage) error {
	start := r.b
	version, err := r.u16("version")
	if err != nil {
		return err
	}
	if version != mls10 {
		return &Error{Code: CodeUnsupportedVersion, Field: "version", Err: fmt.Errorf("%d", version)}
	}
	suite, err := r.u16("cipher_suite")
	if err != nil {
		return err
	}
	kp.cipherSuite = CipherSuite(suite)
	if kp.initKey, err = r.opaque("init_key"); err != nil {
		return err
	}
	if err = parseLeafNode(r, sourceKeyPackage, &kp.leaf); err != nil {
		return within("leaf_node", err)
	}
	if kp.extensions, err = parseExtensions(r, "extensions"); err != nil {
		return err
	}
	if kp.signature, err = r.opaque("signature"); err != nil {
		return err
	}
	n := len(start) - len(r.b)
	kp.encoded = start[:n:n]
	return nil
}

// export builds the exported KeyPackage, computing its reference.
func (kp *keyPackage) export() (*KeyPackage, error) {
	ref, ok := refHash(kp.cipherSuite, keyPackageRefLabel, kp.encoded)
	if !ok {
		return nil, &Error{Code: CodeUnsupportedCipherSuite, Field: "key_package.cipher_suite", Err: fmt.Errorf("%v", kp.cipherSuite)}
	}
	out := &KeyPackage{
		CipherSuite:        kp.cipherSuite,
		InitKey:            kp.initKey,
		EncryptionKey:      kp.leaf.encryptionKey,
		SignatureKey:       kp.leaf.signatureKey,
		CredentialType:     kp.leaf.credentialType,
		CredentialIdentity: kp.leaf.identity,
		Lifetime:           kp.leaf.lifetime,
		LeafNodeExtensions: decodeExtensions(kp.leaf.extensions),
		Extensions:         decodeExtensions(kp.extensions),
		Signature:          kp.signature,
		Encoded:            kp.encoded,
		Ref:                ref,
	}
	if kp.leaf.credentialType == CredentialX509 {
		r := reader{kp.leaf.certificates}
		for r.len() > 0 {
			c, _ := r.opaque("")
			out.Certificates = append(out.Certificates, c)
		}
	}
	return out, nil
}
