package bench

import (
	"context"
	"fmt"

	"relais/server/proto"
)

// fanout: one group of --members members, all connected;
// --senders of them send as fast as their acks allow; every other member
// receives every message. The group is end-to-end encrypted, as by
// default, unless --plaintext: its founder publishes its MLS group and the
// other senders join it.
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
		"encrypted": !r.set.plaintext, "users": first}, &out); err != nil {
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
	senders := r.set.senders
	var enc []string
	var payload string
	if !r.set.plaintext {
		if err := publishGroup(ctx, owner, room); err != nil {
			return err
		}
		for _, m := range g.members[1:senders] {
			if err := joinGroup(ctx, m, room); err != nil {
				return err
			}
		}
		epoch, err := groupEpoch(ctx, owner, room)
		if err != nil {
			return err
		}
		enc = make([]string, senders)
		for i := range enc {
			enc[i] = encrypted(room, epoch, r.set.size)
		}
		payload = enc[0]
	}
	if err := marker(ctx, owner, room, payload, g.members); err != nil {
		return err
	}
	r.progress("fanout: %s room of %d members ready, %d senders; %s warm-up, then %s measured", r.set.roomKind(), n, senders, r.set.warmup, r.set.duration)
	rooms := make([]string, senders)
	for i := range rooms {
		rooms[i] = room
	}
	r.measure(ctx, t, "fanout", l, g.members[:senders], rooms, enc, int64(n-1))
	r.emit("fanout", "encrypted", !r.set.plaintext, "")
	r.emit("fanout", "members", n, "")
	r.emit("fanout", "senders", senders, "")
	return r.reportLoad("fanout", l, true)
}
