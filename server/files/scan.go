package files

import (
	"context"
	"errors"
	"fmt"

	"relais/server/media"
	"relais/server/proto"
	"relais/server/store"
)

// The antivirus around each blob: a new blob is queued for a pool of scan
// workers; a blob clamd could not scan (down, with the "hold" policy)
// stays in the store's pending scans, which media.Retryer scans again
// while clamd answers, at every start too. A verdict is recorded in one
// transaction with its report to the rooms (chat.AppendFileState).

// errNotPending reports a blob no longer waiting for a scan (released,
// or already decided).
var errNotPending = errors.New("files: blob no longer pending")

// queueScan hands a blob to the scan workers, or, when they are swamped,
// leaves it to the retry loop.
func (s *Service) queueScan(hash string) {
	s.mu.Lock()
	if s.inflight[hash] {
		s.mu.Unlock()
		return
	}
	s.inflight[hash] = true
	s.mu.Unlock()
	select {
	case s.scans <- hash:
	default:
		s.done(hash)
		s.retry.Kick()
	}
}

func (s *Service) done(hash string) {
	s.mu.Lock()
	delete(s.inflight, hash)
	s.mu.Unlock()
}

func (s *Service) scanWorker(ctx context.Context) {
	for {
		var hash string
		select {
		case <-ctx.Done():
			return
		case hash = <-s.scans:
		}
		s.scanNow(ctx, hash)
		s.done(hash)
	}
}

// scanNow scans a blob and records the verdict, if there is one.
func (s *Service) scanNow(ctx context.Context, hash string) {
	o, err := s.scanBlob(ctx, hash)
	switch {
	case errors.Is(err, errNotPending), ctx.Err() != nil:
		return
	case err != nil:
		s.stats.Scans.Inc(ScanError)
		s.log.Warn("antivirus scan failed; retried later", "blob", hash, "err", err)
		return
	case o.State == media.Pending:
		s.stats.Scans.Inc(ScanUnavailable)
		s.log.Warn("antivirus unavailable: file held pending until it answers", "blob", hash, "reason", o.Reason)
		return
	}
	if err := s.resolve(ctx, hash, o); err != nil {
		if ctx.Err() == nil {
			s.stats.Scans.Inc(ScanError)
			s.log.Warn("recording an antivirus verdict failed; retried later", "blob", hash, "err", err)
		}
		return
	}
	if o.State == media.Quarantined {
		s.stats.Scans.Inc(ScanQuarantined)
	} else {
		s.stats.Scans.Inc(ScanClean)
	}
}

// scanBlob scans a pending blob: with the file key sealed to the scanner
// key for an encrypted file (opened, used in memory, forgotten), as is
// otherwise.
func (s *Service) scanBlob(ctx context.Context, hash string) (media.Outcome, error) {
	var key *store.SealedKey
	err := s.db.View(func(tx *store.Tx) error {
		b, err := tx.Blob(hash)
		if errors.Is(err, store.ErrNotFound) || err == nil && b.State != store.BlobPending {
			return errNotPending
		}
		if err != nil {
			return err
		}
		key, err = tx.PendingScan(hash)
		if errors.Is(err, store.ErrNotFound) {
			return errNotPending
		}
		return err
	})
	if err != nil {
		return media.Outcome{}, err
	}
	path, err := s.blobs.Path(hash)
	if err != nil {
		return media.Outcome{}, err
	}
	if key != nil {
		if s.scanKey == nil {
			return media.Outcome{}, errors.New("files: a sealed file key but no scanner key")
		}
		return s.pipe.ScanSealed(ctx, path, s.scanKey, key.Enc, key.Sealed)
	}
	return s.pipe.Scan(ctx, path)
}

// pendingForRetry lists the pending blobs the workers are not scanning.
func (s *Service) pendingForRetry(context.Context) ([]string, error) {
	var hashes []string
	if err := s.db.View(func(tx *store.Tx) error {
		var err error
		hashes, err = tx.PendingScans(1000)
		return err
	}); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := hashes[:0]
	for _, h := range hashes {
		if !s.inflight[h] {
			out = append(out, h)
		}
	}
	return out, nil
}

// notice is a verdict for one file's uploader.
type notice struct {
	owner string
	frame []byte
}

// resolve records a verdict on a blob: its state, and for each file that
// has it, a file_state event in the room of the file's message (and the
// message's stored copy updated) and a live file_state frame to the
// uploader's devices. A quarantined blob's content is removed (again: the
// pipeline deleted it, but an upload of the same content may have put it
// back meanwhile).
func (s *Service) resolve(ctx context.Context, hash string, o media.Outcome) error {
	var state store.BlobState
	switch o.State {
	case media.Clean:
		state = store.BlobClean
	case media.Quarantined:
		state = store.BlobQuarantined
	default:
		return fmt.Errorf("files: resolve blob %s as %q", hash, o.State)
	}
	var files []store.File
	err := s.db.Update(ctx, func(tx *store.Tx) error {
		files = nil
		b, err := tx.Blob(hash)
		if errors.Is(err, store.ErrNotFound) {
			return nil // released meanwhile
		}
		if err != nil {
			return err
		}
		if b.State != store.BlobPending {
			return nil // decided already
		}
		_, freed, err := tx.SetBlobState(hash, state, o.Code, o.Reason, o.Antivirus)
		if err != nil {
			return err
		}
		if files, err = tx.FilesOfBlob(hash); err != nil {
			return err
		}
		var notices []notice
		for _, f := range files {
			st := proto.File{ID: f.ID, State: string(state), Code: o.Code, Reason: o.Reason, Checked: checkedBy(state, o.Antivirus)}
			if f.Seq != 0 {
				if err := s.chat.AppendFileState(tx, f.Room, f.Seq, st); err != nil {
					return err
				}
			}
			notices = append(notices, notice{f.Owner, proto.Encode(proto.FileStateFrame{T: proto.TFileState, Room: f.Room, File: st})})
		}
		if state == store.BlobQuarantined {
			freed = append(freed, hash)
		}
		tx.OnCommit(func() {
			for _, n := range notices {
				s.chat.PublishUser(n.owner, n.frame)
			}
			for _, h := range freed {
				s.queueRemoval(h)
			}
		})
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range files {
		if state == store.BlobQuarantined {
			s.log.Warn("file quarantined", "file", f.ID, "user", f.Owner, "room", f.Room, "blob", hash, "code", o.Code, "signature", o.Signature, "reason", o.Reason)
		} else {
			s.log.Info("file clean", "file", f.ID, "room", f.Room, "blob", hash)
		}
	}
	return nil
}
