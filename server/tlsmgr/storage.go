package tlsmgr

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// errStorageClosed is returned by Lock once the Manager is closing.
var errStorageClosed = errors.New("tls manager closed")

// trackedStorage wraps the certmagic Storage so that Close can wait for
// certmagic's background work (obtain and renew run in certmagic's own
// goroutines, which the Manager cannot join): once closing, new locks are
// refused, and Close waits until every held lock is released and no call
// is running, so nothing writes to the data directory after Close returns.
// Every certmagic operation that writes certificates holds a lock.
type trackedStorage struct {
	certmagic.Storage

	mu       sync.Mutex
	inflight int
	held     int
	closing  bool
}

// trackedTryStorage is a trackedStorage over a Storage that also
// implements certmagic.TryLocker, so the capability is not hidden.
type trackedTryStorage struct {
	*trackedStorage
	try certmagic.TryLocker
}

var (
	_ certmagic.Storage          = (*trackedStorage)(nil)
	_ certmagic.LockLeaseRenewer = (*trackedStorage)(nil)
	_ certmagic.TryLocker        = trackedTryStorage{}
)

// newTrackedStorage wraps s; the returned value implements TryLocker if s does.
func newTrackedStorage(s certmagic.Storage) (certmagic.Storage, *trackedStorage) {
	t := &trackedStorage{Storage: s}
	if tl, ok := s.(certmagic.TryLocker); ok {
		return trackedTryStorage{trackedStorage: t, try: tl}, t
	}
	return t, t
}

func (s *trackedStorage) begin() {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
}

func (s *trackedStorage) end() {
	s.mu.Lock()
	s.inflight--
	s.mu.Unlock()
}

func (s *trackedStorage) Store(ctx context.Context, key string, value []byte) error {
	s.begin()
	defer s.end()
	return s.Storage.Store(ctx, key, value)
}

func (s *trackedStorage) Load(ctx context.Context, key string) ([]byte, error) {
	s.begin()
	defer s.end()
	return s.Storage.Load(ctx, key)
}

func (s *trackedStorage) Delete(ctx context.Context, key string) error {
	s.begin()
	defer s.end()
	return s.Storage.Delete(ctx, key)
}

func (s *trackedStorage) Exists(ctx context.Context, key string) bool {
	s.begin()
	defer s.end()
	return s.Storage.Exists(ctx, key)
}

func (s *trackedStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	s.begin()
	defer s.end()
	return s.Storage.List(ctx, path, recursive)
}

func (s *trackedStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	s.begin()
	defer s.end()
	return s.Storage.Stat(ctx, key)
}

func (s *trackedStorage) Lock(ctx context.Context, name string) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errStorageClosed
	}
	s.inflight++
	s.mu.Unlock()
	err := s.Storage.Lock(ctx, name)
	s.mu.Lock()
	s.inflight--
	if err == nil {
		s.held++
	}
	s.mu.Unlock()
	return err
}

func (s *trackedStorage) Unlock(ctx context.Context, name string) error {
	s.begin()
	defer s.end()
	err := s.Storage.Unlock(ctx, name)
	s.mu.Lock()
	if s.held > 0 {
		s.held--
	}
	s.mu.Unlock()
	return err
}

// RenewLockLease forwards to the wrapped storage when it supports leases;
// otherwise it does nothing, as certmagic does for such storages.
func (s *trackedStorage) RenewLockLease(ctx context.Context, lockKey string, d time.Duration) error {
	if r, ok := s.Storage.(certmagic.LockLeaseRenewer); ok {
		s.begin()
		defer s.end()
		return r.RenewLockLease(ctx, lockKey, d)
	}
	return nil
}

func (s trackedTryStorage) TryLock(ctx context.Context, name string) (bool, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false, errStorageClosed
	}
	s.inflight++
	s.mu.Unlock()
	ok, err := s.try.TryLock(ctx, name)
	s.mu.Lock()
	s.inflight--
	if ok && err == nil {
		s.held++
	}
	s.mu.Unlock()
	return ok, err
}

// String lets certmagic's logs name the wrapped storage.
func (s *trackedStorage) String() string {
	if st, ok := s.Storage.(interface{ String() string }); ok {
		return st.String()
	}
	return "storage"
}

// drain refuses new locks and waits until no lock is held and no call is
// running, or until timeout; it reports whether the storage became idle.
func (s *trackedStorage) drain(timeout time.Duration) bool {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		idle := s.inflight == 0 && s.held == 0
		s.mu.Unlock()
		if idle {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
