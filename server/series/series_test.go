package series

import (
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
