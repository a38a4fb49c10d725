package files

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"strings"
	"time"

	"relais/server/chat"
	"relais/server/id"
	"relais/server/media"
	"relais/server/proto"
	"relais/server/store"
)

// ChunkSize is the chunk size the node suggests: small enough for a phone
// on a weak network to resume without losing much, large enough to cost
// little per request. Chunks of any size are accepted.
const ChunkSize = 1 << 20

// encryptedMagic starts every "relais file v1" blob (media's sealed.go);
// encryptedMin is the smallest one (header, commitment, one empty chunk).
const (
	encryptedMagic = "RELAISF1"
	encryptedMin   = 8 + 32 + 16
)

// UploadState is where an upload stands.
type UploadState struct {
	ID     string `json:"id"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	// ChunkSize is the suggested size of each PUT.
	ChunkSize int `json:"chunk_size,omitempty"`
}

// Begin starts an upload of a file for a room: the user must be joined and
// allowed to send there. The declared size is checked against the
// largest file and the user's quota (finished files and unfinished uploads
// together), the name and declared type against the built-in policy. In
// an encrypted room whose node scans encrypted files, the file key sealed
// to the scanner key is required, and checked to open.
func (s *Service) Begin(ctx context.Context, a chat.Actor, req BeginRequest) (UploadState, error) {
	var room store.Room
	if err := s.db.View(func(tx *store.Tx) error {
		var err error
		room, err = chat.Access(tx, a, req.Room, chat.ActSend)
		return err
	}); err != nil {
		return UploadState{}, err
	}
	var key *store.SealedKey
	switch {
	case !room.Encrypted && req.Encrypted != nil:
		return UploadState{}, proto.Errorf(proto.CodeBadRequest, "this room is not end-to-end encrypted: send the file itself, without a sealed key")
	case room.Encrypted && s.scanEnc:
		if req.Encrypted == nil {
			return UploadState{}, proto.Errorf(proto.CodeBadRequest, "this node scans the files of encrypted rooms: seal the file key to the scanner key (GET /api/v1/media/scanner-key) and send it as encrypted")
		}
		// Open it once now, so that a client bug is an error at once and
		// not a quarantine later; the key is forgotten at once.
		fileKey, err := s.scanKey.OpenSealedKey(req.Encrypted.Enc, req.Encrypted.Sealed)
		if err != nil {
			return UploadState{}, proto.Errorf(proto.CodeUndecryptable, "the sealed file key does not open with this node's scanner key")
		}
		clear(fileKey)
		key = &store.SealedKey{Enc: req.Encrypted.Enc, Sealed: req.Encrypted.Sealed}
	}
	// Deduplication is per room: the same bytes already stored for
	// another room are a new blob here, checked, scanned and answered as
	// any new content. Otherwise a "clean" (or "quarantined") answer at
	// once would tell anyone whether a guessed file exists in a room they
	// are not in.
	meta := media.UploadMeta{Owner: a.User, Name: req.Name, DeclaredSize: req.Size, DeclaredType: req.Type, Scope: room.ID}
	if room.Encrypted {
		// The type of an encrypted file is the ciphertext's; the real one
		// travels inside the MLS message.
		meta.DeclaredType = ""
	}
	up, err := s.media.Begin(meta)
	if err != nil {
		return UploadState{}, err
	}
	rec := store.Upload{ID: up.ID, Owner: a.User, Room: room.ID, Size: req.Size, Encrypted: room.Encrypted,
		SealedKey: key, Created: up.Created}
	if err := s.db.Update(ctx, func(tx *store.Tx) error { return tx.PutUpload(rec) }); err != nil {
		s.media.Abort(up.ID)
		return UploadState{}, err
	}
	s.log.Debug("upload started", "upload", up.ID, "user", a.User, "room", room.ID, "size", req.Size)
	return UploadState{ID: up.ID, Size: req.Size, ChunkSize: ChunkSize}, nil
}

// errNoUpload hides whether an upload of someone else exists.
func errNoUpload() error { return proto.Errorf(proto.CodeNotFound, "no such upload") }

// ownUpload returns the user's upload.
func (s *Service) ownUpload(userID, uploadID string) (store.Upload, error) {
	var up store.Upload
	err := s.db.View(func(tx *store.Tx) error {
		var err error
		up, err = tx.Upload(uploadID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || err == nil && up.Owner != userID {
		return up, errNoUpload()
	}
	return up, err
}

// forget deletes an upload's record (its bytes are gone or going).
func (s *Service) forget(uploadID string) {
	if err := s.db.Update(context.Background(), func(tx *store.Tx) error { return tx.DeleteUpload(uploadID) }); err != nil {
		s.log.Warn("forgetting an upload failed", "upload", uploadID, "err", err)
	}
}

// Status returns where the user's upload stands, to resume it.
func (s *Service) Status(userID, uploadID string) (UploadState, error) {
	if _, err := s.ownUpload(userID, uploadID); err != nil {
		return UploadState{}, err
	}
	up, err := s.media.Status(uploadID)
	if errors.Is(err, media.ErrNotFound) {
		s.forget(uploadID)
		return UploadState{}, errNoUpload()
	}
	if err != nil {
		return UploadState{}, err
	}
	return UploadState{ID: up.ID, Offset: up.Offset, Size: up.Meta.DeclaredSize, ChunkSize: ChunkSize}, nil
}

// WriteChunk appends body to the user's upload, which must stand at
// offset (media.Store.WriteChunk). More bytes than declared delete the
// upload (too_large); length, when known, is checked before reading.
func (s *Service) WriteChunk(ctx context.Context, userID, uploadID string, offset, length int64, body io.Reader) (int64, error) {
	up, err := s.ownUpload(userID, uploadID)
	if err != nil {
		return 0, err
	}
	if length >= 0 && offset >= 0 && length > up.Size-offset {
		s.Abort(userID, uploadID)
		return 0, proto.Errorf(proto.CodeTooLarge, "a chunk of %d bytes at offset %d goes past the declared %d bytes: the upload is deleted", length, offset, up.Size)
	}
	n, err := s.media.WriteChunk(ctx, uploadID, offset, body)
	switch {
	case errors.Is(err, media.ErrTooLarge):
		s.forget(uploadID)
		return n, proto.Errorf(proto.CodeTooLarge, "more than the declared %d bytes: the upload is deleted", up.Size)
	case errors.Is(err, media.ErrNotFound):
		s.forget(uploadID)
		return n, errNoUpload()
	}
	return n, err
}

// Abort deletes the user's upload.
func (s *Service) Abort(userID, uploadID string) error {
	if _, err := s.ownUpload(userID, uploadID); err != nil {
		return err
	}
	if err := s.media.Abort(uploadID); err != nil && !errors.Is(err, media.ErrNotFound) {
		return err
	}
	s.forget(uploadID)
	return nil
}

// Finish completes the user's upload: the bytes must number exactly the
// declared size. The content is checked at once by the built-in policy
// (a refusal keeps nothing), pictures of unencrypted rooms get their
// dimensions and a thumbnail (pictures with more than
// Tuning.MaxImagePixels are refused as decompression bombs), the file is
// recorded, and the antivirus scan starts in the background. The answer's
// state is pending until the scan ends (or clean, when the same content
// was already scanned for the same room; unscanned for an encrypted file
// the node cannot open).
func (s *Service) Finish(ctx context.Context, a chat.Actor, uploadID string) (proto.File, error) {
	f, err := s.finish(ctx, a, uploadID)
	s.stats.upload(err)
	return f, err
}

func (s *Service) finish(ctx context.Context, a chat.Actor, uploadID string) (proto.File, error) {
	up, err := s.ownUpload(a.User, uploadID)
	if err != nil {
		return proto.File{}, err
	}
	if err := s.db.View(func(tx *store.Tx) error {
		_, err := chat.Access(tx, a, up.Room, chat.ActSend)
		return err
	}); err != nil {
		return proto.File{}, err
	}

	s.blobMu.RLock()
	locked := true
	unlock := func() {
		if locked {
			s.blobMu.RUnlock()
			locked = false
		}
	}
	defer unlock()
	pending, err := s.media.Status(uploadID)
	if err != nil {
		if errors.Is(err, media.ErrNotFound) {
			s.forget(uploadID)
			return proto.File{}, errNoUpload()
		}
		return proto.File{}, err
	}
	blob, err := s.media.Finish(uploadID)
	if errors.Is(err, media.ErrNotFound) {
		s.forget(uploadID)
		return proto.File{}, errNoUpload()
	}
	if err != nil {
		return proto.File{}, err
	}
	var leftovers []string // blobs that may be unreferenced at the end
	defer func() {
		unlock()
		for _, h := range leftovers {
			s.removeBlob(h)
		}
	}()

	now := time.Now()
	nb := store.Blob{Hash: blob.Hash, Size: blob.Size, Mime: blob.ContentType, Encrypted: up.Encrypted, Created: now}
	var known bool
	if err := s.db.View(func(tx *store.Tx) error {
		_, err := tx.Blob(blob.Hash)
		known = err == nil
		return nil
	}); err != nil {
		return proto.File{}, err
	}
	refuse := func(err error) (proto.File, error) {
		// The upload is consumed: its bytes are the blob's now.
		leftovers = append(leftovers, blob.Hash)
		s.forget(uploadID)
		if pe := proto.AsError(err); pe != nil {
			s.log.Info("file refused", "upload", uploadID, "user", a.User, "room", up.Room, "code", pe.Code)
		}
		return proto.File{}, err
	}
	if up.Encrypted {
		nb.Mime = "application/octet-stream"
		if err := s.checkEncrypted(blob.Hash, blob.Size); err != nil {
			return refuse(err)
		}
	} else if !known {
		if err := s.inspect(ctx, &nb, &leftovers); err != nil {
			return refuse(err)
		}
	}
	switch {
	case !up.Encrypted:
		nb.State = store.BlobPending
	case up.SealedKey != nil && s.scanKey != nil:
		nb.State = store.BlobPending
	default:
		nb.State = store.BlobUnscanned
	}

	f := store.File{ID: newFileID(s.node), Owner: a.User, Room: up.Room, Name: pending.Meta.Name, Size: blob.Size,
		Hash: blob.Hash, Encrypted: up.Encrypted, Created: now}
	var b store.Blob
	var scan bool
	var refused error
	err = s.db.Update(ctx, func(tx *store.Tx) error {
		scan, refused = false, nil
		if err := tx.DeleteUpload(uploadID); err != nil {
			return err
		}
		var err error
		b, err = tx.Blob(nb.Hash)
		switch {
		case errors.Is(err, store.ErrNotFound):
			b = nb
			if err := tx.CreateBlob(b); err != nil {
				return err
			}
			scan = b.State == store.BlobPending
		case err != nil:
			return err
		case b.State == store.BlobQuarantined:
			// Content already refused: refuse it again, keep nothing.
			refused = quarantinedError(b)
			return nil
		case b.State == store.BlobUnscanned && nb.State == store.BlobPending:
			// Content nobody could scan, now uploaded as a plain file or
			// with a sealed key: scan it.
			b.State = store.BlobPending
			if err := tx.PutBlob(b); err != nil {
				return err
			}
			scan = true
		}
		if scan {
			if err := tx.PutPendingScan(b.Hash, up.SealedKey); err != nil {
				return err
			}
		}
		return tx.CreateFile(f)
	})
	if err != nil {
		leftovers = append(leftovers, nb.Hash, nb.Thumb)
		s.forget(uploadID)
		return proto.File{}, err
	}
	if nb.Thumb != "" && b.Thumb != nb.Thumb {
		leftovers = append(leftovers, nb.Thumb) // another upload recorded the blob first
	}
	if refused != nil {
		leftovers = append(leftovers, nb.Hash)
		s.log.Info("file refused: same content as a quarantined file", "upload", uploadID, "user", a.User, "room", up.Room, "code", b.Code)
		return proto.File{}, refused
	}
	s.log.Info("file stored", "file", f.ID, "user", a.User, "room", f.Room, "size", f.Size, "blob", f.Hash, "state", b.State, "reused", blob.Reused)
	if scan {
		s.queueScan(b.Hash)
	}
	return fileMeta(f, b), nil
}

// checkEncrypted refuses a file for an encrypted room that is not a
// "relais file v1" blob: a client that would otherwise post a file in
// clear into an encrypted room.
func (s *Service) checkEncrypted(hash string, size int64) error {
	f, err := s.media.OpenBlob(hash)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, len(encryptedMagic))
	if _, err := io.ReadFull(f, head); err != nil && size >= encryptedMin {
		return err
	}
	if size < encryptedMin || string(head) != encryptedMagic {
		return proto.Errorf(proto.CodeNotEncrypted, "files of an end-to-end encrypted room must be encrypted by the client (relais file v1)")
	}
	return nil
}

// inspect runs the built-in policy on new content of an unencrypted room
// and, for a picture, reads its dimensions and makes its thumbnail (whose
// blob it adds to leftovers, in case the file is not recorded).
func (s *Service) inspect(ctx context.Context, nb *store.Blob, leftovers *[]string) error {
	path, err := s.media.BlobPath(nb.Hash)
	if err != nil {
		return err
	}
	v, err := s.policy.CheckFile(path)
	if err != nil {
		return err
	}
	if !v.Allowed {
		return proto.Errorf(v.Code, "%s", v.Reason)
	}
	switch nb.Mime {
	case "image/png", "image/jpeg", "image/gif":
	default:
		return nil
	}
	w, h, err := imageSize(path)
	if err != nil {
		return nil // not a readable picture: no thumbnail; the antivirus decides
	}
	if int64(w)*int64(h) > s.tune.MaxImagePixels {
		return proto.Errorf(proto.CodeImageTooLarge, "a picture of %d×%d pixels is over the limit of %d million pixels", w, h, s.tune.MaxImagePixels/1_000_000)
	}
	nb.Width, nb.Height = w, h
	if int64(w)*int64(h) > media.DefaultMaxPixels {
		return nil // kept, but too large to decode here for a thumbnail
	}
	select {
	case s.thumbs <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.thumbs }()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	thumb, ctype, dw, dh, err := media.Thumbnail(f, media.DefaultMaxPixels, media.DefaultThumbBox)
	f.Close()
	if err != nil {
		s.log.Debug("no thumbnail", "blob", nb.Hash, "code", media.ErrorCode(err))
		return nil
	}
	tb, err := s.media.Put(bytes.NewReader(thumb))
	if err != nil {
		return err
	}
	*leftovers = append(*leftovers, tb.Hash)
	nb.Width, nb.Height = dw, dh // as displayed (EXIF orientation applied)
	nb.Thumb, nb.ThumbMime = tb.Hash, ctype
	return nil
}

// maxImageHeader bounds what is read to learn a picture's dimensions.
const maxImageHeader = 4 << 20

// imageSize reads a PNG, JPEG or GIF's dimensions from its header,
// without decoding pixels.
func imageSize(path string) (int, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var head [8]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return 0, 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, 0, err
	}
	var config func(io.Reader) (image.Config, error)
	switch {
	case bytes.HasPrefix(head[:], []byte("\x89PNG\r\n\x1a\n")):
		config = png.DecodeConfig
	case bytes.HasPrefix(head[:], []byte("\xff\xd8\xff")):
		config = jpeg.DecodeConfig
	case bytes.HasPrefix(head[:], []byte("GIF8")):
		config = gif.DecodeConfig
	default:
		return 0, 0, errors.New("not a PNG, JPEG or GIF")
	}
	c, err := config(io.LimitReader(f, maxImageHeader))
	if err != nil {
		return 0, 0, err
	}
	if c.Width <= 0 || c.Height <= 0 {
		return 0, 0, fmt.Errorf("image of %d×%d", c.Width, c.Height)
	}
	return c.Width, c.Height, nil
}

var fileIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newFileID returns a fresh file id, f-<node>-<16>, shaped like the ids of
// package id.
func newFileID(node string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return "f-" + node + "-" + fileIDEncoding.EncodeToString(b)
}

// validFileID reports whether s is shaped like a file id.
func validFileID(s string) bool {
	node, rnd, ok := strings.Cut(strings.TrimPrefix(s, "f-"), "-")
	if !ok || !strings.HasPrefix(s, "f-") || !id.Valid(id.Node, node) || len(rnd) != 16 {
		return false
	}
	for i := 0; i < len(rnd); i++ {
		if c := rnd[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// fileMeta is a file as clients see it. Encrypted files show only what the
// node knows anyway: the name and type travel inside the MLS message.
func fileMeta(f store.File, b store.Blob) proto.File {
	out := proto.File{ID: f.ID, Size: f.Size, State: string(b.State), Code: b.Code, Reason: b.Reason, Checked: checkedBy(b.State, b.Antivirus)}
	if f.Encrypted {
		return out
	}
	out.Name, out.Mime = f.Name, b.Mime
	out.Width, out.Height, out.Thumb = b.Width, b.Height, b.Thumb != ""
	return out
}

// checkedBy says what passed a clean file: clients must not credit an
// antivirus with a file that only the built-in policy looked at.
func checkedBy(state store.BlobState, antivirus bool) string {
	switch {
	case state != store.BlobClean:
		return ""
	case antivirus:
		return proto.CheckedAntivirus
	default:
		return proto.CheckedPolicy
	}
}

// quarantinedError is the answer about a quarantined file: 410 with the
// verdict's code in detail.
func quarantinedError(b store.Blob) error {
	e := proto.Errorf(proto.CodeQuarantined, "this file was refused by the antivirus and deleted: %s", b.Reason)
	e.Detail = b.Code
	return e
}
