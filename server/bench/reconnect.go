package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"relais/server/proto"
)

const (
	reconnectRoomSize = 10 // members of each room
	reconnectMissed   = 20 // messages each client misses
	writerDevices     = 16
)

// reconnect: --clients clients in rooms of ten, all connected; they drop
// at once, 20 messages are sent to every room, and they all reconnect at
// once with their cursors: the time until every one has caught up.
func (r *runner) reconnect(ctx context.Context) error {
	t, err := r.target(ctx, "reconnect")
	if err != nil {
		return err
	}
	defer t.stop()
	n := r.set.clients
	if err := raiseFileLimit(uint64(2*n + 1024)); err != nil {
		return err
	}
	users, err := t.provision(ctx, n, 1)
	if err != nil {
		return err
	}
	ws, err := t.provision(ctx, 1, writerDevices)
	if err != nil {
		return err
	}
	w := ws[0]
	var writers []*member
	for d := range writerDevices {
		m, err := t.join(ctx, w, d, nil, false)
		if err != nil {
			return err
		}
		defer m.close()
		writers = append(writers, m)
	}
	nRooms := (n + reconnectRoomSize - 1) / reconnectRoomSize
	rooms := make([]string, nRooms)
	roomOf := func(i int) int { return i / reconnectRoomSize }
	if err := parallel(ctx, nRooms, len(writers), func(ctx context.Context, k int) error {
		var ids []string
		for i := k * reconnectRoomSize; i < min(n, (k+1)*reconnectRoomSize); i++ {
			ids = append(ids, users[i].ID)
		}
		var out roomID
		err := call(ctx, writers[k%len(writers)], proto.TCreateRoom, map[string]any{"kind": "group",
			"name": fmt.Sprintf("Équipe %d", k+1), "encrypted": false, "users": ids}, &out)
		rooms[k] = out.Room
		return err
	}); err != nil {
		return err
	}
	r.progress("reconnect: connecting %d clients", n)
	g, err := connectAll(ctx, t, users, nil, false, 64)
	if err != nil {
		return err
	}
	defer g.close()
	if err := parallel(ctx, n, 64, func(ctx context.Context, i int) error {
		return call(ctx, g.members[i], proto.TJoin, map[string]any{"room": rooms[roomOf(i)]}, nil)
	}); err != nil {
		return err
	}
	if err := parallel(ctx, nRooms, len(writers), func(ctx context.Context, k int) error {
		return marker(ctx, writers[k%len(writers)], rooms[k], "", g.members[k*reconnectRoomSize:min(n, (k+1)*reconnectRoomSize)])
	}); err != nil {
		return err
	}
	cursors := make([]uint64, n)
	for i, m := range g.members {
		cursors[i] = m.seen(rooms[roomOf(i)])
	}
	r.progress("reconnect: %d clients drop; %d messages go to each of %d rooms", n, reconnectMissed, nRooms)
	g.close()
	if err := parallel(ctx, nRooms, len(writers), func(ctx context.Context, k int) error {
		for j := range reconnectMissed {
			if err := sendOne(ctx, writers[k%len(writers)], rooms[k], r.set.size, fmt.Sprintf("m%d-%d", k, j)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}

	r.progress("reconnect: %d clients reconnect at once", n)
	var each hist
	var caught, failed atomic.Int64
	var lastErr atomic.Pointer[error]
	stop := r.every(time.Second, func() string {
		return fmt.Sprintf("reconnect: %d/%d caught up, %d failed", caught.Load(), n, failed.Load())
	})
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := rooms[roomOf(i)]
			err := catchUp(ctx, t, users[i], room, cursors[i])
			if err != nil {
				failed.Add(1)
				lastErr.Store(&err)
				return
			}
			each.record(time.Since(t0))
			caught.Add(1)
		}()
	}
	wg.Wait()
	total := time.Since(t0)
	stop()
	r.emit("reconnect", "catchup_s", total.Seconds(), "s")
	r.emit("reconnect", "catchup_p50_ms", ms(each.quantile(0.5)), "ms")
	r.emit("reconnect", "catchup_p99_ms", ms(each.quantile(0.99)), "ms")
	r.emit("reconnect", "clients", caught.Load(), "")
	r.emit("reconnect", "missed_per_client", reconnectMissed, "")
	if p := lastErr.Load(); p != nil {
		return fmt.Errorf("%d clients failed to catch up, the last: %w", failed.Load(), *p)
	}
	return nil
}

// catchUp reconnects a client with its cursor and returns once it holds
// every message it missed.
func catchUp(ctx context.Context, t *target, u user, room string, cursor uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	conn, err := t.client(u, 0).Dial(ctx, 256)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	frames, err := conn.Sync(ctx, map[string]uint64{room: cursor})
	if err != nil {
		return err
	}
	got := map[uint64]bool{}
	for _, f := range frames {
		if f.T == proto.TEvent && f.Room == room && f.Seq > cursor {
			got[f.Seq] = true
		}
	}
	for len(got) < reconnectMissed {
		select {
		case f, ok := <-conn.Frames():
			if !ok {
				return fmt.Errorf("%s: connection ended with %d of %d messages", u.Name, len(got), reconnectMissed)
			}
			if f.T == proto.TEvent && f.Room == room && f.Seq > cursor {
				got[f.Seq] = true
			}
		case <-ctx.Done():
			return fmt.Errorf("%s: %d of %d messages: %w", u.Name, len(got), reconnectMissed, ctx.Err())
		}
	}
	return nil
}
