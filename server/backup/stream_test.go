package backup

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

const sealedChunk = chunkSize + chacha20poly1305.Overhead

func seal(t testing.TB, key, plain []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	s, err := newSealer(&out, key)
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes cross chunk boundaries anywhere.
	for p := plain; len(p) > 0; {
		n := min(len(p), 7919)
		if _, err := s.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func open(key, sealed []byte) ([]byte, error) {
	o, err := newOpener(bytes.NewReader(sealed), key)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(o)
}

func TestStreamRoundTrip(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize, 3*chunkSize + 5} {
		plain := make([]byte, size)
		rand.Read(plain)
		sealed := seal(t, key, plain)
		// Every chunk but the last is full and the last one never is.
		chunks := size/chunkSize + 1
		if len(sealed) != size+chunks*chacha20poly1305.Overhead {
			t.Errorf("%d bytes sealed into %d, expected %d chunks", size, len(sealed), chunks)
		}
		got, err := open(key, sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%d bytes: round trip gives %d bytes, %v", size, len(got), err)
		}
	}
}

// TestStreamDetectsTampering: every change to the chunks of an encrypted
// archive is refused: cut, dropped, repeated, reordered, flipped or
// appended bytes.
func TestStreamDetectsTampering(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	plain := make([]byte, 3*chunkSize+100)
	rand.Read(plain)
	sealed := seal(t, key, plain)
	chunk := func(i int) []byte { return sealed[i*sealedChunk : min(len(sealed), (i+1)*sealedChunk)] }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	flip := func(at int) []byte {
		b := bytes.Clone(sealed)
		b[at] ^= 0x01
		return b
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"cut after a full chunk", sealed[:2*sealedChunk], ErrTruncated},
		{"cut inside a chunk", sealed[:2*sealedChunk+1000], ErrDamaged},
		{"last chunk dropped", sealed[:3*sealedChunk], ErrTruncated},
		{"only the tag of the last chunk left", sealed[:len(sealed)-100], ErrDamaged},
		{"a middle chunk dropped", cat(chunk(0), chunk(2), chunk(3)), ErrDamaged},
		{"two chunks swapped", cat(chunk(1), chunk(0), chunk(2), chunk(3)), ErrDamaged},
		{"a chunk repeated", cat(chunk(0), chunk(0), chunk(1), chunk(2), chunk(3)), ErrDamaged},
		{"a full chunk passed off as the last", cat(chunk(0), chunk(1), chunk(2)[:sealedChunk-1]), ErrDamaged},
		{"a byte flipped in the first chunk", flip(10), ErrDamaged},
		{"a byte flipped in a tag", flip(sealedChunk - 1), ErrDamaged},
		{"a byte flipped in the last chunk", flip(len(sealed) - 1), ErrDamaged},
		{"a byte appended", cat(sealed, []byte{0}), ErrDamaged},
		{"nothing", nil, ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := open(key, c.b)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	other := make([]byte, 32)
	rand.Read(other)
	if _, err := open(other, sealed); !errors.Is(err, ErrDamaged) {
		t.Fatalf("another key opens the stream: %v", err)
	}
}

func TestHeaderChecksThePassphrase(t *testing.T) {
	head, key, err := newHeader([]byte("correct horse battery"), minWorkFactor)
	if err != nil {
		t.Fatal(err)
	}
	h, n, err := parseHeader(head)
	if err != nil || n != len(head) || !h.encrypted {
		t.Fatalf("parse: %+v %d %v", h, n, err)
	}
	if k, err := h.open([]byte("correct horse battery")); err != nil || !bytes.Equal(k, key) {
		t.Fatalf("right passphrase: %v", err)
	}
	if _, err := h.open([]byte("correct horse battery ")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	// The MAC covers the whole header: a changed salt or nonce (which would
	// derive other keys) is refused before any chunk is read.
	for _, at := range []int{11, 13, 29, 44, 45, 76} {
		b := bytes.Clone(head)
		b[at] ^= 0x80
		h, _, err := parseHeader(b)
		if err == nil {
			_, err = h.open([]byte("correct horse battery"))
		}
		if !errors.Is(err, ErrWrongPassphrase) && !errors.Is(err, ErrDamaged) {
			t.Errorf("byte %d flipped: %v", at, err)
		}
	}
	plain, _, _ := newHeader(nil, 0)
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrNotArchive},
		{"other file", []byte("%PDF-1.7 and more bytes"), ErrNotArchive},
		{"cut magic", []byte("RELAI"), ErrTruncated},
		{"cut plain header", plain[:9], ErrTruncated},
		{"cut encrypted header", head[:40], ErrTruncated},
		{"newer version", append([]byte(magic), 2, 0), ErrVersion},
		{"version 0", append([]byte(magic), 0, 0), ErrDamaged},
		{"unknown mode", append([]byte(magic), 1, 7), ErrDamaged},
		{"work factor too high", append(append([]byte(magic), 1, 1, maxWorkFactor+1, scryptR, scryptP), head[13:]...), ErrDamaged},
		{"work factor too low", append(append([]byte(magic), 1, 1, minWorkFactor-1, scryptR, scryptP), head[13:]...), ErrDamaged},
	}
	for _, c := range cases {
		if _, _, err := parseHeader(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if _, err := readHeader(bytes.NewReader(c.b)); !errors.Is(err, c.want) {
			t.Errorf("%s: readHeader: got %v, want %v", c.name, err, c.want)
		}
	}
}
