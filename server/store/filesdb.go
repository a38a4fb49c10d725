package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Attachments: the records of files.go's buckets. The content itself is
// on disk (package media); these records say who uploaded what for which
// room, which message carries it, the antivirus verdict and how many files
// share each blob.

// BlobState is where a blob stands in the antivirus pipeline.
type BlobState string

// The states of a blob.
const (
	// BlobPending waits for the antivirus; only its uploaders may read it.
	BlobPending BlobState = "pending"
	// BlobClean passed the built-in policy and, when configured, clamd.
	BlobClean BlobState = "clean"
	// BlobQuarantined failed; its content has been deleted.
	BlobQuarantined BlobState = "quarantined"
	// BlobUnscanned is an end-to-end encrypted file the node has no key
	// to open (scanning of encrypted rooms is off).
	BlobUnscanned BlobState = "unscanned"
)

// File is one finished upload: a user's file for one room. Several files
// may share a blob (the same content uploaded twice).
type File struct {
	ID    string `json:"-"`
	Owner string `json:"owner"`
	Room  string `json:"room"`
	// Name is the sanitized name (media.SanitizeName).
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Hash is the lower-case hex SHA-256 of the blob.
	Hash      string    `json:"hash"`
	Encrypted bool      `json:"enc,omitempty"`
	Created   time.Time `json:"created"`
	// Seq is the room event that carries the file; 0 until it is posted.
	Seq uint64 `json:"seq,omitempty"`
}

// Blob is content stored on disk, shared by the files that have it.
type Blob struct {
	Hash string `json:"-"`
	Size int64  `json:"size"`
	// Mime is the content type sniffed from the bytes.
	Mime   string    `json:"mime"`
	State  BlobState `json:"state"`
	Code   string    `json:"code,omitempty"`   // why it is quarantined
	Reason string    `json:"reason,omitempty"` // the same, for people
	// Refs counts the files with this blob or, for a thumbnail, the blobs
	// it is the thumbnail of. A blob at zero is deleted.
	Refs      int  `json:"refs"`
	Encrypted bool `json:"enc,omitempty"`
	// Antivirus is true when clamd passed a clean blob; a clean blob
	// without it passed the built-in policy only.
	Antivirus bool `json:"av,omitempty"`
	// Width and Height are an image's dimensions.
	Width  int `json:"w,omitempty"`
	Height int `json:"h,omitempty"`
	// Thumb is the hash of the blob's thumbnail, if it has one.
	Thumb     string    `json:"thumb,omitempty"`
	ThumbMime string    `json:"thumb_mime,omitempty"`
	IsThumb   bool      `json:"is_thumb,omitempty"`
	Created   time.Time `json:"created"`
}

// Upload is an unfinished upload: the one record of it, written before
// its first byte and authoritative (package files); its bytes are on
// disk, named by its ID (package blob).
type Upload struct {
	ID    string `json:"-"`
	Owner string `json:"owner"`
	Room  string `json:"room"`
	// Name is the file's name, sanitized (media.SanitizeName).
	Name string `json:"name,omitempty"`
	// Type is the content type the client declared, checked by the
	// policy; never served (downloads use the sniffed type).
	Type      string     `json:"type,omitempty"`
	Size      int64      `json:"size"`
	Encrypted bool       `json:"enc,omitempty"`
	SealedKey *SealedKey `json:"sealed,omitempty"`
	Created   time.Time  `json:"created"`
}

// SealedKey is the key of an end-to-end encrypted file sealed by its
// uploader to the node's scanner key (HPKE): the encapsulated key and the
// ciphertext.
type SealedKey struct {
	Enc    []byte `json:"enc,omitempty"`
	Sealed []byte `json:"sealed,omitempty"`
}

// Prefixes of the keys of the files bucket.
const (
	fileRecord   = 'f'
	fileByBlob   = 'b'
	fileByOwner  = 'o'
	fileUnposted = 'a'
)

// ErrBadHash is returned for a blob hash that is not 64 hex digits.
var ErrBadHash = errors.New("store: malformed blob hash")

func hashKey(hash string) ([]byte, error) {
	b, err := hex.DecodeString(hash)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%w: %.70q", ErrBadHash, hash)
	}
	return b, nil
}

func fileKey(kind byte, parts ...[]byte) []byte {
	k := []byte{kind}
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func ownerKey(owner, fileID string) []byte {
	return fileKey(fileByOwner, []byte(owner), []byte{0}, []byte(fileID))
}

func unpostedKey(created time.Time, fileID string) []byte {
	return fileKey(fileUnposted, u64(uint64(created.UnixMilli())), []byte(fileID))
}

// Upload returns an unfinished upload.
func (tx *Tx) Upload(id string) (Upload, error) {
	var u Upload
	err := decode(tx.bucket(bUploads).Get([]byte(id)), &u)
	u.ID = id
	return u, err
}

// PutUpload stores an unfinished upload.
func (tx *Tx) PutUpload(u Upload) error {
	if u.ID == "" {
		return errors.New("store: upload without id")
	}
	return tx.bucket(bUploads).Put([]byte(u.ID), encode(u))
}

// DeleteUpload forgets an upload; deleting a missing one is not an error.
func (tx *Tx) DeleteUpload(id string) error {
	return tx.bucket(bUploads).Delete([]byte(id))
}

// Uploads returns every unfinished upload.
func (tx *Tx) Uploads() ([]Upload, error) {
	var out []Upload
	err := tx.bucket(bUploads).ForEach(func(k, v []byte) error {
		var u Upload
		if err := decode(v, &u); err != nil {
			return fmt.Errorf("store: upload %q: %w", k, err)
		}
		u.ID = string(k)
		out = append(out, u)
		return nil
	})
	return out, err
}

// File returns a file.
func (tx *Tx) File(id string) (File, error) {
	var f File
	err := decode(tx.bucket(bFiles).Get(fileKey(fileRecord, []byte(id))), &f)
	f.ID = id
	return f, err
}

// CreateFile stores a new file of an existing blob, adds one reference to
// the blob and counts the file's size against its owner's quota (unless
// the blob is quarantined). The file is listed as not yet posted unless
// f.Seq is set.
func (tx *Tx) CreateFile(f File) error {
	files := tx.bucket(bFiles)
	if f.ID == "" || f.Owner == "" {
		return errors.New("store: file without id or owner")
	}
	if files.Get(fileKey(fileRecord, []byte(f.ID))) != nil {
		return ErrExists
	}
	hk, err := hashKey(f.Hash)
	if err != nil {
		return err
	}
	b, err := tx.Blob(f.Hash)
	if err != nil {
		return fmt.Errorf("store: blob of file %s: %w", f.ID, err)
	}
	b.Refs++
	if err := tx.PutBlob(b); err != nil {
		return err
	}
	if err := files.Put(fileKey(fileRecord, []byte(f.ID)), encode(f)); err != nil {
		return err
	}
	if err := files.Put(fileKey(fileByBlob, hk, []byte(f.ID)), nil); err != nil {
		return err
	}
	size := uint64(f.Size)
	if b.State == BlobQuarantined {
		size = 0
	}
	if err := files.Put(ownerKey(f.Owner, f.ID), u64(size)); err != nil {
		return err
	}
	if f.Seq == 0 {
		return files.Put(unpostedKey(f.Created, f.ID), nil)
	}
	return nil
}

// PostFile records that event seq of the file's room carries the file. A
// file is posted once: ErrExists if it already is.
func (tx *Tx) PostFile(id string, seq uint64) error {
	f, err := tx.File(id)
	if err != nil {
		return err
	}
	if f.Seq != 0 {
		return ErrExists
	}
	files := tx.bucket(bFiles)
	if err := files.Delete(unpostedKey(f.Created, f.ID)); err != nil {
		return err
	}
	f.Seq = seq
	return files.Put(fileKey(fileRecord, []byte(f.ID)), encode(f))
}

// DeleteFile deletes a file and drops its reference to its blob. It
// returns the hashes of the blobs no longer referenced — the file's blob
// and its thumbnail — whose records it deleted too: the caller removes
// their content once the transaction has committed. Deleting a missing
// file returns ErrNotFound.
func (tx *Tx) DeleteFile(id string) (freed []string, err error) {
	f, err := tx.File(id)
	if err != nil {
		return nil, err
	}
	files := tx.bucket(bFiles)
	hk, err := hashKey(f.Hash)
	if err != nil {
		return nil, err
	}
	for _, k := range [][]byte{
		fileKey(fileRecord, []byte(f.ID)),
		fileKey(fileByBlob, hk, []byte(f.ID)),
		ownerKey(f.Owner, f.ID),
		unpostedKey(f.Created, f.ID),
	} {
		if err := files.Delete(k); err != nil {
			return nil, err
		}
	}
	return tx.unref(f.Hash)
}

// unref drops one reference to a blob, deleting it (and, in turn, its
// reference to its thumbnail) at zero. It returns the deleted blobs.
func (tx *Tx) unref(hash string) ([]string, error) {
	b, err := tx.Blob(hash)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if b.Refs--; b.Refs > 0 {
		return nil, tx.PutBlob(b)
	}
	hk, _ := hashKey(hash)
	if err := tx.bucket(bBlobs).Delete(hk); err != nil {
		return nil, err
	}
	if err := tx.bucket(bPendingScans).Delete(hk); err != nil {
		return nil, err
	}
	freed := []string{hash}
	if b.Thumb != "" {
		more, err := tx.unref(b.Thumb)
		if err != nil {
			return nil, err
		}
		freed = append(freed, more...)
	}
	return freed, nil
}

// FilesOfBlob returns the files that have a blob.
func (tx *Tx) FilesOfBlob(hash string) ([]File, error) {
	hk, err := hashKey(hash)
	if err != nil {
		return nil, err
	}
	prefix := fileKey(fileByBlob, hk)
	var out []File
	c := tx.bucket(bFiles).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		f, err := tx.File(string(k[len(prefix):]))
		if err != nil {
			return nil, fmt.Errorf("store: file index of blob %s: %w", hash, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// UserFileBytes returns the bytes of files a user stores, as counted
// against their quota: every file they uploaded and that is not
// quarantined, shared blobs counted once per file.
func (tx *Tx) UserFileBytes(owner string) int64 {
	prefix := ownerKey(owner, "")
	var n int64
	c := tx.bucket(bFiles).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) == 8 {
			n += int64(binary.BigEndian.Uint64(v))
		}
	}
	return n
}

// UnpostedFiles returns up to limit ids of files created before t and not
// posted in any message, oldest first.
func (tx *Tx) UnpostedFiles(before time.Time, limit int) ([]string, error) {
	prefix := []byte{fileUnposted}
	end := uint64(before.UnixMilli())
	var out []string
	c := tx.bucket(bFiles).Cursor()
	for k, _ := c.Seek(prefix); k != nil && len(out) < limit && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) < 9 {
			return nil, fmt.Errorf("store: malformed unposted file key %x", k)
		}
		if binary.BigEndian.Uint64(k[1:9]) >= end {
			break
		}
		out = append(out, string(k[9:]))
	}
	return out, nil
}

// Blob returns a blob's record.
func (tx *Tx) Blob(hash string) (Blob, error) {
	hk, err := hashKey(hash)
	if err != nil {
		return Blob{}, err
	}
	var b Blob
	err = decode(tx.bucket(bBlobs).Get(hk), &b)
	b.Hash = hash
	return b, err
}

// PutBlob stores a blob's record as is.
func (tx *Tx) PutBlob(b Blob) error {
	hk, err := hashKey(b.Hash)
	if err != nil {
		return err
	}
	return tx.bucket(bBlobs).Put(hk, encode(b))
}

// CreateBlob stores the record of new content, with no reference yet
// (CreateFile adds them), and adds a reference to its thumbnail, creating
// the thumbnail's record (clean, made by the node) if needed. It returns
// ErrExists if the blob has a record.
func (tx *Tx) CreateBlob(b Blob) error {
	if _, err := tx.Blob(b.Hash); err == nil {
		return ErrExists
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	b.Refs = 0
	if b.Thumb != "" {
		t, err := tx.Blob(b.Thumb)
		switch {
		case errors.Is(err, ErrNotFound):
			t = Blob{Hash: b.Thumb, Mime: b.ThumbMime, State: BlobClean, IsThumb: true, Created: b.Created}
		case err != nil:
			return err
		}
		t.Refs++
		if err := tx.PutBlob(t); err != nil {
			return err
		}
	}
	return tx.PutBlob(b)
}

// SetBlobState records the antivirus verdict on a blob and forgets its
// pending scan (and the sealed key kept for it). Quarantining also drops
// the blob's thumbnail and stops counting its files against their owners'
// quotas; the thumbnail is returned in freed if no other blob uses it.
func (tx *Tx) SetBlobState(hash string, state BlobState, code, reason string, antivirus bool) (b Blob, freed []string, err error) {
	b, err = tx.Blob(hash)
	if err != nil {
		return b, nil, err
	}
	hk, _ := hashKey(hash)
	if err := tx.bucket(bPendingScans).Delete(hk); err != nil {
		return b, nil, err
	}
	b.State, b.Code, b.Reason, b.Antivirus = state, code, reason, antivirus
	if state == BlobQuarantined {
		if b.Thumb != "" {
			if freed, err = tx.unref(b.Thumb); err != nil {
				return b, nil, err
			}
			b.Thumb, b.ThumbMime = "", ""
		}
		files, err := tx.FilesOfBlob(hash)
		if err != nil {
			return b, nil, err
		}
		for _, f := range files {
			if err := tx.bucket(bFiles).Put(ownerKey(f.Owner, f.ID), u64(0)); err != nil {
				return b, nil, err
			}
		}
	}
	return b, freed, tx.PutBlob(b)
}

// PendingScans returns up to limit blobs waiting for the antivirus.
func (tx *Tx) PendingScans(limit int) ([]string, error) {
	var out []string
	c := tx.bucket(bPendingScans).Cursor()
	for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
		out = append(out, hex.EncodeToString(k))
	}
	return out, nil
}

// PendingScan returns what a pending scan needs besides the blob: the
// sealed key of an encrypted file, or nil.
func (tx *Tx) PendingScan(hash string) (*SealedKey, error) {
	hk, err := hashKey(hash)
	if err != nil {
		return nil, err
	}
	var k SealedKey
	if err := decode(tx.bucket(bPendingScans).Get(hk), &k); err != nil {
		return nil, err
	}
	if k.Enc == nil && k.Sealed == nil {
		return nil, nil
	}
	return &k, nil
}

// PutPendingScan queues a blob for the antivirus, with the sealed key of
// an encrypted file (nil otherwise).
func (tx *Tx) PutPendingScan(hash string, key *SealedKey) error {
	hk, err := hashKey(hash)
	if err != nil {
		return err
	}
	if key == nil {
		key = &SealedKey{}
	}
	return tx.bucket(bPendingScans).Put(hk, encode(key))
}
