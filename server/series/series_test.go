package series

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

type fake struct {
	now   time.Time
	conns int
	msgs  uint64
	disk  int64
}

func (f *fake) ring() *Ring {
	return New(Source{Conns: func() int { return f.conns }, Messages: func() uint64 { return f.msgs }, Disk: func() int64 { return f.disk }},
		func() time.Time { return f.now })
}

// TestSeriesPerMinute: messages are counted in the minute of the last
// observation before them (the node observes every few seconds),
// connections keep the minute's highest value, the current minute is the
// last value, and a minute without observation is filled.
func TestSeriesPerMinute(t *testing.T) {
	f := &fake{now: time.Unix(600*60, 0), conns: 2, msgs: 100, disk: 10}
	r := f.ring()
	r.Observe()
	f.msgs, f.conns = 103, 5
	f.now = f.now.Add(20 * time.Second)
	r.Observe()
	f.conns = 1
	f.now = f.now.Add(50 * time.Second) // minute 601
	f.msgs, f.disk = 104, 20
	r.Observe()
	f.now = f.now.Add(2 * time.Minute) // minute 603; 602 had no observation
	f.msgs = 110
	got := r.Snapshot(60)
	want := Snapshot{End: 603, Conns: []int{5, 1, 1, 1}, Msgs: []uint64{4, 6, 0, 0}, Disk: []int64{10, 20, 20, 20}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot\n got %+v\nwant %+v", got, want)
	}
	if got := r.Snapshot(2); !reflect.DeepEqual(got.Msgs, []uint64{0, 0}) || got.End != 603 {
		t.Fatalf("last two minutes: %+v", got)
	}
}

// TestSeriesKeepsOneDay: after more than a day, the ring holds exactly a
// day, and a clock jump of years costs no more than a day of filling.
func TestSeriesKeepsOneDay(t *testing.T) {
	f := &fake{now: time.Unix(0, 0)}
	r := f.ring()
	for i := range Minutes + 30 {
		f.msgs = uint64(i)
		f.now = f.now.Add(time.Minute)
		r.Observe()
	}
	s := r.Snapshot(Minutes * 2)
	if len(s.Msgs) != Minutes || s.Msgs[0] != 1 {
		t.Fatalf("%d values, first %d", len(s.Msgs), s.Msgs[0])
	}
	f.now = f.now.Add(10 * 365 * 24 * time.Hour)
	start := time.Now()
	s = r.Snapshot(Minutes)
	if len(s.Msgs) != Minutes || time.Since(start) > time.Second {
		t.Fatalf("after a jump: %d values in %v", len(s.Msgs), time.Since(start))
	}
}

// TestSeriesSurvivesRestart: the minutes saved at shutdown come back at
// start, the downtime shows as minutes without connections or messages,
// and minutes older than a day are dropped.
func TestSeriesSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "activity.json")
	f := &fake{now: time.Unix(1000*60, 0), conns: 3, disk: 7}
	r := f.ring()
	r.Observe()
	f.msgs = 5
	f.now = f.now.Add(time.Minute) // 1001
	r.Observe()
	f.now = f.now.Add(time.Minute) // 1002
	f.msgs = 8
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	g := &fake{now: f.now.Add(3 * time.Minute), conns: 1, disk: 9} // 1005, a new process
	r2 := g.ring()
	if err := r2.Load(path); err != nil {
		t.Fatal(err)
	}
	got := r2.Snapshot(60)
	want := Snapshot{End: 1005, Conns: []int{3, 3, 3, 0, 0, 1}, Msgs: []uint64{5, 3, 0, 0, 0, 0}, Disk: []int64{7, 7, 7, 7, 7, 9}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart\n got %+v\nwant %+v", got, want)
	}
	// Restarted within the minute of the save: that minute goes on,
	// counting from a new process's counter.
	q := &fake{now: f.now.Add(10 * time.Second), conns: 1, disk: 9}
	rq := q.ring()
	if err := rq.Load(path); err != nil {
		t.Fatal(err)
	}
	rq.Observe()
	q.msgs = 1
	if got := rq.Snapshot(60); !reflect.DeepEqual(got.Msgs, []uint64{5, 3, 1}) || !reflect.DeepEqual(got.Conns, []int{3, 3, 3}) || got.End != 1002 {
		t.Fatalf("restarted within the minute: %+v", got)
	}
	h := &fake{now: f.now.Add(25 * time.Hour)}
	r3 := h.ring()
	if err := r3.Load(path); err != nil {
		t.Fatal(err)
	}
	if got := r3.Snapshot(Minutes); len(got.Msgs) != 1 {
		t.Fatalf("a day later, minutes of the day before are back: %+v", got)
	}
	// Within the day, the oldest minutes fall off the ring's start.
	k := &fake{now: f.now.Add((Minutes - 2) * time.Minute)} // minute 2440: 1000 is over a day old, 1001 is not
	r4 := k.ring()
	if err := r4.Load(path); err != nil {
		t.Fatal(err)
	}
	if got := r4.Snapshot(Minutes); len(got.Msgs) != Minutes || got.Msgs[0] != 3 || got.Msgs[1] != 0 {
		t.Fatalf("23 h 58 later: %+v", got.Msgs[:min(2, len(got.Msgs))])
	}
	if err := f.ring().Load(filepath.Join(t.TempDir(), "none.json")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
}

// FuzzParse: a damaged file is refused or gives a series Load can place.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"end":1002,"conns":[3,3],"msgs":[5,1],"disk":[7,7]}`))
	f.Add([]byte(`{"end":-5,"conns":[-1],"msgs":[1],"disk":[1]}`))
	f.Add([]byte(`{"conns":[1,2],"msgs":[1]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parse(b)
		if err != nil {
			return
		}
		if len(s.Conns) != len(s.Msgs) || len(s.Disk) != len(s.Msgs) || len(s.Msgs) > Minutes {
			t.Fatalf("accepted %q", b)
		}
		path := filepath.Join(t.TempDir(), "a.json")
		os.WriteFile(path, b, 0o600)
		r := (&fake{now: time.Unix(0, 0)}).ring()
		if err := r.Load(path); err != nil {
			t.Fatal(err)
		}
		r.Snapshot(Minutes)
	})
}
