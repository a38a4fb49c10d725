package backup

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// fakePayload is a small payload with every kind of entry (the store is
// not a real one: readPayload does not open it).
func fakePayload(t testing.TB) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var m Manifest
	for _, f := range []struct{ name, body string }{
		{aboutName, `{"format":1,"node":"n1","schema":3}`},
		{storeName, "not really bbolt"},
		{blobPath("ab" + hex.EncodeToString(make([]byte, 31))), "content"},
		{"tls/local/ca.crt", "-----BEGIN CERTIFICATE-----"},
	} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: int64(len(f.body)), Mode: 0o600})
		tw.Write([]byte(f.body))
		sum := sha256.Sum256([]byte(f.body))
		m.Files = append(m.Files, ManifestEntry{Path: f.name, Size: int64(len(f.body)), SHA256: hex.EncodeToString(sum[:])})
	}
	mb, _ := json.Marshal(m)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: manifestName, Size: int64(len(mb)), Mode: 0o600})
	tw.Write(mb)
	tw.Close()
	return buf.Bytes()
}

const fuzzPassphrase = "correct horse battery"

func archiveOf(t testing.TB, payload []byte, encrypt bool) []byte {
	var pass []byte
	if encrypt {
		pass = []byte(fuzzPassphrase)
	}
	head, key, err := newHeader(pass, minWorkFactor)
	if err != nil {
		t.Fatal(err)
	}
	if key == nil {
		return append(head, payload...)
	}
	return append(head, seal(t, key, payload)...)
}

func TestFakePayloadReads(t *testing.T) {
	for _, enc := range []bool{false, true} {
		if err := readArchive(archiveOf(t, fakePayload(t), enc)); err != nil {
			t.Fatalf("encrypted %v: %v", enc, err)
		}
	}
}

// readArchive reads an archive from memory as a restore would, without
// writing or opening the store.
func readArchive(b []byte) error {
	payload, _, err := openPayload(bytes.NewReader(b), func() ([]byte, error) { return []byte(fuzzPassphrase), nil })
	if err != nil {
		return err
	}
	_, err = readPayload(payload, func(name string, size int64, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	return err
}

// FuzzArchive: any bytes given as an archive, plain or encrypted, are
// refused with one of the archive's errors or read; nothing panics.
func FuzzArchive(f *testing.F) {
	payload := fakePayload(f)
	f.Add(archiveOf(f, payload, false))
	f.Add(archiveOf(f, payload, true))
	f.Add(archiveOf(f, payload[:len(payload)/2], false))
	f.Add([]byte(magic))
	f.Add(append([]byte(magic), 1, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		// A high work factor costs up to a GiB per try: the bound is
		// tested by TestHeaderChecksThePassphrase, not here.
		if len(b) > 10 && b[9] == modeScrypt && b[10] > minWorkFactor+2 {
			return
		}
		h, n, herr := parseHeader(b)
		if herr == nil && (n > len(b) || (h.encrypted != (n == scryptHeaderLen))) {
			t.Fatalf("header of %d bytes parsed as %d, encrypted %v", len(b), n, h.encrypted)
		}
		err := readArchive(b)
		if err == nil {
			return
		}
		for _, known := range []error{ErrNotArchive, ErrVersion, ErrTruncated, ErrDamaged, ErrWrongPassphrase} {
			if errors.Is(err, known) {
				return
			}
		}
		t.Fatalf("error without a stable kind: %v", err)
	})
}

// TestArchiveNamesStayInside: an archive cannot make a restore write
// outside the new data directory, nor anything but the files a backup
// has: only the names of the format are accepted, as regular files.
func TestArchiveNamesStayInside(t *testing.T) {
	h := "ab" + hex.EncodeToString(make([]byte, 31))
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{storeName, true}, {aboutName, true}, {scannerName, true}, {blobPath(h), true},
		{"tls/local/ca.crt", true}, {"tls/acme/acme-v02.api.letsencrypt.org-directory/sites/relais.mairie.fr/relais.mairie.fr.key", true},
		{"../relais.db", false}, {"/etc/passwd", false}, {"tls/../../etc/cron.d/x", false}, {"tls/./a", false},
		{"tls//a", false}, {"tls/", false}, {"tls/.ssh", false}, {"tls/a\\b", false}, {"tls/a b", false},
		{"media/blobs/cd/" + h, false}, {"media/blobs/ab/" + h + "/x", false}, {"media/blobs/ab/AB" + h[2:], false},
		{"media/uploads/x/data", false}, {"admin.sock", false}, {"relais.db/x", false}, {"Relais.db", false},
	} {
		if got := validName(c.name); got != c.ok {
			t.Errorf("%q accepted %v, want %v", c.name, got, c.ok)
		}
	}
	for _, hd := range []tar.Header{
		{Typeflag: tar.TypeReg, Name: "../outside"},
		{Typeflag: tar.TypeSymlink, Name: storeName, Linkname: "/etc/passwd"},
		{Typeflag: tar.TypeLink, Name: storeName, Linkname: "../x"},
		{Typeflag: tar.TypeDir, Name: "tls/local"},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		about := []byte(`{"format":1}`)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: aboutName, Size: int64(len(about)), Mode: 0o600})
		tw.Write(about)
		tw.WriteHeader(&hd)
		tw.Close()
		_, err := readPayload(&buf, func(name string, size int64, r io.Reader) error {
			if name != aboutName {
				t.Errorf("entry %q (type %c) reached the writer", name, hd.Typeflag)
			}
			_, err := io.Copy(io.Discard, r)
			return err
		})
		if !errors.Is(err, ErrDamaged) {
			t.Errorf("entry %q (type %c): %v", hd.Name, hd.Typeflag, err)
		}
	}
}
