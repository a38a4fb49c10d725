package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestConfigFileAcceptsEnvironmentFileLines: the packaged
// /etc/relais/relais.conf doubles as a systemd EnvironmentFile, so the
// file parser takes RELAIS_KEY=value lines as well as key = value.
func TestConfigFileAcceptsEnvironmentFileLines(t *testing.T) {
	cases := []struct {
		name string
		file string
		want func(Config) bool
	}{
		{"environment form", "RELAIS_LISTEN=127.0.0.1:9000\nRELAIS_SMTP_HOST=smtp.mairie.fr\nRELAIS_RATE_LIMITS=off\n", func(c Config) bool {
			return c.Listen == "127.0.0.1:9000" && c.SMTPHost == "smtp.mairie.fr" && !c.RateLimits
		}},
		{"both forms in one file", "# comment\nlisten = :9001\n\nRELAIS_NAME=\"Mairie de Lyon\"\nRELAIS_ALLOWED_DOMAINS='a.gouv.fr,*.b.gouv.fr'\n", func(c Config) bool {
			return c.Listen == ":9001" && c.Name == "Mairie de Lyon" && strings.Join(c.AllowedDomains, "|") == "a.gouv.fr|*.b.gouv.fr"
		}},
		{"spaces around = in environment form", "RELAIS_ACCOUNT_VALIDITY = 365d\n", func(c Config) bool {
			return c.AccountValidity.String() == "8760h0m0s"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "relais.conf")
			if err := os.WriteFile(file, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := Defaults()
			if err := Load(cfg.Flags("serve"), []string{"--config", file}, nil); err != nil {
				t.Fatal(err)
			}
			if !c.want(cfg) {
				t.Fatalf("got %+v", cfg)
			}
		})
	}
}

// TestConfigFileEnvironmentLinesErrors: the environment form is held to
// the same rules as the other: unknown settings, one setting given in
// both forms, and lower-case or empty keys are refused.
func TestConfigFileEnvironmentLinesErrors(t *testing.T) {
	for _, c := range []struct{ name, file string }{
		{"unknown setting", "RELAIS_NOPE=1\n"},
		{"set twice in two forms", "listen = :1\nRELAIS_LISTEN=:2\n"},
		{"lower-case prefix is not the environment form", "relais_listen=:1\n"},
		{"empty key", "=x\n"},
		{"bad value", "RELAIS_RATE_LIMITS=maybe\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "relais.conf")
			if err := os.WriteFile(file, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := Defaults()
			if err := Load(cfg.Flags("serve"), []string{"--config", file}, nil); err == nil {
				t.Fatalf("accepted %q: %+v", c.file, cfg)
			}
		})
	}
}

// FuzzParseFile: any input either fails or gives settings that, written
// back as quoted key = value lines, parse to the same settings.
func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		"listen = :8443\n",
		"RELAIS_LISTEN=:8443\n# c\nname = \"Mairie\"\n",
		"RELAIS_NAME='x y'\n",
		"a=\"\\x\"\n",
		"=\n",
		"k = v\nk = w\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseFile(strings.NewReader(in))
		if err != nil {
			return
		}
		keys := slicesSorted(got)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s = %s\n", k, strconv.Quote(got[k]))
		}
		again, err := parseFile(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("written back %q: %v", b.String(), err)
		}
		if !maps.Equal(got, again) {
			t.Fatalf("%q parsed to %v, written back to %v", in, got, again)
		}
	})
}

func slicesSorted(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
