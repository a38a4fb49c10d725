package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"relais/server/blob"
	"relais/server/media/clamd"
)

// State is where a blob stands in the antivirus pipeline.
type State string

// The states of a blob. A blob is Pending from Finish until it is scanned;
// only its uploader may download it meanwhile. A Quarantined blob has been
// deleted; messages that referred to it show a notice with Outcome.Code.
const (
	Pending     State = "pending"
	Clean       State = "clean"
	Quarantined State = "quarantined"
)

// DownPolicy says what to do with a file when clamd cannot give a verdict.
type DownPolicy string

// The policies when clamd is down.
const (
	// Hold keeps the file pending and scans it again when clamd is back.
	Hold DownPolicy = "hold"
	// Reject quarantines the file.
	Reject DownPolicy = "reject"
)

// Outcome is the pipeline's decision on one blob.
type Outcome struct {
	State State
	// Code is one of the Code constants when State is Quarantined.
	Code string
	// Reason explains a quarantine or why the blob is still pending.
	Reason string
	// Signature is clamd's signature name when Code is CodeInfected.
	Signature string
	// Antivirus is true when clamd passed the content, not only the
	// built-in policy: clients say which of the two checked a file.
	Antivirus bool
}

// Pipeline scans blobs: the built-in Policy always, then clamd when
// configured. It holds no state; it is safe for concurrent use.
type Pipeline struct {
	// Policy is the built-in policy; nil means the zero Policy (defaults).
	Policy *Policy
	// Clamd is the antivirus daemon, or nil to rely on the policy alone.
	Clamd *clamd.Client
	// OnClamdDown applies when clamd gives no verdict; "" means Hold.
	OnClamdDown DownPolicy
	// RetryEvery is how often a Retryer without its own period scans
	// pending blobs again; zero means 30 seconds.
	RetryEvery time.Duration
}

func (p *Pipeline) policy() *Policy {
	if p.Policy != nil {
		return p.Policy
	}
	return &Policy{}
}

// Scan decides on the blob at path. A quarantined blob is deleted before
// Scan returns (its Outcome is returned with the error if deleting fails).
// The error is otherwise for failures to read the blob or a done context;
// clamd being down is not an error but a Pending outcome (or, with Reject,
// a quarantine).
func (p *Pipeline) Scan(ctx context.Context, path string) (Outcome, error) {
	f, err := os.Open(path)
	if err != nil {
		return Outcome{}, fmt.Errorf("scan: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return Outcome{}, fmt.Errorf("scan: %w", err)
	}
	o, err := p.scan(ctx, f, fi.Size())
	f.Close()
	if err != nil {
		return Outcome{}, fmt.Errorf("scan %s: %w", fi.Name(), err)
	}
	return o, quarantine(o, path)
}

// quarantine deletes the blob at path if the outcome says so.
func quarantine(o Outcome, path string) error {
	if o.State != Quarantined {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// scan runs the policy and clamd on content of size bytes.
func (p *Pipeline) scan(ctx context.Context, content io.ReaderAt, size int64) (Outcome, error) {
	v, err := p.policy().CheckContent(content, size)
	if err != nil {
		return Outcome{}, err
	}
	if !v.Allowed {
		return Outcome{State: Quarantined, Code: v.Code, Reason: v.Reason}, nil
	}
	if p.Clamd == nil {
		return Outcome{State: Clean}, nil
	}
	res, err := p.Clamd.Scan(ctx, io.NewSectionReader(content, 0, size))
	switch {
	case err == nil && res.Clean:
		return Outcome{State: Clean, Antivirus: true}, nil
	case err == nil:
		return Outcome{State: Quarantined, Code: CodeInfected, Signature: res.Signature,
			Reason: "the antivirus found " + res.Signature}, nil
	case ctx.Err() != nil:
		return Outcome{}, ctx.Err()
	case errors.Is(err, clamd.ErrSizeLimit):
		return Outcome{State: Quarantined, Code: CodeTooLarge,
			Reason: "larger than the antivirus accepts (raise clamd's StreamMaxLength to the upload limit)"}, nil
	case errors.Is(err, clamd.ErrUnavailable):
		if p.OnClamdDown == Reject {
			return Outcome{State: Quarantined, Code: CodeScannerUnavailable, Reason: err.Error()}, nil
		}
		return Outcome{State: Pending, Reason: err.Error()}, nil
	default:
		return Outcome{}, err // reading the content failed
	}
}

// Retryer scans pending blobs again while clamd is back, for a Pipeline
// whose OnClamdDown is Hold. The caller keeps the states: Pending lists
// what waits, Resolved records each decision.
type Retryer struct {
	// Pipeline is used to check that clamd answers and, when Rescan is
	// nil, to scan.
	Pipeline *Pipeline
	// Blobs locates blobs by hash when Rescan is nil.
	Blobs *blob.Store
	// Pending returns the identifiers (blob hashes, by default) of the
	// blobs waiting for a verdict.
	Pending func(ctx context.Context) ([]string, error)
	// Rescan scans one pending blob. Nil means Pipeline.Scan on the blob
	// Blobs.Path(id). The caller sets it for blobs of encrypted rooms,
	// whose sealed key it kept, to call ScanEncrypted.
	Rescan func(ctx context.Context, id string) (Outcome, error)
	// Resolved records a blob's outcome once it is no longer pending. An
	// error is logged and the blob is offered again at the next pass.
	Resolved func(ctx context.Context, id string, o Outcome) error
	// Every is the period between passes; zero means Pipeline.RetryEvery.
	Every time.Duration
	// Logger receives failures; nil discards them.
	Logger *slog.Logger

	once sync.Once
	kick chan struct{}
}

func (r *Retryer) init() {
	r.once.Do(func() { r.kick = make(chan struct{}, 1) })
}

// Kick asks for a pass now, for instance after a file went pending.
func (r *Retryer) Kick() {
	r.init()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run makes a pass every period (and on Kick) until ctx is done; it then
// returns nil.
func (r *Retryer) Run(ctx context.Context) error {
	r.init()
	every := r.Every
	if every <= 0 {
		every = r.Pipeline.RetryEvery
	}
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.kick:
		}
		if _, err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			r.logger().Warn("antivirus retry pass failed", "err", err)
		}
	}
}

func (r *Retryer) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Pass scans the pending blobs once, if clamd answers, and returns how
// many were resolved. A blob whose scan fails is logged and left pending.
func (r *Retryer) Pass(ctx context.Context) (int, error) {
	if c := r.Pipeline.Clamd; c != nil {
		if err := c.Ping(ctx); err != nil {
			return 0, nil // still down: nothing to do
		}
	}
	ids, err := r.Pending(ctx)
	if err != nil {
		return 0, fmt.Errorf("list pending blobs: %w", err)
	}
	n := 0
	for _, id := range ids {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		o, err := r.rescan(ctx, id)
		if err != nil {
			r.logger().Warn("antivirus rescan failed", "blob", id, "err", err)
			continue
		}
		if o.State == Pending {
			return n, nil // clamd went down again
		}
		if err := r.Resolved(ctx, id, o); err != nil {
			r.logger().Warn("recording antivirus outcome failed", "blob", id, "state", o.State, "err", err)
			continue
		}
		n++
	}
	return n, nil
}

func (r *Retryer) rescan(ctx context.Context, id string) (Outcome, error) {
	if r.Rescan != nil {
		return r.Rescan(ctx, id)
	}
	path, err := r.Blobs.Path(id)
	if err != nil {
		return Outcome{}, err
	}
	return r.Pipeline.Scan(ctx, path)
}
