package bench

import (
	"context"
	"fmt"
)

// dm: --pairs senders, each in a direct room with its own receiver, each
// sending a message after the previous one's ack.
func (r *runner) dm(ctx context.Context) error {
	t, err := r.target(ctx, "dm")
	if err != nil {
		return err
	}
	defer t.stop()
	pairs := r.set.pairs
	if err := raiseFileLimit(uint64(4*pairs + 1024)); err != nil {
		return err
	}
	users, err := t.provision(ctx, 2*pairs, 1)
	if err != nil {
		return err
	}
	l := &load{}
	g, err := connectAll(ctx, t, users, l, r.set.fullClient, 32)
	if err != nil {
		return err
	}
	defer g.close()
	rooms := make([]string, pairs)
	err = parallel(ctx, pairs, 16, func(ctx context.Context, i int) error {
		a, b := g.members[i], g.members[pairs+i]
		var out roomID
		if err := call(ctx, a, "open_dm", map[string]any{"user": b.u.ID, "encrypted": false}, &out); err != nil {
			return err
		}
		rooms[i] = out.Room
		return marker(ctx, a, out.Room, []*member{b})
	})
	if err != nil {
		return fmt.Errorf("open direct rooms: %w", err)
	}
	r.progress("dm: %d direct rooms ready; %s warm-up, then %s measured", pairs, r.set.warmup, r.set.duration)
	r.measure(ctx, "dm", l, g.members[:pairs], rooms, 1)
	return r.reportLoad("dm", l, true)
}
