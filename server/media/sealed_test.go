package media

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"relais/server/media/mediatest"
)

func encryptBytes(t testing.TB, plain, key []byte) []byte {
	t.Helper()
	var ct bytes.Buffer
	if err := EncryptFile(&ct, bytes.NewReader(plain), key); err != nil {
		t.Fatal(err)
	}
	return ct.Bytes()
}

func TestSealedFormat(t *testing.T) {
	key := NewFileKey()
	const c = sealedChunkSize
	for _, size := range []int{0, 1, c - 1, c, c + 1, 2 * c, 3*c + 17} {
		plain := mediatest.Random(size, uint64(size)+1)
		ct := encryptBytes(t, plain, key)
		chunks := max(1, (size+c-1)/c)
		if want := sealedHeaderSize + size + chunks*sealedTagSize; len(ct) != want {
			t.Fatalf("size %d: ciphertext %d bytes, want %d", size, len(ct), want)
		}
		sf, err := openSealed(bytes.NewReader(ct), int64(len(ct)), key)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if sf.Size() != int64(size) {
			t.Fatalf("size %d: Size() = %d", size, sf.Size())
		}
		got, err := io.ReadAll(io.NewSectionReader(sf, 0, sf.Size()))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: plaintext differs (%v)", size, err)
		}
		var out bytes.Buffer
		if err := DecryptFile(&out, bytes.NewReader(ct), int64(len(ct)), key); err != nil || !bytes.Equal(out.Bytes(), plain) {
			t.Fatalf("size %d: DecryptFile differs (%v)", size, err)
		}
		// Random access across chunk boundaries.
		if size > c+50 {
			buf := make([]byte, 100)
			if n, err := sf.ReadAt(buf, c-50); n != 100 || err != nil || !bytes.Equal(buf, plain[c-50:c+50]) {
				t.Fatalf("size %d: ReadAt across chunks: %d, %v", size, n, err)
			}
		}
	}

	plain := mediatest.Random(3*c+5, 1)
	ct := encryptBytes(t, plain, key)
	readAll := func(ct, key []byte) error {
		sf, err := openSealed(bytes.NewReader(ct), int64(len(ct)), key)
		if err != nil {
			return err
		}
		_, err = io.ReadAll(io.NewSectionReader(sf, 0, sf.Size()))
		return err
	}
	flip := func(i int) []byte {
		b := bytes.Clone(ct)
		b[i] ^= 1
		return b
	}
	lastFull := sealedHeaderSize + 3*(c+sealedTagSize)
	cases := map[string]struct {
		ct, key []byte
	}{
		"wrong key":               {ct, NewFileKey()},
		"short key":               {ct, key[:16]},
		"tampered magic":          {flip(0), key},
		"tampered commitment":     {flip(10), key},
		"tampered chunk":          {flip(sealedHeaderSize + c + 100), key},
		"tampered tag":            {flip(len(ct) - 1), key},
		"truncated to 3 chunks":   {ct[:lastFull], key},
		"truncated mid-chunk":     {ct[:lastFull-100], key},
		"header only":             {ct[:sealedHeaderSize], key},
		"empty":                   {nil, key},
		"extra trailing chunk":    {append(bytes.Clone(ct), make([]byte, sealedTagSize)...), key},
		"chunks swapped":          {swapChunks(ct, 0, 1), key},
		"commitment of other key": {withCommitment(ct, NewFileKey()), key},
	}
	for name, tc := range cases {
		if err := readAll(tc.ct, tc.key); !errors.Is(err, ErrUndecryptable) {
			t.Errorf("%s: %v, want ErrUndecryptable", name, err)
		}
	}
}

func swapChunks(ct []byte, i, j int) []byte {
	const full = sealedChunkSize + sealedTagSize
	b := bytes.Clone(ct)
	a := b[sealedHeaderSize+i*full:][:full]
	c := b[sealedHeaderSize+j*full:][:full]
	tmp := bytes.Clone(a)
	copy(a, c)
	copy(c, tmp)
	return b
}

func withCommitment(ct, key []byte) []byte {
	_, commitment, _ := fileKeys(key)
	b := bytes.Clone(ct)
	copy(b[len(sealedMagic):], commitment)
	return b
}

func TestScannerKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "scanner.key")
	k1, err := OpenScannerKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	k2, err := OpenScannerKey(path)
	if err != nil || !bytes.Equal(k1.PublicKey(), k2.PublicKey()) {
		t.Fatalf("reopened key differs (%v)", err)
	}
	if s := k1.Suite(); s != (ScannerSuite{KEM: 0x647a, KDF: 0x0001, AEAD: 0x0002}) {
		t.Errorf("Suite = %#v", s)
	}
	if len(k1.PublicKey()) != 1216 {
		t.Errorf("public key of %d bytes", len(k1.PublicKey()))
	}
	fileKey := NewFileKey()
	enc, sealed, err := SealFileKey(k1.PublicKey(), fileKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k2.OpenSealedKey(enc, sealed)
	if err != nil || !bytes.Equal(got, fileKey) {
		t.Fatalf("OpenSealedKey = %x, %v", got, err)
	}
	other, _ := OpenScannerKey(filepath.Join(dir, "other.key"))
	if _, err := other.OpenSealedKey(enc, sealed); !errors.Is(err, ErrUndecryptable) {
		t.Errorf("other key opened it: %v", err)
	}
	bad := bytes.Clone(sealed)
	bad[0] ^= 1
	if _, err := k1.OpenSealedKey(enc, bad); !errors.Is(err, ErrUndecryptable) {
		t.Errorf("tampered sealed key: %v", err)
	}
	// A sealed value that is not 32 bytes is refused.
	enc, sealed, _ = SealFileKey(k1.PublicKey(), []byte("short"))
	if _, err := k1.OpenSealedKey(enc, sealed); !errors.Is(err, ErrUndecryptable) {
		t.Errorf("short file key: %v", err)
	}
	// A damaged key file is an error, not a silent new key.
	os.WriteFile(path, []byte("{}"), 0o600)
	if _, err := OpenScannerKey(path); err == nil {
		t.Error("damaged key file accepted")
	}
}

func FuzzSealedFile(f *testing.F) {
	key := bytes.Repeat([]byte{7}, FileKeySize)
	f.Add(encryptBytes(f, []byte("hello"), key))
	f.Add(encryptBytes(f, nil, key))
	f.Add([]byte(sealedMagic))
	f.Fuzz(func(t *testing.T, ct []byte) {
		sf, err := openSealed(bytes.NewReader(ct), int64(len(ct)), key)
		if err != nil {
			if !errors.Is(err, ErrUndecryptable) {
				t.Fatalf("openSealed: %v", err)
			}
			return
		}
		if sf.Size() < 0 || sf.Size() > int64(len(ct)) {
			t.Fatalf("plaintext size %d for %d bytes", sf.Size(), len(ct))
		}
		_, err = io.ReadAll(io.NewSectionReader(sf, 0, sf.Size()))
		if err != nil && !errors.Is(err, ErrUndecryptable) {
			t.Fatalf("read: %v", err)
		}
	})
}
