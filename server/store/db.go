// Package store keeps the node's durable state in one bbolt file.
//
// It is the only package that imports bbolt. Records, bucket names and key
// layouts are defined here (see schema.go); domain packages call typed
// methods on Tx. All writes go through one writer goroutine that commits
// whatever is queued in a single transaction (group commit; see smallBatch
// for when it waits for more): a caller of Update returns only after its
// change is durable on disk.
package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrClosed is returned by Update and View once Close has begun.
var ErrClosed = errors.New("store: closed")

// maxBatch bounds how many queued writes share one transaction, so one
// commit never grows without limit under a flood.
const maxBatch = 2048

// Options tune Open.
type Options struct {
	// Logger receives the store's few log lines; nil discards them.
	Logger *slog.Logger
	// NoSync skips fsync. Only for tests that measure nothing durable;
	// benchmarks and the node never set it.
	NoSync bool
	// Timeout bounds the wait for the file lock held by another process.
	Timeout time.Duration
	// ObserveCommit, if set, is called by the writer after each commit
	// with the number of writes it carried and the time it took, fsync
	// included (server/metrics keeps their histograms). It must not block.
	ObserveCommit func(writes int, took time.Duration)
}

// DB is an open store.
type DB struct {
	bolt *bolt.DB
	log  *slog.Logger
	path string

	ops     chan *op
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
	mu      sync.RWMutex // held for reading by Update/View callers, for writing by Close
	closed  bool

	node string

	cache *writeCache // the writer's alone
	stats writerStats

	observe func(writes int, took time.Duration)
}

type writerStats struct {
	commits, writes, pages, busy atomic.Uint64
}

// WriterStats counts the writer's work since Open.
type WriterStats struct {
	Commits uint64        // transactions committed
	Writes  uint64        // Update calls they carried
	Pages   uint64        // pages they wrote, meta and freelist included
	Busy    time.Duration // time spent in write transactions, refused ones included
}

// Sub returns the work done between an earlier snapshot and s.
func (s WriterStats) Sub(earlier WriterStats) WriterStats {
	return WriterStats{s.Commits - earlier.Commits, s.Writes - earlier.Writes, s.Pages - earlier.Pages, s.Busy - earlier.Busy}
}

// WriterStats returns what the writer has done so far.
func (db *DB) WriterStats() WriterStats {
	return WriterStats{
		Commits: db.stats.commits.Load(),
		Writes:  db.stats.writes.Load(),
		Pages:   db.stats.pages.Load(),
		Busy:    time.Duration(db.stats.busy.Load()),
	}
}

type op struct {
	fn   func(*Tx) error
	err  error
	done chan error
}

var opPool = sync.Pool{New: func() any { return &op{done: make(chan error, 1)} }}

// Open opens (creating if needed) the store file at path, runs pending
// migrations and starts the writer.
func Open(path string, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory: %w", err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.Timeout,
		NoSync:          opts.NoSync,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 64 << 20,
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("store: %s is locked by another process (is a node already running on this data directory?)", path)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db := &DB{
		bolt:    b,
		log:     opts.Logger,
		path:    path,
		ops:     make(chan *op, maxBatch),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		cache:   newWriteCache(),
		observe: opts.ObserveCommit,
	}
	if err := migrate(b, migrations, db.log); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.View(func(tx *bolt.Tx) error {
		db.node = string(tx.Bucket(bMeta).Get(kNode))
		return nil
	}); err != nil {
		b.Close()
		return nil, fmt.Errorf("store: read node id: %w", err)
	}
	go db.writer()
	return db, nil
}

// Node returns the identifier of the node that created this store.
func (db *DB) Node() string { return db.node }

// Path returns the store file's path.
func (db *DB) Path() string { return db.path }

// Size returns the store file's size in bytes.
func (db *DB) Size() int64 {
	var n int64
	db.bolt.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Close waits for queued writes to commit, stops the writer and closes the
// file. It is safe to call more than once.
func (db *DB) Close() error {
	var err error
	db.once.Do(func() {
		db.mu.Lock()
		db.closed = true
		close(db.closing)
		db.mu.Unlock()
		<-db.done
		err = db.bolt.Close()
	})
	return err
}

// View runs fn in a read-only transaction. Values read through tx are
// copies and stay valid after View returns.
func (db *DB) View(fn func(*Tx) error) error {
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	defer db.mu.RUnlock()
	return db.bolt.View(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, cache: noCache})
	})
}

// User reads one user in its own read transaction.
func (db *DB) User(id string) (u User, err error) {
	err = db.View(func(tx *Tx) error {
		u, err = tx.User(id)
		return err
	})
	return u, err
}

// Update queues fn for the writer and returns once the transaction that ran
// it has committed to disk, or with fn's error (then none of fn's writes
// happened). fn may run more than once when another write of its batch
// fails, so it must only touch the store and must not keep state between
// runs; work that must happen once after commit goes in tx.OnCommit.
//
// ctx bounds only the wait for a place in the queue: once queued, the write
// is committed or refused and Update reports which, so that a caller never
// mistakes a committed write for a lost one.
func (db *DB) Update(ctx context.Context, fn func(*Tx) error) error {
	o := opPool.Get().(*op)
	o.fn, o.err = fn, nil
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		opPool.Put(o)
		return ErrClosed
	}
	select {
	case db.ops <- o:
	case <-ctx.Done():
		db.mu.RUnlock()
		opPool.Put(o)
		return ctx.Err()
	}
	db.mu.RUnlock()
	err := <-o.done
	o.fn = nil
	opPool.Put(o)
	return err
}

// A batch smaller than smallBatch, while writes come from several clients
// at once (recent batches carried more than one on average), waits for
// more writes for up to the last commit's duration, at most
// maxCommitDelay: a commit costs two fsyncs whatever it carries, and the
// events of one commit reach each recipient in one websocket message. A
// lone writer never waits.
const (
	smallBatch     = 8
	maxCommitDelay = time.Millisecond
)

func (db *DB) writer() {
	defer close(db.done)
	batch := make([]*op, 0, maxBatch)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	// avg is a moving average of batch sizes, in sixteenths.
	avg, lastCommit := 16, time.Duration(0)
	for {
		select {
		case o := <-db.ops:
			batch = append(batch[:0], o)
		case <-db.closing:
			// Close holds the lock while closing, so no sender is
			// blocked now and none can enqueue: drain what is queued.
			for {
				select {
				case o := <-db.ops:
					db.commit([]*op{o})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case o := <-db.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		if d := min(maxCommitDelay, lastCommit); len(batch) < smallBatch && avg > 20 && d > 0 {
			wait.Reset(d)
		more:
			for len(batch) < smallBatch {
				select {
				case o := <-db.ops:
					batch = append(batch, o)
				case <-wait.C:
					break more
				case <-db.closing:
					break more
				}
			}
			wait.Stop()
		}
		began := time.Now()
		db.commit(batch)
		avg += (16*min(len(batch), smallBatch) - avg) / 4
		lastCommit = time.Since(began)
	}
}

// commit runs the batch in one transaction. When a function fails, the
// transaction is rolled back, that function is answered with its error and
// the others are run again without it.
func (db *DB) commit(batch []*op) {
	pending := batch
	for len(pending) > 0 {
		failed, after, err := db.try(pending)
		if failed < 0 {
			// Callbacks run before callers are answered, so that what
			// they do (caches, publication) is visible once Update
			// returns.
			for _, f := range after {
				f()
			}
			for _, o := range pending {
				o.done <- err
			}
			return
		}
		pending[failed].done <- pending[failed].err
		pending = append(pending[:failed:failed], pending[failed+1:]...)
	}
}

// try runs ops in one transaction. It returns the index of the first op
// that failed (and rolls back), or -1 with the commit's error and the
// callbacks to run after a successful commit.
func (db *DB) try(ops []*op) (failed int, after []func(), err error) {
	begun := time.Now()
	defer func() { db.stats.busy.Add(uint64(time.Since(begun))) }()
	btx, err := db.bolt.Begin(true)
	if err != nil {
		return -1, nil, fmt.Errorf("store: begin: %w", err)
	}
	tx := &Tx{tx: btx, writable: true, cache: db.cache}
	for i, o := range ops {
		if err := runOp(o.fn, tx); err != nil {
			btx.Rollback()
			db.cache.rollback()
			o.err = err
			return i, nil, nil
		}
	}
	if err := btx.Commit(); err != nil {
		db.cache.rollback()
		db.log.Error("store commit failed", "err", err, "writes", len(ops))
		return -1, nil, fmt.Errorf("store: commit: %w", err)
	}
	db.cache.commit()
	st := btx.Stats()
	db.stats.commits.Add(1)
	db.stats.writes.Add(uint64(len(ops)))
	db.stats.pages.Add(uint64(st.GetWrite()))
	if db.observe != nil {
		db.observe(len(ops), time.Since(begun))
	}
	return -1, tx.onCommit, nil
}

func runOp(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: write panicked: %v", r)
		}
	}()
	return fn(tx)
}

// Backup writes a consistent snapshot of the whole store to w while the
// node keeps running, and returns the number of bytes written.
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.Snapshot(func(s *Snapshot) error {
		var err error
		n, err = s.WriteTo(w)
		return err
	})
	return n, err
}

// Snapshot is the store as one read transaction sees it, for backups.
type Snapshot struct {
	tx *bolt.Tx
}

// BlobRef is a blob whose content a snapshot expects on disk. Size is 0
// when the record does not say it (thumbnails).
type BlobRef struct {
	Hash string
	Size int64
}

// Snapshot runs fn with a consistent view of the store while writes go
// on. fn should copy the store out and read what it needs, then return:
// the view holds a read transaction, which keeps bbolt from reusing pages.
func (db *DB) Snapshot(fn func(*Snapshot) error) error {
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	defer db.mu.RUnlock()
	if err := db.bolt.View(func(tx *bolt.Tx) error { return fn(&Snapshot{tx: tx}) }); err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	return nil
}

// Size is the number of bytes WriteTo writes.
func (s *Snapshot) Size() int64 { return s.tx.Size() }

// WriteTo writes the store file as of the snapshot: a bbolt file that
// Open accepts.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) { return s.tx.WriteTo(w) }

// Schema is the snapshot's schema version.
func (s *Snapshot) Schema() int {
	if v := s.tx.Bucket(bMeta).Get(kSchema); len(v) == 8 {
		return int(binary.BigEndian.Uint64(v))
	}
	return 0
}

// Node is the id of the node that created the store.
func (s *Snapshot) Node() string { return string(s.tx.Bucket(bMeta).Get(kNode)) }

// Blobs returns the blobs whose content the snapshot expects on disk: every
// blob record except quarantined ones (their content is deleted).
func (s *Snapshot) Blobs() ([]BlobRef, error) {
	var out []BlobRef
	b := s.tx.Bucket(bBlobs)
	if b == nil {
		return nil, nil
	}
	err := b.ForEach(func(k, v []byte) error {
		var r Blob
		if err := decode(v, &r); err != nil {
			return fmt.Errorf("blob %x: %w", k, err)
		}
		if r.State != BlobQuarantined {
			out = append(out, BlobRef{Hash: hex.EncodeToString(k), Size: r.Size})
		}
		return nil
	})
	return out, err
}

// Tx is a transaction. Read methods copy what they return out of the
// memory map, so results stay valid after the transaction ends.
type Tx struct {
	tx       *bolt.Tx
	writable bool
	onCommit []func()
	cache    *writeCache // noCache in read-only transactions
}

// OnCommit registers f to run after the transaction has committed
// durably, on the writer goroutine, in registration order. f must be quick
// and must not call Update.
func (tx *Tx) OnCommit(f func()) {
	if !tx.writable {
		panic("store: OnCommit in a read-only transaction")
	}
	tx.onCommit = append(tx.onCommit, f)
}

func (tx *Tx) bucket(name []byte) *bolt.Bucket { return tx.tx.Bucket(name) }

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// Check opens the store file at path read-only and verifies its pages and
// schema version, for backups and restores.
func Check(path string) error {
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	defer b.Close()
	return b.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("store: %s is damaged: %w", path, err)
		}
		meta := tx.Bucket(bMeta)
		if meta == nil || len(meta.Get(kSchema)) != 8 || len(meta.Get(kNode)) == 0 {
			return fmt.Errorf("store: %s is not a relais store", path)
		}
		return nil
	})
}
