// Package blob owns the bytes of attachments on disk and their layout:
// content-addressed blobs, and the partial bytes of resumable uploads
// with the SHA-256 state that names their blob, so that a restarted node
// resumes without reading them again. It knows nothing of who uploads
// what, for which room, nor of quotas: the caller (package files) keeps
// the record of each upload, written before its bytes and authoritative,
// and passes what the bytes must obey (the declared size, the scope).
//
// Nothing a user sends is ever used in a path: partial uploads are named
// by random identifiers (NewUploadID) and blobs by the SHA-256 of their
// content.
//
// Layout of the directory given to Open:
//
//	blobs/ab/<sha256 hex>       finished content, 0600 (directories 0700)
//	uploads/<id>/data           bytes received so far of a resumable upload
//	uploads/<id>/state          its scope, offset and SHA-256 state (JSON)
//
// Errors carry a stable code, read with Code: not_found, bad_request,
// too_large, offset_mismatch, interrupted, incomplete, busy.
package blob

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultMaxFileSize is the largest file of a Store whose Options say
// nothing.
const DefaultMaxFileSize = 100 << 20

// Options configures a Store.
type Options struct {
	// MaxFileSize is the largest file accepted, in bytes. Zero means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// Logger receives the few events the store decides alone (discarding
	// a damaged upload at Open). Nil discards them.
	Logger *slog.Logger
}

// Blob is finished content, named by its SHA-256.
type Blob struct {
	// Hash is the lower-case hex SHA-256 of the content, preceded by
	// the upload's scope when it has one (see scopedHash).
	Hash string
	Size int64
	// ContentType is sniffed from the bytes (net/http's sniffing, with the
	// office formats built on zip told apart); serve this, not the
	// declared type.
	ContentType string
	// Reused is true when a blob with the same content already existed:
	// its scan state applies, and Finish stored nothing new.
	Reused bool
}

// Store keeps partial uploads and blobs in a directory. Its methods are
// safe for concurrent use. It holds no open files or goroutines between
// calls.
type Store struct {
	dir, blobs, uploads string
	maxSize             int64
	log                 *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session

	blobMu sync.Mutex // serializes moves into blobs/ with Remove
}

// Open opens (creating if needed) the store in dir and reloads the
// partial uploads found there. A damaged one is discarded and logged.
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{
		dir:      dir,
		blobs:    filepath.Join(dir, "blobs"),
		uploads:  filepath.Join(dir, "uploads"),
		maxSize:  opts.MaxFileSize,
		log:      opts.Logger,
		sessions: make(map[string]*session),
	}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxFileSize
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{dir, s.blobs, s.uploads} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open blob store: %w", err)
		}
	}
	entries, err := os.ReadDir(s.uploads)
	if err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	for _, e := range entries {
		id := e.Name()
		if !ValidUploadID(id) || !e.IsDir() {
			s.log.Warn("removing stray entry in uploads", "name", id)
			os.RemoveAll(filepath.Join(s.uploads, id))
			continue
		}
		sess, err := s.load(id)
		if err != nil {
			s.log.Warn("discarding damaged upload", "upload", id, "err", err)
			os.RemoveAll(filepath.Join(s.uploads, id))
			continue
		}
		s.sessions[id] = sess
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// MaxFileSize returns the largest file accepted.
func (s *Store) MaxFileSize() int64 { return s.maxSize }

// Put stores content the node produced itself, such as a thumbnail, as a
// blob, in one call. It refuses content larger than the store's limit
// (ErrTooLarge) and leaves nothing behind on error.
func (s *Store) Put(r io.Reader) (Blob, error) {
	b := make([]byte, idBytes)
	rand.Read(b)
	tmp := filepath.Join(s.uploads, "put-"+hex.EncodeToString(b))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Blob{}, fmt.Errorf("put blob: %w", err)
	}
	defer os.Remove(tmp)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, s.maxSize+1))
	if err == nil && n > s.maxSize {
		err = fmt.Errorf("more than %d bytes: %w", s.maxSize, ErrTooLarge)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Blob{}, fmt.Errorf("put blob: %w", err)
	}
	head, err := readHead(tmp, 512)
	if err != nil {
		return Blob{}, fmt.Errorf("put blob: %w", err)
	}
	blob := Blob{Hash: hex.EncodeToString(h.Sum(nil)), Size: n, ContentType: sniffType(head, "")}
	if blob.Reused, err = s.put(tmp, blob.Hash); err != nil {
		return Blob{}, fmt.Errorf("put blob: %w", err)
	}
	return blob, nil
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, n)
	k, err := io.ReadFull(f, head)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return head[:k], err
}

// put moves the file at src to the blob hash, unless that blob exists.
func (s *Store) put(src, hash string) (reused bool, err error) {
	dir := filepath.Join(s.blobs, hash[:2])
	dst := filepath.Join(dir, hash)
	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	if _, err := os.Stat(dst); err == nil {
		return true, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	if err := os.Rename(src, dst); err != nil {
		return false, err
	}
	return false, syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Path returns the path of the blob hash (which may not exist). It
// returns an error wrapping ErrNotFound for a malformed hash.
func (s *Store) Path(hash string) (string, error) {
	if !validHash(hash) {
		return "", fmt.Errorf("blob %.70q: %w", hash, ErrNotFound)
	}
	return filepath.Join(s.blobs, hash[:2], hash), nil
}

// Exists reports whether the blob hash is stored.
func (s *Store) Exists(hash string) bool {
	p, err := s.Path(hash)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// Open opens the blob hash for reading. It returns an error wrapping
// ErrNotFound when the hash is malformed or the blob does not exist.
func (s *Store) Open(hash string) (*os.File, error) {
	p, err := s.Path(hash)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", hash, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", hash, err)
	}
	return f, nil
}

// Remove deletes the blob hash; removing a missing blob is not an error.
// Reference counting is the caller's: it must not remove a blob while an
// upload of the same content may be finishing, nor one still referenced.
func (s *Store) Remove(hash string) error {
	p, err := s.Path(hash)
	if err != nil {
		return err
	}
	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove blob %s: %w", hash, err)
	}
	return nil
}

// Walk calls fn for every stored blob, in no particular order, until fn
// returns an error. The caller uses it to find blobs no record refers to
// (for instance after a crash between Finish and the caller's commit).
func (s *Store) Walk(fn func(hash string, size int64, modTime time.Time) error) error {
	dirs, err := os.ReadDir(s.blobs)
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 2 {
			continue
		}
		files, err := os.ReadDir(filepath.Join(s.blobs, d.Name()))
		if err != nil {
			return fmt.Errorf("walk blobs: %w", err)
		}
		for _, f := range files {
			if !validHash(f.Name()) || f.Name()[:2] != d.Name() {
				continue
			}
			fi, err := f.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("walk blobs: %w", err)
			}
			if err := fn(f.Name(), fi.Size(), fi.ModTime()); err != nil {
				return err
			}
		}
	}
	return nil
}

func validHash(h string) bool { return len(h) == 2*sha256.Size && isLowerHex(h) }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// officeTypes are the document formats built on zip. Sniffing sees only
// "application/zip"; a declared type from this list is kept when the bytes
// are indeed a zip (the file is served as an attachment either way).
var officeTypes = map[string]bool{
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   true,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         true,
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": true,
	"application/vnd.oasis.opendocument.text":                                   true,
	"application/vnd.oasis.opendocument.spreadsheet":                            true,
	"application/vnd.oasis.opendocument.presentation":                           true,
	"application/vnd.oasis.opendocument.graphics":                               true,
	"application/epub+zip": true,
}

// OfficeType reports whether t is one of the document formats built on
// zip that sniffing tells apart (and downloads keep).
func OfficeType(t string) bool { return officeTypes[t] }

// sniffType returns the content type of a file from its first bytes.
func sniffType(head []byte, declared string) string {
	ct := http.DetectContentType(head)
	if ct == "application/zip" {
		// OpenDocument and EPUB start with a stored "mimetype" entry.
		if len(head) >= 38 && string(head[30:38]) == "mimetype" && le16(head[8:]) == 0 {
			start := 38 + int(le16(head[28:]))
			n := int(le32(head[18:]))
			if n <= 100 && start+n <= len(head) {
				if t := string(head[start : start+n]); officeTypes[t] {
					return t
				}
			}
		}
		if officeTypes[declared] {
			return declared
		}
	}
	return ct
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
