package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "relais.conf")
	os.WriteFile(file, []byte(`# settings
listen = 127.0.0.1:9000
data = "/srv/relais"
allowed-domains = a.gouv.fr, *.b.gouv.fr
account-validity = 365d
rate-limits = off
name = Mairie de Lyon
`), 0o600)
	cases := []struct {
		name string
		args []string
		env  []string
		want func(Config) bool
	}{
		{"defaults", nil, nil, func(c Config) bool {
			return c.Listen == ":8443" && c.Data == "./relais-data" && c.TLS == "auto" && c.RateLimits
		}},
		{"file", []string{"--config", file}, nil, func(c Config) bool {
			return c.Listen == "127.0.0.1:9000" && c.Data == "/srv/relais" && !c.RateLimits && c.Name == "Mairie de Lyon" &&
				strings.Join(c.AllowedDomains, "|") == "a.gouv.fr|*.b.gouv.fr" && time.Duration(c.AccountValidity) == 365*24*time.Hour
		}},
		{"environment over file", []string{"--config", file}, []string{"RELAIS_LISTEN=:7000", "RELAIS_RATE_LIMITS=on", "OTHER=x"}, func(c Config) bool {
			return c.Listen == ":7000" && c.RateLimits && c.Data == "/srv/relais"
		}},
		{"flags over environment", []string{"--config", file, "--listen", ":6000"}, []string{"RELAIS_LISTEN=:7000"}, func(c Config) bool {
			return c.Listen == ":6000"
		}},
		{"config file named by the environment", nil, []string{"RELAIS_CONFIG=" + file}, func(c Config) bool {
			return c.Listen == "127.0.0.1:9000"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Defaults()
			if err := Load(cfg.Flags("serve"), c.args, c.env); err != nil {
				t.Fatal(err)
			}
			if !c.want(cfg) {
				t.Fatalf("got %+v", cfg)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(bad, []byte("unknown-setting = 1\n"), 0o600)
	noEq := filepath.Join(t.TempDir(), "noeq.conf")
	os.WriteFile(noEq, []byte("listen\n"), 0o600)
	for _, c := range []struct {
		name string
		args []string
		env  []string
	}{
		{"unknown flag", []string{"--nope"}, nil},
		{"unknown environment setting", nil, []string{"RELAIS_NOPE=1"}},
		{"unknown file setting", []string{"--config", bad}, nil},
		{"line without =", []string{"--config", noEq}, nil},
		{"missing file", []string{"--config", "/nonexistent/relais.conf"}, nil},
		{"bad duration", []string{"--account-validity", "soon"}, nil},
		{"bad on/off", []string{"--rate-limits", "maybe"}, nil},
		{"stray argument", []string{"extra"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Defaults()
			fs := cfg.Flags("serve")
			fs.SetOutput(&strings.Builder{})
			if err := Load(fs, c.args, c.env); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
