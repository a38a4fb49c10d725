package bench

import (
	"context"
	"fmt"

	"relais/server/proto"
)

// fanout: one group of --members members, all connected;
// --senders of them send as fast as their acks allow; every other member
// receives every message.
func (r *runner) fanout(ctx context.Context) error {
	t, err := r.target(ctx, "fanout")
	if err != nil {
		return err
	}
	defer t.stop()
	n := r.set.members
	if err := raiseFileLimit(uint64(2*n + 1024)); err != nil {
		return err
	}
	users, err := t.provision(ctx, n, 1)
	if err != nil {
		return err
	}
	l := &load{}
	g, err := connectAll(ctx, t, users, l, r.set.fullClient, 32)
	if err != nil {
		return err
	}
	defer g.close()
	owner := g.members[0]
	var ids []string
	for _, u := range users[1:] {
		ids = append(ids, u.ID)
	}
	first := ids[:min(len(ids), proto.MaxIDs)]
	var out roomID
	if err := call(ctx, owner, proto.TCreateRoom, map[string]any{"kind": "group", "name": fmt.Sprintf("Fan-out %d", n),
		"encrypted": false, "users": first}, &out); err != nil {
		return err
	}
	room := out.Room
	rest := ids[len(first):]
	if err := parallel(ctx, len(rest), 16, func(ctx context.Context, i int) error {
		return call(ctx, owner, proto.TInvite, map[string]any{"room": room, "user": rest[i]}, nil)
	}); err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	if err := parallel(ctx, n-1, 32, func(ctx context.Context, i int) error {
		return call(ctx, g.members[i+1], proto.TJoin, map[string]any{"room": room}, nil)
	}); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if err := marker(ctx, owner, room, g.members); err != nil {
		return err
	}
	senders := r.set.senders
	r.progress("fanout: room of %d members ready, %d senders; %s warm-up, then %s measured", n, senders, r.set.warmup, r.set.duration)
	rooms := make([]string, senders)
	for i := range rooms {
		rooms[i] = room
	}
	r.measure(ctx, "fanout", l, g.members[:senders], rooms, int64(n-1))
	r.emit("fanout", "members", n, "")
	r.emit("fanout", "senders", senders, "")
	return r.reportLoad("fanout", l, true)
}
