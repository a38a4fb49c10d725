package ws_test

import (
	"testing"

	"relais/cluster/nodetest"
	"relais/server/proto"
)

// TestSearchFrameAnswersHitsAndIsRateLimited: a "search" frame over a real
// node's websocket answers the forum's matching messages with their marks;
// a malformed one gets a stable code; a flood of them is refused with
// rate_limited past the search class's burst.
func TestSearchFrameAnswersHitsAndIsRateLimited(t *testing.T) {
	n := nodetest.Start(t, wsLimits)
	alice := newDev(t, n, "Alice Search")
	var res map[string]string
	alice.call("create_room", map[string]any{"kind": "forum", "name": "Forum recherche"}, &res)
	room := roomOf(t, res)
	ack := alice.send(room, "Compte rendu de la réunion")
	alice.send(room, "autre sujet")

	var got proto.SearchResult
	alice.call("search", map[string]any{"q": "REUN", "room": room}, &got)
	if len(got.Hits) != 1 || got.Hits[0].Seq != ack.Seq || len(got.Hits[0].Marks) != 1 || got.Hits[0].Marks[0] != [2]int{19, 26} {
		t.Fatalf("search answered %+v", got)
	}
	for _, c := range []struct {
		fields map[string]any
		code   string
	}{
		{map[string]any{"q": "  "}, proto.CodeBadRequest},
		{map[string]any{"q": "x", "limit": proto.MaxSearch + 1}, proto.CodeBadRequest},
		{map[string]any{"q": "x", "cursor": "1.2.3"}, proto.CodeBadRequest},
		{map[string]any{"q": "a b c d e f g h i"}, proto.CodeTooLarge},
	} {
		if code := alice.code("search", c.fields); code != c.code {
			t.Errorf("search %v: %q, want %s", c.fields, code, c.code)
		}
	}

	flooder := newDev(t, n, "Flood Search")
	floodUntilLimited(t, flooder, "search", func(int) map[string]any { return map[string]any{"q": "reunion"} })
}
