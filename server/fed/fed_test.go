package fed

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadKeyCreatesOnceThenReadsTheSameKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("second LoadKey returned another key")
	}
	fi, err := os.Stat(filepath.Join(dir, "fed", "event.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestLoadKeyRefusesATruncatedFile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "fed"), 0o700)
	os.WriteFile(filepath.Join(dir, "fed", "event.key"), []byte("short"), 0o600)
	if _, err := LoadKey(dir); err == nil {
		t.Fatal("a 5-byte key file was accepted")
	}
}

func TestAdminIDValid(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	for _, c := range []struct {
		id   AdminID
		want bool
	}{
		{AdminIDOf(pub), true},
		{"", false},
		{"a", false},
		{"aabcdefghijkl", true},
		{"babcdefghijkl", false},
		{"aABCDEFGHIJKL", false},
		{"aabcdefghijk1", false},
		{"aabcdefghijklm", false},
		{"aabcdefgh.jkl", false},
	} {
		if got := c.id.Valid(); got != c.want {
			t.Errorf("%q.Valid() = %v, want %v", c.id, got, c.want)
		}
	}
}
