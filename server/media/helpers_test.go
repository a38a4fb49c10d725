package media

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"relais/server/blob"
)

// openBlobs opens a blob store in a temporary directory.
func openBlobs(t *testing.T) *blob.Store {
	t.Helper()
	s, err := blob.Open(t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// putBlob stores content as a blob.
func putBlob(t *testing.T, s *blob.Store, content []byte) blob.Blob {
	t.Helper()
	b, err := s.Put(bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
