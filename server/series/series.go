// Package series keeps the node's recent activity in memory for the admin
// page's chart: a ring of per-minute samples (connections, messages sent,
// bytes on disk) over the last day. It is small on purpose: 1440 samples
// of three numbers, saved to a file at shutdown and read back at start, no
// dependency; Prometheus is the tool for anything longer.
package series

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"
)

// Minutes is how many complete minutes the ring keeps: one day.
const Minutes = 24 * 60

// Source reads the node's figures. Conns is read at every Observe (the
// minute keeps the highest value seen), Messages is a counter since start,
// Disk is read once a minute.
type Source struct {
	Conns    func() int
	Messages func() uint64
	Disk     func() int64
}

// sample is one minute.
type sample struct {
	minute int64 // Unix minutes
	conns  int
	msgs   uint64
	disk   int64
}

// Ring holds the samples. Its methods are safe for concurrent use.
type Ring struct {
	src Source
	now func() time.Time

	mu    sync.Mutex
	ring  [Minutes]sample
	n     int // complete samples held
	next  int // where the next complete sample goes
	cur   sample
	base  uint64 // Messages at the start of cur
	begun bool
}

// New returns a ring over src; now is its clock (time.Now when nil).
func New(src Source, now func() time.Time) *Ring {
	if now == nil {
		now = time.Now
	}
	return &Ring{src: src, now: now}
}

// Run observes every period until ctx ends.
func (r *Ring) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	r.Observe()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Observe()
		}
	}
}

// Observe reads the source and closes the minutes that ended since the
// last call. Minutes without an observation (the process was stopped, or
// the clock jumped) are filled with no messages and the connections last
// seen.
func (r *Ring) Observe() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observe()
}

func (r *Ring) observe() {
	minute := r.now().Unix() / 60
	conns, total := r.src.Conns(), r.src.Messages()
	if !r.begun {
		r.begun, r.base = true, total
		if r.n > 0 {
			last := r.ring[(r.next-1+Minutes)%Minutes]
			if last.minute == minute {
				// Restarted within the minute Save ended: carry on with it.
				r.next, r.n = (r.next-1+Minutes)%Minutes, r.n-1
				// Modular: total - base is the minute's count from here on.
				r.base = total - last.msgs
				r.cur = sample{minute: minute, conns: max(last.conns, conns), msgs: last.msgs, disk: r.src.Disk()}
				return
			}
			// Minutes restored by Load: the node was down since, with no
			// connection and no message.
			for m := max(last.minute+1, minute-Minutes+1); m < minute; m++ {
				r.push(sample{minute: m, disk: last.disk})
			}
		}
		r.cur = sample{minute: minute, conns: conns, disk: r.src.Disk()}
		return
	}
	if minute > r.cur.minute {
		// The messages counted since the last observation belong to the
		// minute that just ended.
		r.cur.msgs = total - r.base
		r.push(r.cur)
		for m := max(r.cur.minute+1, minute-Minutes+1); m < minute; m++ {
			r.push(sample{minute: m, conns: r.cur.conns, disk: r.cur.disk})
		}
		r.base = total
		r.cur = sample{minute: minute, disk: r.src.Disk()}
	}
	r.cur.conns = max(r.cur.conns, conns)
	r.cur.msgs = total - r.base
}

func (r *Ring) push(s sample) {
	r.ring[r.next] = s
	r.next = (r.next + 1) % Minutes
	r.n = min(r.n+1, Minutes)
}

// Snapshot is the series as the admin page draws it: one value per minute,
// oldest first; the last one is the current, unfinished minute.
type Snapshot struct {
	// End is the Unix minute of the last value.
	End   int64    `json:"end"`
	Conns []int    `json:"conns"`
	Msgs  []uint64 `json:"msgs"`
	Disk  []int64  `json:"disk"`
}

// Snapshot observes once more and returns up to the last `minutes`
// minutes (at most Minutes), the current one included.
func (r *Ring) Snapshot(minutes int) Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observe()
	minutes = min(max(minutes, 1), Minutes)
	k := min(r.n, minutes-1)
	s := Snapshot{End: r.cur.minute, Conns: make([]int, 0, k+1), Msgs: make([]uint64, 0, k+1), Disk: make([]int64, 0, k+1)}
	for i := k; i > 0; i-- {
		p := r.ring[(r.next-i+Minutes)%Minutes]
		s.Conns, s.Msgs, s.Disk = append(s.Conns, p.conns), append(s.Msgs, p.msgs), append(s.Disk, p.disk)
	}
	s.Conns, s.Msgs, s.Disk = append(s.Conns, r.cur.conns), append(s.Msgs, r.cur.msgs), append(s.Disk, r.cur.disk)
	return s
}

// Save writes the series, the current minute included, to path (mode
// 0600), for Load at the next start.
func (r *Ring) Save(path string) error {
	b, err := json.Marshal(r.Snapshot(Minutes))
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("series: save: %w", err)
	}
	return os.Rename(tmp, path)
}

// Load reads what Save wrote, before the first observation; a missing
// file is no error. Minutes older than a day are dropped.
func (r *Ring) Load(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("series: load: %w", err)
	}
	s, err := parse(b)
	if err != nil {
		return fmt.Errorf("series: %s: %w", path, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.begun {
		return errors.New("series: Load after the first observation")
	}
	now := r.now().Unix() / 60
	first := s.End - int64(len(s.Msgs)) + 1
	for i := range s.Msgs {
		if m := first + int64(i); m > now-Minutes && m <= now {
			r.push(sample{minute: m, conns: s.Conns[i], msgs: s.Msgs[i], disk: s.Disk[i]})
		}
	}
	return nil
}

// parse reads a saved series, refusing what Save cannot have written.
func parse(b []byte) (Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return Snapshot{}, fmt.Errorf("not a saved series: %w", err)
	}
	if len(s.Msgs) > Minutes || len(s.Conns) != len(s.Msgs) || len(s.Disk) != len(s.Msgs) {
		return Snapshot{}, errors.New("not a saved series: lengths differ or exceed a day")
	}
	for _, c := range s.Conns {
		if c < 0 {
			return Snapshot{}, errors.New("not a saved series: negative connections")
		}
	}
	return s, nil
}
