package fed

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"relais/server/id"
	"relais/server/proto"
)

// A peering token is what one administration hands the other, out of
// band, to peer: its pinned record, signed with its event key.
//
//	relais-peer1.<base64url(JSON Token)>.<base64url(ed25519 signature)>
//
// The signature covers tokenContext followed by the exact JSON bytes, so
// no canonical form is needed and no other signature of the event key
// (events use their own prefix) can be passed off as a token.
const (
	tokenPrefix  = "relais-peer1."
	tokenContext = "relais-peering-v1\x00"
	// MaxTokenLen bounds what is parsed at all.
	MaxTokenLen = 8 << 10
	// TokenLifetime is how long a token is good for.
	TokenLifetime = 24 * time.Hour
)

// Token is the signed content of a peering token.
type Token struct {
	V        int      `json:"v"`
	Admin    AdminID  `json:"admin"`
	Name     string   `json:"name"`
	Domains  []string `json:"domains"`
	Nodes    []string `json:"nodes"`
	EventKey []byte   `json:"event_key"`
	// Endpoint is host:port of the link listener; "" behind NAT.
	Endpoint string `json:"endpoint,omitempty"`
	// TLSPin is the hex SHA-256 of the link certificate's SPKI.
	TLSPin string `json:"tls_pin"`
	// Nkey is the public NATS user key the node dials with.
	Nkey  string `json:"nkey"`
	Nonce string `json:"nonce"`
	// Expires is in Unix seconds.
	Expires int64 `json:"exp"`
	// ReplyTo is, in a reply, the nonce of the invitation it answers.
	ReplyTo string `json:"reply_to,omitempty"`
}

var (
	hex64Re  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	nonceRe  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	nkeyRe   = regexp.MustCompile(`^U[A-Z2-7]{55}$`)
	domainRe = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
)

// NewNonce returns a random token nonce.
func NewNonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Sign encodes t as a token signed with key.
func (t Token) Sign(key ed25519.PrivateKey) string {
	payload, _ := json.Marshal(t)
	sig := ed25519.Sign(key, append([]byte(tokenContext), payload...))
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func invalid(detail, format string, args ...any) *proto.Error {
	e := proto.Errorf(proto.CodePeeringInvalid, format, args...)
	e.Detail = detail
	return e
}

// ParseToken decodes and verifies a token: its form, that its signature
// verifies with the key it carries, that the administration id is the one
// of that key, and that it has not expired at now. It does not know
// whether the token was used before: that is the store's.
func ParseToken(s string, now time.Time) (Token, error) {
	var t Token
	s = strings.TrimSpace(s)
	if len(s) > MaxTokenLen {
		return t, invalid("malformed", "the token is longer than %d bytes", MaxTokenLen)
	}
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return t, invalid("malformed", "not a peering token (expected %s…)", tokenPrefix)
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok {
		return t, invalid("malformed", "the token has no signature")
	}
	payload, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return t, invalid("malformed", "the token's content is not base64url")
	}
	sig, err := base64.RawURLEncoding.DecodeString(s64)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return t, invalid("malformed", "the token's signature is not an ed25519 signature")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil || dec.More() {
		return Token{}, invalid("malformed", "the token's content does not decode")
	}
	if err := t.check(); err != nil {
		return Token{}, err
	}
	if !ed25519.Verify(ed25519.PublicKey(t.EventKey), append([]byte(tokenContext), payload...), sig) {
		return Token{}, invalid("bad_signature", "the token's signature does not verify")
	}
	if subtle.ConstantTimeCompare([]byte(AdminIDOf(t.EventKey)), []byte(t.Admin)) != 1 {
		return Token{}, invalid("id_mismatch", "the administration id %s is not the one of the token's key", t.Admin)
	}
	if now.Unix() >= t.Expires {
		return Token{}, proto.Errorf(proto.CodePeeringExpired, "the token expired at %s", time.Unix(t.Expires, 0).UTC().Format(time.RFC3339))
	}
	return t, nil
}

// check validates the fields' form.
func (t Token) check() error {
	switch {
	case t.V != 1:
		return invalid("malformed", "token version %d is not known", t.V)
	case !t.Admin.Valid():
		return invalid("malformed", "bad administration id")
	case len(t.EventKey) != ed25519.PublicKeySize:
		return invalid("malformed", "the event key is not an ed25519 public key")
	case t.Name == "" || len(t.Name) > 200 || strings.ContainsFunc(t.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return invalid("malformed", "bad administration name")
	case len(t.Domains) > 100 || len(t.Nodes) == 0 || len(t.Nodes) > 100:
		return invalid("malformed", "too many domains or nodes, or no node")
	case !hex64Re.MatchString(t.TLSPin):
		return invalid("malformed", "the TLS pin is not a hex SHA-256")
	case !nkeyRe.MatchString(t.Nkey):
		return invalid("malformed", "the NATS key is not a user nkey")
	case !nonceRe.MatchString(t.Nonce):
		return invalid("malformed", "bad nonce")
	case t.ReplyTo != "" && !nonceRe.MatchString(t.ReplyTo):
		return invalid("malformed", "bad reply_to")
	case t.Expires <= 0:
		return invalid("malformed", "bad expiry")
	}
	for _, d := range t.Domains {
		if !domainRe.MatchString(d) {
			return invalid("malformed", "bad domain %q", d)
		}
	}
	for _, n := range t.Nodes {
		if !id.Valid(id.Node, n) {
			return invalid("malformed", "bad node id %q", n)
		}
	}
	if t.Endpoint != "" {
		host, port, err := net.SplitHostPort(t.Endpoint)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 || len(t.Endpoint) > 300 {
			return invalid("malformed", "bad endpoint %q", t.Endpoint)
		}
	}
	return nil
}
