package tlsmgr

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestZapLogKeys: what certmagic logs through zap reaches the node's log
// with the node's keys — errors under "err" — and without e-mail
// addresses.
func TestZapLogKeys(t *testing.T) {
	for _, c := range []struct {
		name    string
		field   zap.Field
		want    string
		notWant string
	}{
		{"an error", zap.Error(errors.New("acme: rate limited")), `err="acme: rate limited"`, "error="},
		{"an e-mail", zap.String("email", "maire@mairie-exemple.fr"), "email=[redacted]", "maire@"},
		{"an account contact", zap.Strings("contact", []string{"mailto:x@y.fr"}), "contact=[redacted]", "x@y.fr"},
		{"anything else", zap.String("domain", "relais.example.fr"), "domain=relais.example.fr", "[redacted]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out strings.Builder
			newZapLogger(slog.New(slog.NewTextHandler(&out, nil))).Warn("obtaining", c.field)
			if got := out.String(); !strings.Contains(got, c.want) || strings.Contains(got, c.notWant) {
				t.Fatalf("logged %q: want %q, not %q", got, c.want, c.notWant)
			}
		})
	}
}
