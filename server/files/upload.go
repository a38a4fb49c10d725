package files

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"os"
	"strings"
	"time"

	"relais/server/blob"
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

// maxUploadsPerOwner bounds the unfinished uploads of one user.
const maxUploadsPerOwner = 20

// maxTypeLen bounds a declared content type.
const maxTypeLen = 255

// Begin starts an upload of a file for a room: the user must be joined and
// allowed to send there. The declared size is checked against the
// largest file and the user's quota (finished files and unfinished uploads
// together), the name and declared type against the built-in policy. In
// an encrypted room whose node scans encrypted files, the file key sealed
// to the scanner key is required, and checked to open.
func (s *Service) Begin(ctx context.Context, a chat.Actor, req proto.UploadRequest) (proto.UploadState, error) {
	var room store.Room
	if err := s.db.View(func(tx *store.Tx) error {
		var err error
		room, err = chat.Access(tx, a, req.Room, chat.ActSend)
		return err
	}); err != nil {
		return proto.UploadState{}, err
	}
	var key *store.SealedKey
	switch {
	case !room.Encrypted && req.Encrypted != nil:
		return proto.UploadState{}, proto.Errorf(proto.CodeBadRequest, "this room is not end-to-end encrypted: send the file itself, without a sealed key")
	case room.Encrypted && s.scanEnc:
		if req.Encrypted == nil {
			return proto.UploadState{}, proto.Errorf(proto.CodeBadRequest, "this node scans the files of encrypted rooms: seal the file key to the scanner key (GET /api/v1/media/scanner-key) and send it as encrypted")
		}
		// Open it once now, so that a client bug is an error at once and
		// not a quarantine later; the key is forgotten at once.
		fileKey, err := s.scanKey.OpenSealedKey(req.Encrypted.Enc, req.Encrypted.Sealed)
		if err != nil {
			return proto.UploadState{}, proto.Errorf(proto.CodeUndecryptable, "the sealed file key does not open with this node's scanner key")
		}
		clear(fileKey)
		key = &store.SealedKey{Enc: req.Encrypted.Enc, Sealed: req.Encrypted.Sealed}
	}
	name, declared, err := s.checkUpload(req, room.Encrypted)
	if err != nil {
		return proto.UploadState{}, err
	}
	rec := store.Upload{ID: blob.NewUploadID(), Owner: a.User, Room: room.ID, Name: name, Type: declared, Size: req.Size,
		Encrypted: room.Encrypted, SealedKey: key, Created: time.Now()}
	// The record first, with the quota in the same transaction: it is the
	// upload; its bytes follow, and bytes without a record are dropped
	// (dropOrphanPartials).
	s.beginMu.RLock()
	defer s.beginMu.RUnlock()
	if err := s.db.Update(ctx, func(tx *store.Tx) error {
		if err := reserve(tx, rec, s.cfg.UserQuota); err != nil {
			return err
		}
		return tx.PutUpload(rec)
	}); err != nil {
		return proto.UploadState{}, err
	}
	// Deduplication is per room: the same bytes already stored for
	// another room are a new blob here, checked, scanned and answered as
	// any new content. Otherwise a "clean" (or "quarantined") answer at
	// once would tell anyone whether a guessed file exists in a room they
	// are not in.
	if _, err := s.blobs.Begin(rec.ID, room.ID); err != nil {
		s.forget(rec.ID)
		return proto.UploadState{}, err
	}
	s.log.Debug("upload started", "upload", rec.ID, "user", a.User, "room", room.ID, "size", req.Size)
	return proto.UploadState{ID: rec.ID, Size: req.Size, ChunkSize: ChunkSize}, nil
}

// checkUpload refuses, before anything is stored, an upload request the
// node would not keep: a declared size above the largest file
// (too_large), a malformed declared type (bad_request), a name or type the
// built-in policy blocks. It returns the name to keep (sanitized: it never
// reaches the file system) and the declared type ("" in an encrypted
// room, whose files are ciphertext: the real type travels inside the MLS
// message).
func (s *Service) checkUpload(req proto.UploadRequest, encrypted bool) (name, declared string, err error) {
	if req.Size < 0 {
		return "", "", proto.Errorf(proto.CodeBadRequest, "size must be the file's exact size in bytes")
	}
	if max := s.blobs.MaxFileSize(); req.Size > max {
		return "", "", proto.Errorf(proto.CodeTooLarge, "a file of %d bytes is over the limit of %d bytes", req.Size, max)
	}
	name = media.SanitizeName(req.Name)
	if t := strings.TrimSpace(req.Type); t != "" && !encrypted {
		mt, _, err := mime.ParseMediaType(t)
		if err != nil || len(t) > maxTypeLen {
			return "", "", proto.Errorf(proto.CodeBadRequest, "type must be a content type such as application/pdf")
		}
		declared = mt
	}
	if v := s.policy.CheckName(name, declared); !v.Allowed {
		return "", "", &media.RefusedError{Verdict: v}
	}
	return name, declared, nil
}

// reserve refuses a new upload, inside the transaction that records it,
// when its owner has too many unfinished uploads or when their quota
// (finished files, and unfinished uploads by their declared size) cannot
// hold it; quota zero or less is no limit.
func reserve(tx *store.Tx, up store.Upload, quota int64) error {
	open, reserved, err := unfinished(tx, up.Owner)
	if err != nil {
		return err
	}
	if open >= maxUploadsPerOwner {
		return proto.Errorf(proto.CodeTooManyUploads, "%d unfinished uploads: finish or cancel one first", open)
	}
	if used := tx.UserFileBytes(up.Owner); quota > 0 && used+reserved+up.Size > quota {
		return proto.Errorf(proto.CodeQuotaExceeded, "%d bytes used, %d reserved, %d more asked, quota %d", used, reserved, up.Size, quota)
	}
	return nil
}

// unfinished counts a user's unfinished uploads and their declared bytes.
func unfinished(tx *store.Tx, owner string) (n int, bytes int64, err error) {
	ups, err := tx.Uploads()
	if err != nil {
		return 0, 0, err
	}
	for _, u := range ups {
		if u.Owner == owner {
			n++
			bytes += u.Size
		}
	}
	return n, bytes, nil
}

// checkQuota refuses a chunk when the user's quota no longer holds what
// they store and have reserved (another file finished since, say).
func (s *Service) checkQuota(owner string) error {
	if s.cfg.UserQuota <= 0 {
		return nil
	}
	return s.db.View(func(tx *store.Tx) error {
		_, reserved, err := unfinished(tx, owner)
		if err != nil {
			return err
		}
		if used := tx.UserFileBytes(owner); used+reserved > s.cfg.UserQuota {
			return proto.Errorf(proto.CodeQuotaExceeded, "%d bytes used, %d reserved, quota %d", used, reserved, s.cfg.UserQuota)
		}
		return nil
	})
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
func (s *Service) Status(userID, uploadID string) (proto.UploadState, error) {
	up, err := s.ownUpload(userID, uploadID)
	if err != nil {
		return proto.UploadState{}, err
	}
	p, err := s.blobs.Status(uploadID)
	if errors.Is(err, blob.ErrNotFound) {
		s.forget(uploadID)
		return proto.UploadState{}, errNoUpload()
	}
	if err != nil {
		return proto.UploadState{}, err
	}
	return proto.UploadState{ID: up.ID, Offset: p.Offset, Size: up.Size, ChunkSize: ChunkSize}, nil
}

// WriteChunk appends body to the user's upload, which must stand at
// offset (blob.Store.WriteChunk). More bytes than declared delete the
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
	if err := s.checkQuota(userID); err != nil {
		return offset, err
	}
	n, err := s.blobs.WriteChunk(ctx, uploadID, offset, up.Size, body)
	switch {
	case errors.Is(err, blob.ErrTooLarge):
		s.forget(uploadID)
		return n, proto.Errorf(proto.CodeTooLarge, "more than the declared %d bytes: the upload is deleted", up.Size)
	case errors.Is(err, blob.ErrNotFound):
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
	if err := s.blobs.Abort(uploadID); err != nil && !errors.Is(err, blob.ErrNotFound) {
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
	fin, err := s.blobs.Finish(uploadID, up.Size, up.Type)
	if errors.Is(err, blob.ErrNotFound) {
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
	nb := store.Blob{Hash: fin.Hash, Size: fin.Size, Mime: fin.ContentType, Encrypted: up.Encrypted, Created: now}
	var known bool
	if err := s.db.View(func(tx *store.Tx) error {
		_, err := tx.Blob(fin.Hash)
		known = err == nil
		return nil
	}); err != nil {
		return proto.File{}, err
	}
	refuse := func(err error) (proto.File, error) {
		// The upload is consumed: its bytes are the blob's now.
		leftovers = append(leftovers, fin.Hash)
		s.forget(uploadID)
		if pe := proto.AsError(err); pe != nil {
			s.log.Info("file refused", "upload", uploadID, "user", a.User, "room", up.Room, "code", pe.Code)
		}
		return proto.File{}, err
	}
	if up.Encrypted {
		nb.Mime = "application/octet-stream"
		if err := s.checkEncrypted(fin.Hash, fin.Size); err != nil {
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

	name := up.Name
	if name == "" {
		name = media.FallbackName // a record from before names were kept in it
	}
	f := store.File{ID: id.NewFile(s.node), Owner: a.User, Room: up.Room, Name: name, Size: fin.Size,
		Hash: fin.Hash, Encrypted: up.Encrypted, Created: now}
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
	s.log.Info("file stored", "file", f.ID, "user", a.User, "room", f.Room, "size", f.Size, "blob", f.Hash, "state", b.State, "reused", fin.Reused)
	if scan {
		s.queueScan(b.Hash)
	}
	return fileMeta(f, b), nil
}

// checkEncrypted refuses a file for an encrypted room that is not a
// "relais file v1" blob: a client that would otherwise post a file in
// clear into an encrypted room.
func (s *Service) checkEncrypted(hash string, size int64) error {
	f, err := s.blobs.Open(hash)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, len(media.SealedMagic))
	if _, err := io.ReadFull(f, head); err != nil && size >= int64(media.SealedMinSize) {
		return err
	}
	if size < int64(media.SealedMinSize) || string(head) != media.SealedMagic {
		return proto.Errorf(proto.CodeNotEncrypted, "files of an end-to-end encrypted room must be encrypted by the client (relais file v1)")
	}
	return nil
}

// inspect runs the built-in policy on new content of an unencrypted room
// and, for a picture, reads its dimensions and makes its thumbnail (whose
// blob it adds to leftovers, in case the file is not recorded).
func (s *Service) inspect(ctx context.Context, nb *store.Blob, leftovers *[]string) error {
	path, err := s.blobs.Path(nb.Hash)
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
	tb, err := s.blobs.Put(bytes.NewReader(thumb))
	if err != nil {
		return err
	}
	*leftovers = append(*leftovers, tb.Hash)
	nb.Width, nb.Height = dw, dh // as displayed (EXIF orientation applied)
	nb.Thumb, nb.ThumbMime = tb.Hash, ctype
	return nil
}

// imageSize reads a picture's dimensions from its header (media's one
// image sniffer), without decoding pixels.
func imageSize(path string) (int, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return media.ImageSize(f)
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
