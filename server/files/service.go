// Package files is the node's attachment service: resumable uploads into
// rooms, downloads authorized by room membership, the antivirus pipeline
// around each file (pending until scanned, then clean or quarantined, with
// the verdict reported to the room), thumbnails of the pictures of
// unencrypted rooms, scanning of end-to-end encrypted files with a key
// sealed to the node's scanner key, and retention (files of deleted
// messages, abandoned uploads, unposted files, orphaned blobs).
//
// Bytes live on disk through package blob (content-addressed blobs and
// partial uploads under <data>/media); records live in the store
// (store/filesdb.go): each upload (written before its first byte, and
// authoritative: bytes without a record are dropped), the quota it
// counts against, who uploaded which file for which room, which event
// carries it, each blob's verdict and how many files share it. Package
// media decides what a file may be (policy, antivirus, thumbnails). The HTTP endpoints are under
// /api/v1/media/ (see Handler and PROTOCOL.md, "Files"); the chat service
// calls back through chat.Files when events carry files.
package files

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"relais/server/account"
	"relais/server/blob"
	"relais/server/chat"
	"relais/server/media"
	"relais/server/media/clamd"
	"relais/server/store"
)

// Tuning are the service's knobs that are not operator settings; the zero
// value takes the defaults documented on each field.
type Tuning struct {
	// ScanWorkers scan new files in the background; default 2.
	ScanWorkers int
	// Thumbnailers bound the thumbnails made at once (each may decode up
	// to media.DefaultMaxPixels, 160 MB of pixels); default 2.
	Thumbnailers int
	// RetryEvery is how often pending files are scanned again while clamd
	// is down; default 30 seconds.
	RetryEvery time.Duration
	// HousekeepEvery is the period of the retention sweep; default 1 hour.
	HousekeepEvery time.Duration
	// UploadTTL is how long an upload may receive nothing before it is
	// deleted; default 24 hours.
	UploadTTL time.Duration
	// UnpostedTTL is how long a finished file may wait to be posted in a
	// message before it is deleted; default 24 hours.
	UnpostedTTL time.Duration
	// MaxImagePixels refuses pictures of unencrypted rooms with more
	// pixels (decompression bombs); default 100 million. Pictures up to
	// media.DefaultMaxPixels get a thumbnail.
	MaxImagePixels int64
	// ClamdTimeout bounds each exchange with clamd; default
	// clamd.DefaultTimeout.
	ClamdTimeout time.Duration
}

func (t Tuning) withDefaults() Tuning {
	if t.ScanWorkers <= 0 {
		t.ScanWorkers = 2
	}
	if t.Thumbnailers <= 0 {
		t.Thumbnailers = 2
	}
	if t.RetryEvery <= 0 {
		t.RetryEvery = 30 * time.Second
	}
	if t.HousekeepEvery <= 0 {
		t.HousekeepEvery = time.Hour
	}
	if t.UploadTTL <= 0 {
		t.UploadTTL = 24 * time.Hour
	}
	if t.UnpostedTTL <= 0 {
		t.UnpostedTTL = 24 * time.Hour
	}
	if t.MaxImagePixels <= 0 {
		t.MaxImagePixels = 100_000_000
	}
	return t
}

// Config configures a Service.
type Config struct {
	// Dir is the media directory (<data>/media).
	Dir      string
	DB       *store.DB
	Chat     *chat.Service
	Accounts *account.Service
	// Clamd is the antivirus daemon, "unix:///path" or "tcp://host:port";
	// empty relies on the built-in policy alone.
	Clamd string
	// ClamdDown is "hold" (the default: files stay pending and are scanned
	// when clamd is back) or "reject" (they are quarantined).
	ClamdDown string
	// MaxUpload is the largest file in bytes; zero means
	// blob.DefaultMaxFileSize.
	MaxUpload int64
	// UserQuota is the bytes of files one user may store, finished and in
	// progress; zero or less means no limit.
	UserQuota int64
	// ScanEncrypted asks clients of encrypted rooms to seal each file key
	// to the node's scanner key so that the antivirus can open the file
	// (it needs Clamd).
	ScanEncrypted bool
	Tuning        Tuning
	Logger        *slog.Logger
}

// Service keeps the node's attachments. Open it, Start its goroutines,
// Close it before the store.
type Service struct {
	cfg      Config
	tune     Tuning
	db       *store.DB
	chat     *chat.Service
	accounts *account.Service
	log      *slog.Logger
	node     string

	blobs   *blob.Store
	policy  *media.Policy
	pipe    *media.Pipeline
	retry   *media.Retryer
	scanKey *media.ScannerKey // nil when no key exists
	scanEnc bool              // clients must seal file keys (advertised)

	// blobMu orders putting content into the blobs (read-locked, from
	// blob's Finish or Put until the record is committed) against
	// removing it (write-locked, from the check that no record wants the
	// blob until it is gone), so that content is never removed under a
	// file that is being recorded with it.
	blobMu sync.RWMutex
	// beginMu orders the start of uploads (read-locked, from committing
	// the record until its bytes exist) against the sweep of records whose
	// bytes are gone (write-locked), so that the sweep never takes a
	// record written first for bytes about to be created.
	beginMu sync.RWMutex
	// holds counts the backups under way (HoldRemovals); while it is not
	// zero, removals wait in deferred. Both are guarded by blobMu held
	// for writing.
	holds    int
	deferred map[string]bool
	thumbs   chan struct{}

	scans    chan string
	removals chan string
	mu       sync.Mutex
	inflight map[string]bool // blobs queued or being scanned by the workers

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed chan struct{}
	once   sync.Once

	stats *Stats
}

// Compile-time check that the service is what chat expects.
var _ chat.Files = (*Service)(nil)

// Open opens the media directory and prepares the antivirus pipeline; it
// starts nothing (see Start).
func Open(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Chat == nil || cfg.Accounts == nil {
		return nil, errors.New("files: DB, Chat and Accounts are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg: cfg, tune: cfg.Tuning.withDefaults(), db: cfg.DB, chat: cfg.Chat, accounts: cfg.Accounts,
		log: cfg.Logger.With("component", "files"), node: cfg.DB.Node(),
		inflight: map[string]bool{}, closed: make(chan struct{}), stats: newStats(),
	}
	s.thumbs = make(chan struct{}, s.tune.Thumbnailers)
	s.scans = make(chan string, 1024)
	s.removals = make(chan string, 4096)

	down := media.Hold
	switch cfg.ClamdDown {
	case "", "hold":
	case "reject":
		down = media.Reject
	default:
		return nil, fmt.Errorf("--clamd-down %q: want hold or reject", cfg.ClamdDown)
	}
	var cl *clamd.Client
	if cfg.Clamd != "" {
		var err error
		if cl, err = clamd.Parse(cfg.Clamd); err != nil {
			return nil, fmt.Errorf("--clamd: %w", err)
		}
		cl.Timeout = s.tune.ClamdTimeout
	}
	s.policy = &media.Policy{MaxSize: cfg.MaxUpload}
	s.pipe = &media.Pipeline{Policy: s.policy, Clamd: cl, OnClamdDown: down, RetryEvery: s.tune.RetryEvery}

	var err error
	if s.blobs, err = blob.Open(cfg.Dir, blob.Options{MaxFileSize: cfg.MaxUpload, Logger: s.log}); err != nil {
		return nil, err
	}
	if err := s.dropOrphanPartials(); err != nil {
		return nil, err
	}
	switch {
	case cfg.ScanEncrypted && cl == nil:
		s.log.Warn("--scan-encrypted needs --clamd: files of encrypted rooms are not scanned")
	case cfg.ScanEncrypted:
		s.scanEnc = true
	}
	// A key left by an earlier run still opens the pending files sealed
	// to it; otherwise the key is created only when scanning is on.
	keyPath := filepath.Join(cfg.Dir, media.ScannerKeyFile)
	_, statErr := os.Stat(keyPath)
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return nil, fmt.Errorf("scanner key: %w", statErr)
	}
	if s.scanEnc || statErr == nil {
		if s.scanKey, err = media.OpenScannerKey(keyPath); err != nil {
			return nil, err
		}
	}
	s.retry = &media.Retryer{
		Pipeline: s.pipe,
		Pending:  s.pendingForRetry,
		Rescan:   s.scanBlob,
		Resolved: s.resolve,
		Every:    s.tune.RetryEvery,
		Logger:   s.log,
	}
	antivirus := "built-in policy only"
	if cl != nil {
		antivirus = "clamd " + cl.String()
	}
	s.log.Info("attachments ready", "antivirus", antivirus, "clamd_down", string(down),
		"max_upload", s.blobs.MaxFileSize(), "user_quota", cfg.UserQuota, "scan_encrypted", s.scanEnc)
	return s, nil
}

// Start launches the scan workers, the antivirus retry loop (which first
// scans what a previous run left pending), the removal of released blobs
// and the retention sweep (run once at start, then every
// Tuning.HousekeepEvery). They stop when ctx ends or at Close.
func (s *Service) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	run := func(f func()) {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); f() }()
	}
	for range s.tune.ScanWorkers {
		run(func() { s.scanWorker(ctx) })
	}
	run(func() { s.retry.Run(ctx) })
	s.retry.Kick()
	run(func() { s.remover(ctx) })
	run(func() {
		t := time.NewTicker(s.tune.HousekeepEvery)
		defer t.Stop()
		for {
			if err := s.Housekeep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("retention sweep failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// Close stops the goroutines and waits for them. Scans under way are
// abandoned: their files stay pending and are scanned at the next start.
// It is safe to call more than once and without Start.
func (s *Service) Close() {
	s.once.Do(func() {
		close(s.closed)
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
	})
}

// Blobs returns the store of the bytes (for tests and the admin page's
// figures).
func (s *Service) Blobs() *blob.Store { return s.blobs }

// dropOrphanPartials deletes the bytes of uploads that have no record:
// the record is written first and is the upload, so such bytes belong to
// nobody (a crash between an upload's end and the removal of its bytes).
func (s *Service) dropOrphanPartials() error {
	return s.db.View(func(tx *store.Tx) error {
		for _, p := range s.blobs.Partials() {
			if _, err := tx.Upload(p.ID); errors.Is(err, store.ErrNotFound) {
				s.log.Warn("dropping the bytes of an upload without a record", "upload", p.ID)
				s.blobs.Abort(p.ID)
			} else if err != nil {
				return fmt.Errorf("files: reconcile uploads: %w", err)
			}
		}
		return nil
	})
}
