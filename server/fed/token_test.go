package fed

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"relais/server/proto"
)

func testToken(t testing.TB) (Token, ed25519.PrivateKey) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Token{V: 1, Admin: AdminIDOf(pub), Name: "Ministère A", Domains: []string{"ministere.gouv.fr", "*.interieur.gouv.fr"},
		Nodes: []string{"nabcdefgh"}, EventKey: pub, Endpoint: "relais.ministere.gouv.fr:7422", TLSPin: strings.Repeat("0f", 32),
		Nkey: "U" + strings.Repeat("B", 55), Nonce: NewNonce(), Expires: time.Now().Add(time.Hour).Unix()}, key
}

func TestParseTokenRoundTrip(t *testing.T) {
	tk, key := testToken(t)
	got, err := ParseToken(tk.Sign(key), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.Admin != tk.Admin || got.Endpoint != tk.Endpoint || len(got.Domains) != 2 || got.Nonce != tk.Nonce {
		t.Fatalf("round trip: %+v", got)
	}
}

// TestParseTokenRefusesEachBadField: every field out of form is refused
// with peering_invalid/malformed before any signature is checked.
func TestParseTokenRefusesEachBadField(t *testing.T) {
	for _, c := range []struct {
		name string
		f    func(*Token)
	}{
		{"version", func(tk *Token) { tk.V = 2 }},
		{"admin id", func(tk *Token) { tk.Admin = "nope" }},
		{"event key", func(tk *Token) { tk.EventKey = tk.EventKey[:10] }},
		{"empty name", func(tk *Token) { tk.Name = "" }},
		{"control in name", func(tk *Token) { tk.Name = "A\nB" }},
		{"domain", func(tk *Token) { tk.Domains = []string{"not a domain"} }},
		{"node", func(tk *Token) { tk.Nodes = []string{"x"} }},
		{"no node", func(tk *Token) { tk.Nodes = nil }},
		{"pin", func(tk *Token) { tk.TLSPin = "abc" }},
		{"nkey", func(tk *Token) { tk.Nkey = "SU" + strings.Repeat("A", 54) }},
		{"nonce", func(tk *Token) { tk.Nonce = "x" }},
		{"reply_to", func(tk *Token) { tk.ReplyTo = "../x" }},
		{"endpoint", func(tk *Token) { tk.Endpoint = "host:99999" }},
		{"expiry", func(tk *Token) { tk.Expires = 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			tk, key := testToken(t)
			c.f(&tk)
			_, err := ParseToken(tk.Sign(key), time.Now())
			if pe := proto.AsError(err); pe == nil || pe.Code != proto.CodePeeringInvalid || pe.Detail != "malformed" {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// FuzzParseToken: no input makes the parser panic, and whatever it
// accepts is self-certifying, well formed and unexpired.
func FuzzParseToken(f *testing.F) {
	tk, key := testToken(f)
	f.Add(tk.Sign(key))
	tk.ReplyTo = NewNonce()
	f.Add(tk.Sign(key))
	f.Add("relais-peer1.e30.AAAA")
	f.Add("relais-peer1..")
	f.Add("")
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseToken(s, now)
		if err != nil {
			if proto.AsError(err) == nil {
				t.Fatalf("error without a stable code: %v", err)
			}
			return
		}
		if got.Admin != AdminIDOf(got.EventKey) || got.check() != nil || now.Unix() >= got.Expires {
			t.Fatalf("accepted a bad token: %+v", got)
		}
	})
}

// FuzzDecodeDirAnswer: a peer's answer never makes the decoder panic, and
// what it keeps is people homed on the peer's own nodes, at most limit.
func FuzzDecodeDirAnswer(f *testing.F) {
	f.Add([]byte(`{"users":[{"id":"u-nabcdefgh-abcdefghijklmnop","name":"Hélène Dupont","tag":"ab12","active":true}]}`))
	f.Add([]byte(`{"users":[{"id":"u-nzzzzzzzz-abcdefghijklmnop","name":"x"}]}`))
	f.Add([]byte(`{"users":null,"email":"a@b.fr"}`))
	peer := Peer{ID: "aabcdefghijkl", Name: "Ministère A", Nodes: []string{"nabcdefgh"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		users, err := DecodeDirAnswer(peer, b, 5)
		if err != nil {
			return
		}
		if len(users) > 5 {
			t.Fatalf("%d users over the limit", len(users))
		}
		for _, u := range users {
			if !strings.HasPrefix(u.ID, "u-nabcdefgh-") || u.Admin != peer.Name || u.Name == "" {
				t.Fatalf("kept %+v", u)
			}
		}
	})
}

// FuzzDecodeDirQuery: a peer's query never makes the decoder panic and is
// bounded once accepted.
func FuzzDecodeDirQuery(f *testing.F) {
	f.Add([]byte(`{"q":"dup","limit":20}`))
	f.Add([]byte(`{"q":"dup","limit":-1,"x":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeDirQuery(b)
		if err == nil && (len(q.Q) > dirMaxQuery || q.Limit < 1 || q.Limit > 50) {
			t.Fatalf("accepted %+v", q)
		}
	})
}

func TestDomainsOverlap(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"a.gouv.fr", "a.gouv.fr", true},
		{"A.gouv.fr", "a.gouv.fr", true},
		{"a.gouv.fr", "b.gouv.fr", false},
		{"*.gouv.fr", "a.gouv.fr", true},
		{"a.gouv.fr", "*.gouv.fr", true},
		{"*.gouv.fr", "gouv.fr", false},
		{"*.a.gouv.fr", "*.gouv.fr", true},
		{"*.gouv.fr", "agouv.fr", false},
		{"*.interieur.gouv.fr", "justice.gouv.fr", false},
	} {
		if got := DomainsOverlap(c.a, c.b); got != c.want {
			t.Errorf("DomainsOverlap(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
