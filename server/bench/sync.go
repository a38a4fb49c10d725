package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"relais/server/client"
	"relais/server/proto"
)

// syncRuns is how many fresh connections sync measures (the median is
// reported).
const syncRuns = 5

// sync: a user in --rooms groups of three members, each with
// --messages messages; time from dialing a fresh device's connection to
// a usable state: every room, and the last 20 events of each ("synced"),
// decoded by the reference client; and, as sync_undecoded_ms, the time
// to "synced" on a connection that does not decode the frames.
func (r *runner) sync(ctx context.Context) error {
	t, err := r.target(ctx, "sync")
	if err != nil {
		return err
	}
	defer t.stop()
	const helperDevices = 5
	main, err := t.provision(ctx, 1, 1+2*syncRuns)
	if err != nil {
		return err
	}
	helpers, err := t.provision(ctx, 2, helperDevices)
	if err != nil {
		return err
	}
	u := main[0]
	own, err := t.join(ctx, u, 0, nil, false)
	if err != nil {
		return err
	}
	defer own.close()
	var loaders []*member
	for _, h := range helpers {
		for d := range helperDevices {
			m, err := t.join(ctx, h, d, nil, false)
			if err != nil {
				return err
			}
			defer m.close()
			loaders = append(loaders, m)
		}
	}
	n := r.set.rooms
	rooms := make([]string, n)
	r.progress("sync: creating %d rooms of %d messages", n, r.set.messages)
	for i := range rooms {
		var out roomID
		if err := call(ctx, own, proto.TCreateRoom, map[string]any{"kind": "group", "name": fmt.Sprintf("Salle %d", i+1),
			"encrypted": false, "users": []string{helpers[0].ID, helpers[1].ID}}, &out); err != nil {
			return err
		}
		rooms[i] = out.Room
	}
	for _, h := range []int{0, helperDevices} {
		if err := parallel(ctx, n, 1, func(ctx context.Context, i int) error {
			return call(ctx, loaders[h], proto.TJoin, map[string]any{"room": rooms[i]}, nil)
		}); err != nil {
			return err
		}
	}
	// Each loader fills its share of the rooms, one message after the
	// other; the two helpers take turns room by room.
	err = parallel(ctx, len(loaders), len(loaders), func(ctx context.Context, k int) error {
		for i := k; i < n; i += len(loaders) {
			for j := range r.set.messages {
				if err := sendOne(ctx, loaders[k], rooms[i], r.set.size, fmt.Sprintf("s%d-%d", i, j)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fill rooms: %w", err)
	}
	var took []time.Duration
	var frames, bytes int
	wantEvents := n * min(r.set.messages, 20)
	for run := range syncRuns {
		t0 := time.Now()
		conn, fs, err := t.connect(ctx, u, 1+run, 4096)
		if err != nil {
			return err
		}
		var nRooms, nEvents int
		frames, bytes = len(fs), 0
		count := func(f client.Frame) {
			bytes += len(f.Raw) + 1
			switch f.T {
			case proto.TRoom:
				nRooms++
			case proto.TEvent:
				nEvents++
			}
		}
		for _, f := range fs {
			count(f)
		}
		// Usable means every room and its last events are in hand, even
		// if some were still on their way when "synced" was read.
		deadline := time.After(30 * time.Second)
		for nRooms < n || nEvents < wantEvents {
			select {
			case f, ok := <-conn.Frames():
				if !ok {
					return fmt.Errorf("sync: connection ended: %v", conn.Err())
				}
				frames++
				count(f)
				continue
			case <-deadline:
			}
			conn.CloseNow()
			return fmt.Errorf("sync gave %d rooms and %d events, want %d and %d", nRooms, nEvents, n, wantEvents)
		}
		d := time.Since(t0)
		conn.CloseNow()
		took = append(took, d)
		r.progress("sync: run %d: %.2f ms, %d frames, %d KiB", run+1, ms(d), frames, bytes>>10)
	}
	// The node's part: the same on the bench's lean connection, which
	// waits for "synced" without decoding the frames before it.
	var lean []time.Duration
	for run := range syncRuns {
		t0 := time.Now()
		w, err := t.dialLean(ctx, u, 1+syncRuns+run, func(event) {})
		if err != nil {
			return err
		}
		d := time.Since(t0)
		w.closeNow()
		lean = append(lean, d)
	}
	slices.Sort(took)
	slices.Sort(lean)
	r.emit("sync", "sync_ms", ms(took[len(took)/2]), "ms")
	r.emit("sync", "sync_undecoded_ms", ms(lean[len(lean)/2]), "ms")
	r.emit("sync", "sync_min_ms", ms(took[0]), "ms")
	r.emit("sync", "sync_max_ms", ms(took[len(took)-1]), "ms")
	r.emit("sync", "rooms", n, "")
	r.emit("sync", "frames", frames, "")
	r.emit("sync", "sync_kib", float64(bytes)/1024, "KiB")
	return nil
}

// sendOne sends one message and waits for its ack.
func sendOne(ctx context.Context, m *member, room string, size int, id string) error {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := m.conn.send(sctx, id, room, message{typ: proto.EvText, text: body(size, time.Now())}); err != nil {
		return fmt.Errorf("%s: send: %w", m.u.Name, err)
	}
	return nil
}
