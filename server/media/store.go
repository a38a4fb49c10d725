package media

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
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Defaults of Options.
const (
	DefaultMaxFileSize        = 100 << 20
	DefaultMaxUploadsPerOwner = 20
)

const (
	idBytes      = 16
	chunkBufSize = 64 << 10
	maxOwnerLen  = 256
	maxTypeLen   = 255
	stateVersion = 1
)

// Options configures a Store.
type Options struct {
	// MaxFileSize is the largest file accepted, in bytes. Zero means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// MaxUploadsPerOwner bounds the unfinished uploads of one owner. Zero
	// means DefaultMaxUploadsPerOwner.
	MaxUploadsPerOwner int
	// Quota, if set, returns the bytes an owner already stores and the most
	// they may store; a negative limit means no limit, zero means nothing.
	// It is called without the store's locks held. Unfinished uploads count
	// against the quota by their declared size from Begin on.
	Quota func(owner string) (used, limit int64)
	// Policy refuses blocked names and declared types at Begin, before any
	// byte is stored. Nil means the zero Policy (the defaults).
	Policy *Policy
	// Logger receives the few events the store decides alone (discarding a
	// damaged upload at Open). Nil discards them.
	Logger *slog.Logger
}

// UploadMeta describes an upload, as declared by the client at Begin.
type UploadMeta struct {
	// Owner identifies the uploading user, for the quota. The store does
	// not authorize: the caller checks that only Owner writes, finishes or
	// aborts the upload.
	Owner string
	// Name is the file's name. Begin replaces it with SanitizeName(Name),
	// the name to show and to offer at download; it never reaches the file
	// system.
	Name string
	// DeclaredSize is the exact size the client will send, in bytes.
	DeclaredSize int64
	// DeclaredType is the content type the client claims, or "". It is
	// checked by the policy and never served: downloads use the type
	// sniffed from the bytes.
	DeclaredType string
	// Scope limits deduplication: content is stored once per scope, and
	// an upload in one scope never finds the blob of another (the blob's
	// hash covers the scope). The files service scopes by room, so that
	// an upload cannot learn whether the same bytes exist in a room the
	// uploader is not in. "" is the unscoped content hash.
	Scope string
}

// Upload is the state of a resumable upload.
type Upload struct {
	// ID is random and is the only thing of the upload used in a path.
	ID   string
	Meta UploadMeta
	// Offset is the number of bytes received and durably stored: the
	// offset of the next chunk.
	Offset  int64
	Created time.Time
	// Updated is the time of the last chunk.
	Updated time.Time
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

// Store keeps uploads and blobs in a directory. Its methods are safe for
// concurrent use. It holds no open files or goroutines between calls.
type Store struct {
	dir, blobs, uploads string
	maxSize             int64
	maxOpen             int
	quota               func(string) (int64, int64)
	policy              *Policy
	log                 *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session
	reserved map[string]int64 // owner → declared bytes of unfinished uploads
	open     map[string]int   // owner → number of unfinished uploads

	blobMu sync.Mutex // serializes moves into blobs/ with Remove
}

// session is an unfinished upload. mu is held while a chunk is written or
// the upload finishes; offset and hash change only under it. committed and
// updated mirror them for Status without waiting for a writer.
type session struct {
	mu      sync.Mutex
	id      string
	dir     string
	meta    UploadMeta
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
	Owner   string    `json:"owner"`
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Type    string    `json:"type,omitempty"`
	Scope   string    `json:"scope,omitempty"`
	Created time.Time `json:"created"`
	Offset  int64     `json:"offset"`
	Hash    []byte    `json:"sha256_state"`
}

// Open opens (creating if needed) the store in dir and reloads the
// unfinished uploads found there. A damaged upload is discarded and logged.
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{
		dir:      dir,
		blobs:    filepath.Join(dir, "blobs"),
		uploads:  filepath.Join(dir, "uploads"),
		maxSize:  opts.MaxFileSize,
		maxOpen:  opts.MaxUploadsPerOwner,
		quota:    opts.Quota,
		policy:   opts.Policy,
		log:      opts.Logger,
		sessions: make(map[string]*session),
		reserved: make(map[string]int64),
		open:     make(map[string]int),
	}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxFileSize
	}
	if s.maxOpen <= 0 {
		s.maxOpen = DefaultMaxUploadsPerOwner
	}
	if s.policy == nil {
		s.policy = &Policy{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{dir, s.blobs, s.uploads} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open media store: %w", err)
		}
	}
	entries, err := os.ReadDir(s.uploads)
	if err != nil {
		return nil, fmt.Errorf("open media store: %w", err)
	}
	for _, e := range entries {
		id := e.Name()
		if !validID(id) || !e.IsDir() {
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
		s.reserved[sess.meta.Owner] += sess.meta.DeclaredSize
		s.open[sess.meta.Owner]++
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// MaxFileSize returns the largest file accepted.
func (s *Store) MaxFileSize() int64 { return s.maxSize }

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
	if st.Version != stateVersion || st.Owner == "" || st.Size < 0 || st.Offset < 0 || st.Offset > st.Size {
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
	sess := &session{
		id:  id,
		dir: dir,
		meta: UploadMeta{
			Owner:        st.Owner,
			Name:         st.Name,
			DeclaredSize: st.Size,
			DeclaredType: st.Type,
			Scope:        st.Scope,
		},
		created: st.Created,
		offset:  offset,
		hash:    h,
	}
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

// Begin starts an upload. It refuses, before storing anything: a malformed
// request (ErrBadRequest), a blocked name or declared type (*RefusedError),
// a declared size above the limit (ErrTooLarge), one the owner's quota
// cannot hold (ErrQuota), and too many unfinished uploads
// (ErrTooManyUploads).
func (s *Store) Begin(meta UploadMeta) (Upload, error) {
	switch {
	case meta.Owner == "" || len(meta.Owner) > maxOwnerLen || !utf8.ValidString(meta.Owner):
		return Upload{}, fmt.Errorf("begin upload: owner: %w", ErrBadRequest)
	case len(meta.Scope) > maxOwnerLen || !utf8.ValidString(meta.Scope) || strings.ContainsRune(meta.Scope, 0):
		return Upload{}, fmt.Errorf("begin upload: scope: %w", ErrBadRequest)
	case meta.DeclaredSize < 0:
		return Upload{}, fmt.Errorf("begin upload: negative size %d: %w", meta.DeclaredSize, ErrBadRequest)
	case meta.DeclaredSize > s.maxSize:
		return Upload{}, fmt.Errorf("begin upload: %d bytes, limit %d: %w", meta.DeclaredSize, s.maxSize, ErrTooLarge)
	}
	meta.Name = SanitizeName(meta.Name)
	if t := strings.TrimSpace(meta.DeclaredType); t != "" {
		mt, _, err := mime.ParseMediaType(t)
		if err != nil || len(t) > maxTypeLen {
			return Upload{}, fmt.Errorf("begin upload: content type: %w", ErrBadRequest)
		}
		meta.DeclaredType = mt
	} else {
		meta.DeclaredType = ""
	}
	if v := s.policy.CheckName(meta.Name, meta.DeclaredType); !v.Allowed {
		return Upload{}, fmt.Errorf("begin upload: %w", &RefusedError{Verdict: v})
	}
	if err := s.reserve(meta.Owner, meta.DeclaredSize); err != nil {
		return Upload{}, fmt.Errorf("begin upload: %w", err)
	}
	sess, err := s.create(meta)
	if err != nil {
		s.release(meta.Owner, meta.DeclaredSize)
		return Upload{}, fmt.Errorf("begin upload: %w", err)
	}
	s.mu.Lock()
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	return sess.upload(), nil
}

// reserve counts size against owner's quota and open uploads.
func (s *Store) reserve(owner string, size int64) error {
	used, limit := int64(0), int64(-1)
	if s.quota != nil {
		used, limit = s.quota(owner)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[owner] >= s.maxOpen {
		return fmt.Errorf("%d unfinished uploads: %w", s.open[owner], ErrTooManyUploads)
	}
	if limit >= 0 && used+s.reserved[owner]+size > limit {
		return fmt.Errorf("%d bytes used, %d reserved, %d more asked, limit %d: %w",
			used, s.reserved[owner], size, limit, ErrQuota)
	}
	s.reserved[owner] += size
	s.open[owner]++
	return nil
}

func (s *Store) release(owner string, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(owner, size)
}

func (s *Store) releaseLocked(owner string, size int64) {
	s.reserved[owner] -= size
	if s.open[owner]--; s.open[owner] <= 0 {
		delete(s.open, owner)
		delete(s.reserved, owner)
	}
}

func (s *Store) create(meta UploadMeta) (*session, error) {
	b := make([]byte, idBytes)
	rand.Read(b)
	id := hex.EncodeToString(b)
	dir := filepath.Join(s.uploads, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now()
	sess := &session{id: id, dir: dir, meta: meta, created: now, hash: scopedHash(meta.Scope)}
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
		return nil, err
	}
	return sess, nil
}

func (u *session) upload() Upload {
	return Upload{
		ID:      u.id,
		Meta:    u.meta,
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
		Owner:   u.meta.Owner,
		Name:    u.meta.Name,
		Size:    u.meta.DeclaredSize,
		Scope:   u.meta.Scope,
		Type:    u.meta.DeclaredType,
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

// session returns the unfinished upload id, or an error wrapping
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

// Status returns the upload's state; a client that lost its connection
// asks it and resumes from Offset.
func (s *Store) Status(id string) (Upload, error) {
	sess, err := s.session(id)
	if err != nil {
		return Upload{}, err
	}
	return sess.upload(), nil
}

// WriteChunk appends the bytes of r to the upload, which must stand at
// offset, and returns the new offset. The bytes are on disk (synced) when
// it returns.
//
// A chunk that does not start at the upload's offset — replayed,
// overlapping or skipping ahead — is refused with an *OffsetError that
// carries the offset to resume from. Bytes beyond the declared size are
// never written: reading stops one byte past it, the upload is deleted and
// the error wraps ErrTooLarge. When r fails or ctx ends mid-chunk, the
// bytes received so far are kept and the error wraps ErrInterrupted (or is
// the context's error) with the new offset returned, so a phone on a weak
// network loses nothing it managed to send. A concurrent chunk for the same
// upload gets ErrBusy.
func (s *Store) WriteChunk(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
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
	if s.quota != nil {
		// The declared size is reserved; this catches a quota lowered since.
		used, limit := s.quota(sess.meta.Owner)
		s.mu.Lock()
		reserved := s.reserved[sess.meta.Owner]
		s.mu.Unlock()
		if limit >= 0 && used+reserved > limit {
			return sess.offset, fmt.Errorf("upload %s: %d bytes used, %d reserved, limit %d: %w", id, used, reserved, limit, ErrQuota)
		}
	}

	f, err := os.OpenFile(filepath.Join(sess.dir, "data"), os.O_WRONLY, 0)
	if err != nil {
		return sess.offset, fmt.Errorf("upload %s: %w", id, err)
	}
	defer f.Close()

	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := *bufp
	remaining := sess.meta.DeclaredSize - sess.offset
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
			return 0, fmt.Errorf("upload %s: more than the declared %d bytes: %w", id, sess.meta.DeclaredSize, ErrTooLarge)
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
		s.releaseLocked(sess.meta.Owner, sess.meta.DeclaredSize)
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

// Finish checks that the upload has exactly its declared size, moves it
// into the content-addressed blobs (or drops it if the same content is
// already stored) and returns the blob. An upload short of its declared
// size is kept, to be resumed, and the error wraps ErrIncomplete.
func (s *Store) Finish(id string) (Blob, error) {
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
	if sess.offset != sess.meta.DeclaredSize {
		return Blob{}, fmt.Errorf("finish upload %s: %d of %d bytes: %w", id, sess.offset, sess.meta.DeclaredSize, ErrIncomplete)
	}
	data := filepath.Join(sess.dir, "data")
	head, err := readHead(data, 512)
	if err != nil {
		return Blob{}, fmt.Errorf("finish upload %s: %w", id, err)
	}
	blob := Blob{
		Hash:        hex.EncodeToString(sess.hash.Sum(nil)),
		Size:        sess.offset,
		ContentType: sniffType(head, sess.meta.DeclaredType),
	}
	if blob.Reused, err = s.put(data, blob.Hash); err != nil {
		return Blob{}, fmt.Errorf("finish upload %s: %w", id, err)
	}
	s.drop(sess)
	return blob, nil
}

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

// Abort deletes an unfinished upload. If a chunk is being written, the
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

// ExpireUploads deletes the unfinished uploads that received nothing for
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

// BlobPath returns the path of the blob hash (which may not exist). It
// returns an error wrapping ErrNotFound for a malformed hash.
func (s *Store) BlobPath(hash string) (string, error) {
	if !validHash(hash) {
		return "", fmt.Errorf("blob %.70q: %w", hash, ErrNotFound)
	}
	return filepath.Join(s.blobs, hash[:2], hash), nil
}

// Exists reports whether the blob hash is stored.
func (s *Store) Exists(hash string) bool {
	p, err := s.BlobPath(hash)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// Remove deletes the blob hash; removing a missing blob is not an error.
// Reference counting is the caller's: it must not remove a blob while an
// upload of the same content may be finishing, nor one still referenced.
func (s *Store) Remove(hash string) error {
	p, err := s.BlobPath(hash)
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

// WalkBlobs calls fn for every stored blob, in no particular order, until
// fn returns an error. The caller uses it to find blobs no message refers
// to (for instance after a crash between Finish and the caller's commit).
func (s *Store) WalkBlobs(fn func(hash string, size int64, modTime time.Time) error) error {
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

func validID(id string) bool { return len(id) == 2*idBytes && isLowerHex(id) }

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
