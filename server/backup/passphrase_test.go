package backup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPassphraseSources(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	cases := []struct {
		name    string
		p       Passphrase
		confirm bool
		want    string
		err     string
	}{
		{"first line of the file, without its end", Passphrase{File: file("a", "Bureau-du-maire-2026\r\nsecond line\n")}, true, "Bureau-du-maire-2026", ""},
		{"the file before the environment", Passphrase{File: file("b", "Bureau-du-maire-2026"), Env: "other-passphrase"}, true, "Bureau-du-maire-2026", ""},
		{"the environment", Passphrase{Env: "Bureau-du-maire-2026"}, true, "Bureau-du-maire-2026", ""},
		{"a missing file", Passphrase{File: filepath.Join(dir, "none")}, false, "", "passphrase file"},
		{"an empty file", Passphrase{File: file("c", "\n")}, false, "", "empty passphrase"},
		{"too short for a new archive", Passphrase{Env: "court"}, true, "", "at least 12 characters"},
		{"short is fine to open an old archive", Passphrase{Env: "court"}, false, "court", ""},
		{"nothing given, no prompt", Passphrase{}, false, "", ErrNeedPassphrase.Error()},
	}
	for _, c := range cases {
		got, err := c.p.Get(c.confirm)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got %q, %v; want error %q", c.name, got, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := (Passphrase{}).Get(false); !errors.Is(err, ErrNeedPassphrase) {
		t.Errorf("no source: %v", err)
	}
}
