package blob

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

const (
	idBytes      = 16
	chunkBufSize = 64 << 10
	maxScopeLen  = 256
	// stateVersion 2 keeps only what the bytes need; version 1 (which
	// also held the owner, name and declared size, now the caller's
	// record) is still read.
	stateVersion = 2
)

// Partial is the state of the bytes of a resumable upload.
type Partial struct {
	// ID is random and is the only thing of the upload used in a path.
	ID string
	// Scope limits deduplication (see Begin).
	Scope string
	// Offset is the number of bytes received and durably stored: the
	// offset of the next chunk.
	Offset  int64
	Created time.Time
	// Updated is the time of the last chunk.
	Updated time.Time
}

// session is a partial upload. mu is held while a chunk is written or the
// upload finishes; offset and hash change only under it. committed and
// updated mirror them for Status without waiting for a writer.
type session struct {
	mu      sync.Mutex
	id      string
	dir     string
	scope   string
	created time.Time

	offset int64
	hash   hash.Hash

	committed atomic.Int64
	updated   atomic.Int64 // unix nanoseconds
	gone      atomic.Bool  // aborted, expired or finished: remove, do not commit
}

// stateFile is uploads/<id>/state. Hash is the SHA-256 state after Offset
// bytes (encoding.BinaryMarshaler), so that a restarted node resumes
// without reading the partial file again.
type stateFile struct {
	Version int       `json:"v"`
	Scope   string    `json:"scope,omitempty"`
	Created time.Time `json:"created"`
	Offset  int64     `json:"offset"`
	Hash    []byte    `json:"sha256_state"`
}

// NewUploadID returns a fresh random upload id, the name of its bytes on
// disk. The caller records the upload under it before calling Begin.
func NewUploadID() string {
	b := make([]byte, idBytes)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ValidUploadID reports whether id is shaped like NewUploadID's ids.
func ValidUploadID(id string) bool { return len(id) == 2*idBytes && isLowerHex(id) }

// load reads an upload left by a previous run. The data file was synced
// before the state was written, so it holds at least Offset bytes; bytes
// beyond come from a chunk interrupted by the stop and are dropped.
func (s *Store) load(id string) (*session, error) {
	dir := filepath.Join(s.uploads, id)
	b, err := os.ReadFile(filepath.Join(dir, "state"))
	if err != nil {
		return nil, err
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if (st.Version != stateVersion && st.Version != 1) || st.Offset < 0 {
		return nil, errors.New("state: invalid")
	}
	data := filepath.Join(dir, "data")
	fi, err := os.Stat(data)
	if err != nil {
		return nil, err
	}
	h := scopedHash(st.Scope)
	offset := st.Offset
	if fi.Size() < offset {
		// Should not happen (data is synced first): start the hash over.
		offset = fi.Size()
		if err := hashFile(h, data, offset); err != nil {
			return nil, err
		}
	} else if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Hash); err != nil {
		h = scopedHash(st.Scope)
		if err := hashFile(h, data, offset); err != nil {
			return nil, err
		}
	}
	if fi.Size() > offset {
		if err := os.Truncate(data, offset); err != nil {
			return nil, err
		}
	}
	sess := &session{id: id, dir: dir, scope: st.Scope, created: st.Created, offset: offset, hash: h}
	sess.committed.Store(offset)
	sess.updated.Store(fi.ModTime().UnixNano())
	return sess, nil
}

// scopedHash returns the hash of an upload's blob name: SHA-256 of the
// content, preceded for a scoped upload by a prefix naming the scope, so
// that the same bytes in two scopes are two blobs.
func scopedHash(scope string) hash.Hash {
	h := sha256.New()
	if scope != "" {
		h.Write([]byte("relais-scope\x00" + scope + "\x00"))
	}
	return h
}

func hashFile(h hash.Hash, path string, n int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(h, f, n)
	return err
}

// Begin creates the empty partial upload id (from NewUploadID).
//
// Scope limits deduplication: content is stored once per scope, and an
// upload in one scope never finds the blob of another (the blob's hash
// covers the scope). The files service scopes by room, so that an upload
// cannot learn whether the same bytes exist in a room the uploader is not
// in. "" is the unscoped content hash. A malformed id or scope is
// ErrBadRequest.
func (s *Store) Begin(id, scope string) (Partial, error) {
	switch {
	case !ValidUploadID(id):
		return Partial{}, fmt.Errorf("begin upload: id %.40q: %w", id, ErrBadRequest)
	case len(scope) > maxScopeLen || !utf8.ValidString(scope) || strings.ContainsRune(scope, 0):
		return Partial{}, fmt.Errorf("begin upload: scope: %w", ErrBadRequest)
	}
	dir := filepath.Join(s.uploads, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return Partial{}, fmt.Errorf("begin upload: %w", err)
	}
	now := time.Now()
	sess := &session{id: id, dir: dir, scope: scope, created: now, hash: scopedHash(scope)}
	sess.updated.Store(now.UnixNano())
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = sess.persist()
	}
	if err != nil {
		os.RemoveAll(dir)
		return Partial{}, fmt.Errorf("begin upload: %w", err)
	}
	s.mu.Lock()
	s.sessions[id] = sess
	s.mu.Unlock()
	return sess.partial(), nil
}

func (u *session) partial() Partial {
	return Partial{
		ID:      u.id,
		Scope:   u.scope,
		Offset:  u.committed.Load(),
		Created: u.created,
		Updated: time.Unix(0, u.updated.Load()),
	}
}

// persist writes the state file for the current offset and hash.
func (u *session) persist() error {
	hs, err := u.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	b, err := json.Marshal(stateFile{
		Version: stateVersion,
		Scope:   u.scope,
		Created: u.created,
		Offset:  u.offset,
		Hash:    hs,
	})
	if err != nil {
		return err
	}
	return writeFileSync(filepath.Join(u.dir, "state"), b)
}

// writeFileSync replaces path with data through a synced temporary file.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// session returns the partial upload id, or an error wrapping
// ErrNotFound.
func (s *Store) session(id string) (*session, error) {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil {
		return nil, fmt.Errorf("upload %.40q: %w", id, ErrNotFound)
	}
	return sess, nil
}

// Status returns where the partial upload stands; a client that lost its
// connection asks it and resumes from Offset.
func (s *Store) Status(id string) (Partial, error) {
	sess, err := s.session(id)
	if err != nil {
		return Partial{}, err
	}
	return sess.partial(), nil
}

// Partials returns every partial upload, in no particular order (the
// caller drops those it has no record of).
func (s *Store) Partials() []Partial {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Partial, 0, len(s.sessions))
	for _, sess := range s.sessions {
		out = append(out, sess.partial())
	}
	return out
}

// WriteChunk appends the bytes of r to the upload, which must stand at
// offset and may hold no more than size bytes (its declared size), and
// returns the new offset. The bytes are on disk (synced) when it returns.
//
// A chunk that does not start at the upload's offset — replayed,
// overlapping or skipping ahead — is refused with an *OffsetError that
// carries the offset to resume from. Bytes beyond size are never written:
// reading stops one byte past it, the upload is deleted and the error
// wraps ErrTooLarge. When r fails or ctx ends mid-chunk, the bytes
// received so far are kept and the error wraps ErrInterrupted (or is the
// context's error) with the new offset returned, so a phone on a weak
// network loses nothing it managed to send. A concurrent chunk for the
// same upload gets ErrBusy. A size over the store's limit deletes the
// upload (ErrTooLarge) before a byte is read.
func (s *Store) WriteChunk(ctx context.Context, id string, offset, size int64, r io.Reader) (int64, error) {
	sess, err := s.session(id)
	if err != nil {
		return 0, err
	}
	if !sess.mu.TryLock() {
		return sess.committed.Load(), fmt.Errorf("upload %s: %w", id, ErrBusy)
	}
	defer sess.mu.Unlock()
	defer s.removeIfGone(sess)
	if sess.gone.Load() {
		return 0, fmt.Errorf("upload %s: %w", id, ErrNotFound)
	}
	if offset != sess.offset {
		return sess.offset, &OffsetError{ID: id, Offset: sess.offset, Got: offset}
	}

	f, err := os.OpenFile(filepath.Join(sess.dir, "data"), os.O_WRONLY, 0)
	if err != nil {
		return sess.offset, fmt.Errorf("upload %s: %w", id, err)
	}
	defer f.Close()

	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := *bufp
	if size > s.maxSize {
		s.drop(sess)
		return 0, fmt.Errorf("upload %s: %d bytes declared, limit %d: %w", id, size, s.maxSize, ErrTooLarge)
	}
	remaining := size - sess.offset
	if remaining < 0 {
		return sess.offset, fmt.Errorf("upload %s: %d bytes stored, %d declared: %w", id, sess.offset, size, ErrTooLarge)
	}
	var n int64    // bytes written by this chunk
	var rerr error // why reading stopped, if not EOF
	for {
		if err := ctx.Err(); err != nil {
			rerr = err
			break
		}
		if sess.gone.Load() {
			return 0, fmt.Errorf("upload %s: %w", id, ErrNotFound)
		}
		// Read at most one byte past the declared size: enough to know the
		// client sends too much, never more.
		k, err := r.Read(buf[:min(int64(len(buf)), remaining-n+1)])
		if n+int64(k) > remaining {
			s.drop(sess)
			return 0, fmt.Errorf("upload %s: more than the declared %d bytes: %w", id, size, ErrTooLarge)
		}
		if k > 0 {
			if _, werr := f.WriteAt(buf[:k], sess.offset+n); werr != nil {
				return sess.offset, s.rollback(sess, f, werr)
			}
			sess.hash.Write(buf[:k])
			n += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if n > 0 {
		if err := f.Sync(); err != nil {
			return sess.offset, s.rollback(sess, f, err)
		}
		sess.offset += n
		if err := sess.persist(); err != nil {
			sess.offset -= n
			return sess.offset, s.rollback(sess, f, err)
		}
		sess.committed.Store(sess.offset)
		sess.updated.Store(time.Now().UnixNano())
	}
	switch {
	case rerr == nil:
		return sess.offset, nil
	case errors.Is(rerr, context.Canceled), errors.Is(rerr, context.DeadlineExceeded):
		return sess.offset, fmt.Errorf("upload %s: chunk stopped at offset %d: %w", id, sess.offset, rerr)
	default:
		return sess.offset, fmt.Errorf("upload %s: chunk stopped at offset %d: %w: %w", id, sess.offset, ErrInterrupted, rerr)
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, chunkBufSize); return &b }}

// rollback undoes a chunk that could not be stored: the data file goes back
// to the committed offset and the hash to its committed state.
func (s *Store) rollback(sess *session, f *os.File, cause error) error {
	err := f.Truncate(sess.offset)
	if err == nil {
		var restored *session
		restored, err = s.load(sess.id)
		if err == nil {
			sess.hash = restored.hash
			sess.offset = restored.offset
		}
	}
	if err != nil {
		// The upload cannot be trusted any more.
		s.drop(sess)
		return fmt.Errorf("upload %s: %w (and recovering: %v)", sess.id, cause, err)
	}
	return fmt.Errorf("upload %s: %w", sess.id, cause)
}

// drop forgets the upload and marks it for removal. Called with sess.mu
// held, or by Abort when the upload is not busy.
func (s *Store) drop(sess *session) {
	s.mu.Lock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	s.mu.Unlock()
	sess.gone.Store(true)
}

// removeIfGone removes a dropped upload's directory. Called with sess.mu
// held, so that no chunk is being written into it.
func (s *Store) removeIfGone(sess *session) {
	if sess.gone.Load() {
		os.RemoveAll(sess.dir)
	}
}

// Finish checks that the upload has exactly size bytes (its declared
// size), moves it into the content-addressed blobs (or drops it if the
// same content is already stored) and returns the blob, whose type is
// sniffed from the bytes (declaredType only tells apart the office
// formats built on zip). An upload short of size is kept, to be resumed,
// and the error wraps ErrIncomplete.
func (s *Store) Finish(id string, size int64, declaredType string) (Blob, error) {
	sess, err := s.session(id)
	if err != nil {
		return Blob{}, err
	}
	if !sess.mu.TryLock() {
		return Blob{}, fmt.Errorf("finish upload %s: %w", id, ErrBusy)
	}
	defer sess.mu.Unlock()
	defer s.removeIfGone(sess)
	if sess.gone.Load() {
		return Blob{}, fmt.Errorf("finish upload %s: %w", id, ErrNotFound)
	}
	if sess.offset != size {
		return Blob{}, fmt.Errorf("finish upload %s: %d of %d bytes: %w", id, sess.offset, size, ErrIncomplete)
	}
	data := filepath.Join(sess.dir, "data")
	head, err := readHead(data, 512)
	if err != nil {
		return Blob{}, fmt.Errorf("finish upload %s: %w", id, err)
	}
	blob := Blob{
		Hash:        hex.EncodeToString(sess.hash.Sum(nil)),
		Size:        sess.offset,
		ContentType: sniffType(head, declaredType),
	}
	if blob.Reused, err = s.put(data, blob.Hash); err != nil {
		return Blob{}, fmt.Errorf("finish upload %s: %w", id, err)
	}
	s.drop(sess)
	return blob, nil
}

// Abort deletes a partial upload. If a chunk is being written, the
// upload is forgotten at once and its files are removed when that chunk
// stops.
func (s *Store) Abort(id string) error {
	sess, err := s.session(id)
	if err != nil {
		return err
	}
	s.drop(sess)
	if sess.mu.TryLock() {
		s.removeIfGone(sess)
		sess.mu.Unlock()
		return nil
	}
	// A chunk is being written: it stops at its next read. Remove the
	// files once it has.
	go func() {
		sess.mu.Lock()
		s.removeIfGone(sess)
		sess.mu.Unlock()
	}()
	return nil
}

// ExpireUploads deletes the partial uploads that received nothing for
// olderThan, and any stray entry in the uploads directory, and returns how
// many uploads it deleted. Call it periodically (an hour or a day).
func (s *Store) ExpireUploads(olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan).UnixNano()
	s.mu.Lock()
	var idle []*session
	for _, sess := range s.sessions {
		if sess.updated.Load() <= cutoff {
			idle = append(idle, sess)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, sess := range idle {
		if !sess.mu.TryLock() {
			continue // a chunk is arriving: not abandoned
		}
		if !sess.gone.Load() && sess.updated.Load() <= cutoff {
			s.drop(sess)
			n++
		}
		s.removeIfGone(sess)
		sess.mu.Unlock()
	}

	entries, err := os.ReadDir(s.uploads)
	if err != nil {
		return n, fmt.Errorf("expire uploads: %w", err)
	}
	var errs []error
	for _, e := range entries {
		s.mu.Lock()
		_, live := s.sessions[e.Name()]
		s.mu.Unlock()
		// A fresh entry may be an upload that Begin is creating.
		if fi, err := e.Info(); live || err != nil || fi.ModTime().UnixNano() > cutoff {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.uploads, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("expire uploads: %w", err)
	}
	return n, nil
}
