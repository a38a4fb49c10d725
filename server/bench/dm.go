package bench

import (
	"context"
	"fmt"

	"relais/server/proto"
)

// dm: --pairs senders, each in a direct room with its own receiver, each
// sending a message after the previous one's ack. The direct rooms are
// end-to-end encrypted, as by default, unless --plaintext.
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
	var enc []string
	if !r.set.plaintext {
		enc = make([]string, pairs)
	}
	err = parallel(ctx, pairs, 16, func(ctx context.Context, i int) error {
		a, b := g.members[i], g.members[pairs+i]
		var out roomID
		if err := call(ctx, a, proto.TOpenDM, map[string]any{"user": b.u.ID, "encrypted": !r.set.plaintext}, &out); err != nil {
			return err
		}
		rooms[i] = out.Room
		var payload string
		if enc != nil {
			if err := publishGroup(ctx, a, out.Room); err != nil {
				return err
			}
			payload = encrypted(out.Room, 1, r.set.size)
			enc[i] = payload
		}
		return marker(ctx, a, out.Room, payload, []*member{b})
	})
	if err != nil {
		return fmt.Errorf("open direct rooms: %w", err)
	}
	r.progress("dm: %d %s direct rooms ready; %s warm-up, then %s measured", pairs, r.set.roomKind(), r.set.warmup, r.set.duration)
	r.measure(ctx, t, "dm", l, g.members[:pairs], rooms, enc, 1)
	r.emit("dm", "encrypted", !r.set.plaintext, "")
	return r.reportLoad("dm", l, true)
}
