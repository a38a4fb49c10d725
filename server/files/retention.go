package files

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"relais/server/blob"
	"relais/server/proto"
	"relais/server/store"
)

// Retention. A file lives while the message that carries it does: deleting
// the message deletes the file (Released), and its blob once no other file
// has the same content (reference count). A file never posted is deleted
// after Tuning.UnpostedTTL, an upload that stopped receiving bytes after
// Tuning.UploadTTL. Content is removed from disk only after the
// transaction that let go of it has committed, by one remover goroutine
// (and, after a crash, by the sweep of blobs without a record).

// Attach implements chat.Files: inside the transaction that appends the
// file event, it checks the file and returns the event's metadata.
func (s *Service) Attach(tx *store.Tx, userID, roomID, fileID string) (proto.File, error) {
	f, err := tx.File(fileID)
	if errors.Is(err, store.ErrNotFound) || err == nil && f.Owner != userID {
		return proto.File{}, proto.Errorf(proto.CodeNotFound, "no such file: upload it first")
	}
	if err != nil {
		return proto.File{}, err
	}
	switch {
	case f.Room != roomID:
		return proto.File{}, proto.Errorf(proto.CodeBadRequest, "this file was uploaded for another room")
	case f.Seq != 0:
		return proto.File{}, proto.Errorf(proto.CodeConflict, "this file is already in message %d: upload it again to post it twice", f.Seq)
	}
	b, err := tx.Blob(f.Hash)
	if err != nil {
		return proto.File{}, fmt.Errorf("blob of file %s: %w", f.ID, err)
	}
	if b.State == store.BlobQuarantined {
		return proto.File{}, quarantinedError(b)
	}
	return fileMeta(f, b), nil
}

// Posted implements chat.Files: the file is now carried by event seq and
// lives as long as it does.
func (s *Service) Posted(tx *store.Tx, roomID string, seq uint64, fileID string) error {
	return tx.PostFile(fileID, seq)
}

// Released implements chat.Files: event seq, which carried the file, is
// being deleted; so is the file, and its blob once unreferenced.
func (s *Service) Released(tx *store.Tx, roomID string, seq uint64, fileID string) error {
	f, err := tx.File(fileID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // expired or quarantined and gone already
	}
	if err != nil {
		return err
	}
	if f.Room != roomID || f.Seq != seq {
		return nil // not this event's file (a forged id): leave it
	}
	return s.deleteFile(tx, fileID)
}

// deleteFile deletes a file's record and has the content it frees removed
// once the transaction commits.
func (s *Service) deleteFile(tx *store.Tx, fileID string) error {
	freed, err := tx.DeleteFile(fileID)
	if err != nil {
		return err
	}
	if len(freed) > 0 {
		tx.OnCommit(func() {
			for _, h := range freed {
				s.queueRemoval(h)
			}
		})
	}
	return nil
}

// queueRemoval asks the remover to delete a blob's content if no record
// wants it. It never blocks: when the queue is full, the next sweep of
// orphaned blobs finds it.
func (s *Service) queueRemoval(hash string) {
	if hash == "" {
		return
	}
	select {
	case s.removals <- hash:
	default:
	}
}

func (s *Service) remover(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case h := <-s.removals:
			s.removeBlob(h)
		}
	}
}

// removeBlob deletes a blob's content unless a record still wants it (a
// blob with a record that is not quarantined), and reports whether it did.
func (s *Service) removeBlob(hash string) bool {
	if hash == "" {
		return false
	}
	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	if s.holds > 0 {
		if s.deferred == nil {
			s.deferred = map[string]bool{}
		}
		s.deferred[hash] = true
		return false
	}
	keep := true
	err := s.db.View(func(tx *store.Tx) error {
		b, err := tx.Blob(hash)
		switch {
		case errors.Is(err, store.ErrNotFound):
			keep = false
		case err != nil:
			return err
		default:
			keep = b.State != store.BlobQuarantined
		}
		return nil
	})
	if err != nil || keep {
		return false
	}
	if err := s.blobs.Remove(hash); err != nil {
		s.log.Warn("removing a blob failed", "blob", hash, "err", err)
		return false
	}
	return true
}

// Housekeep runs the retention sweep once: abandoned uploads and their
// records, files never posted, and blobs no record wants (left by a crash
// between a write to disk and its commit). The service runs it at Start
// and every Tuning.HousekeepEvery.
func (s *Service) Housekeep(ctx context.Context) error {
	var errs []error
	if n, err := s.blobs.ExpireUploads(s.tune.UploadTTL); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		s.log.Info("abandoned uploads deleted", "uploads", n)
	}
	errs = append(errs, s.sweepUploads(ctx), s.expireUnposted(ctx), s.sweepBlobs(ctx))
	return errors.Join(errs...)
}

// sweepUploads deletes the records of uploads whose bytes are gone
// (expired, or lost with a crash between the record and its bytes).
func (s *Service) sweepUploads(ctx context.Context) error {
	s.beginMu.Lock()
	defer s.beginMu.Unlock()
	var ups []store.Upload
	if err := s.db.View(func(tx *store.Tx) error {
		var err error
		ups, err = tx.Uploads()
		return err
	}); err != nil {
		return err
	}
	var gone []string
	for _, u := range ups {
		if _, err := s.blobs.Status(u.ID); errors.Is(err, blob.ErrNotFound) {
			gone = append(gone, u.ID)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	return s.db.Update(ctx, func(tx *store.Tx) error {
		for _, id := range gone {
			if err := tx.DeleteUpload(id); err != nil {
				return err
			}
		}
		return nil
	})
}

// expireUnposted deletes the files finished more than Tuning.UnpostedTTL
// ago and never posted in a message.
func (s *Service) expireUnposted(ctx context.Context) error {
	before := time.Now().Add(-s.tune.UnpostedTTL)
	total := 0
	for ctx.Err() == nil {
		var n int
		err := s.db.Update(ctx, func(tx *store.Tx) error {
			ids, err := tx.UnpostedFiles(before, 100)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if err := s.deleteFile(tx, id); err != nil {
					return err
				}
			}
			n = len(ids)
			return nil
		})
		if err != nil {
			return err
		}
		total += n
		if n < 100 {
			break
		}
	}
	if total > 0 {
		s.log.Info("files never posted deleted", "files", total)
	}
	return ctx.Err()
}

// sweepBlobs removes the content no record wants.
func (s *Service) sweepBlobs(ctx context.Context) error {
	n := 0
	err := s.blobs.Walk(func(hash string, _ int64, _ time.Time) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.removeBlob(hash) {
			n++
		}
		return nil
	})
	if n > 0 {
		s.log.Info("orphaned blobs removed", "blobs", n)
	}
	return err
}

// HoldRemovals keeps every blob's content on disk until release is called,
// for a backup: it takes a snapshot of the store after HoldRemovals
// returns, then copies the content of the blobs the snapshot names, some of
// which may lose their last file meanwhile. Removals asked for while held
// are done by the last release; a crash before it leaves orphaned blobs,
// which the next sweep removes. release may be called once.
func (s *Service) HoldRemovals() (release func()) {
	// The write lock waits for a removal under way to finish.
	s.blobMu.Lock()
	s.holds++
	s.blobMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.blobMu.Lock()
			s.holds--
			var todo map[string]bool
			if s.holds == 0 {
				todo, s.deferred = s.deferred, nil
			}
			s.blobMu.Unlock()
			for h := range todo {
				s.removeBlob(h)
			}
		})
	}
}
