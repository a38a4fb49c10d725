package chat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"relais/cluster/nodetest"
)

// TestCleanRestartRepublishesNothing: after a clean stop, a node that
// starts again finds its outbox empty, republishes nothing and does not
// say that a crash left events behind.
func TestCleanRestartRepublishesNothing(t *testing.T) {
	var logs nodetest.Logs
	n := nodetest.Start(t, nodetest.WithLogs(&logs))
	alice := n.NewUser("Alice Martin")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := alice.Dial(ctx, 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var forum struct{ Room string }
	if err := conn.Call(ctx, "create_room", map[string]any{"kind": "forum", "name": "Voirie"}, &forum); err != nil {
		t.Fatal(err)
	}
	// Fewer events than the outbox's lag, so that only the clean stop
	// can have marked them published.
	for i := range 20 {
		if _, err := conn.Send(ctx, "m"+string(rune('a'+i)), forum.Room, "message"); err != nil {
			t.Fatal(err)
		}
	}
	conn.CloseNow()
	n.Restart()
	if strings.Contains(logs.String(), "republished") {
		t.Fatalf("a clean restart republished events:\n%s", logs.String())
	}
}
