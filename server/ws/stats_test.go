package ws

import (
	"testing"

	"relais/server/proto"
	"relais/server/stats"
)

// TestStatsFrameTypesWithoutAllocation: counting a frame in or out, by
// its type, allocates nothing, and reads the type the encoder wrote.
func TestStatsFrameTypesWithoutAllocation(t *testing.T) {
	srv := &Server{stats: newStats()}
	for _, tc := range []struct {
		frame []byte
		want  string
	}{
		{proto.Encode(proto.Result{T: proto.TResult, ID: "q1"}), proto.TResult},
		{proto.Encode(proto.Hello{T: proto.THello, V: proto.Version}), proto.THello},
		{proto.ErrorFrameOf("q2", proto.Errorf(proto.CodeBadFrame, "no")), proto.TError},
		{[]byte(`{"t":"forged-type"}`), stats.Other},
		{[]byte(`not json`), stats.Other},
	} {
		before := srv.stats.FramesOut.Get(tc.want)
		if a := testing.AllocsPerRun(100, func() { srv.countOut(tc.frame) }); a != 0 {
			t.Errorf("%s: %v allocations per frame", tc.frame, a)
		}
		if got := srv.stats.FramesOut.Get(tc.want) - before; got != 101 {
			t.Errorf("%s: counted %d times as %q, want 101", tc.frame, got, tc.want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { srv.stats.FramesIn.Inc(proto.TSend) }); a != 0 {
		t.Errorf("frames in: %v allocations per frame", a)
	}
}
