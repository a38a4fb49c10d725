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
	conn := nodetest.Synced(t, ctx, alice)
	room := nodetest.Forum(t, ctx, conn, "Voirie")
	// Fewer events than the outbox's lag, so that only the clean stop
	// can have marked them published.
	for i := range 20 {
		if _, err := conn.Send(ctx, "m"+string(rune('a'+i)), room, "message"); err != nil {
			t.Fatal(err)
		}
	}
	conn.CloseNow()
	n.Restart()
	if strings.Contains(logs.String(), "republished") {
		t.Fatalf("a clean restart republished events:\n%s", logs.String())
	}
}
