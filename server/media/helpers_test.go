package media

import (
	"bytes"
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
