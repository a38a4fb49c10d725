package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"relais/server/proto"
	"relais/server/store"
)

// Messages are, by default, MLS application messages in end-to-end
// encrypted rooms, as direct rooms and private groups are by default: the
// node parses their framing and checks the sender's device and epoch
// against the room's group (the MLS itself is make-believe, see package
// mlsframe; the node never decrypts). With --plaintext they are text
// messages in rooms that are not encrypted. Each send's id, which the
// event carries as its "cid", starts with its send time (Unix
// nanoseconds, this process's clock), so that receivers can measure
// end-to-end latency; a text body starts with it too, and is padded to
// size bytes with characters JSON leaves as they are.
const bodyMark = "t="

// message is what a load sends: a text, or an encrypted payload.
type message struct {
	typ  string // proto.EvText or proto.EvEncrypted
	text string // the body, or the base64 of the MLS message
}

// body returns the text of a message of size bytes sent at t.
func body(size int, t time.Time) string {
	b := make([]byte, 0, max(size, 32))
	b = append(b, bodyMark...)
	b = strconv.AppendInt(b, t.UnixNano(), 10)
	b = append(b, ' ')
	for len(b) < size {
		b = append(b, "bonjour "[len(b)%8])
	}
	return string(b)
}

// sendID is the id of a load's send started at t: its send time first.
func sendID(t time.Time, prefix string, i int) string {
	b := strconv.AppendInt(make([]byte, 0, 48), t.UnixNano(), 10)
	b = append(b, '-')
	b = append(b, prefix...)
	return string(strconv.AppendInt(b, int64(i), 10))
}

var cidField = []byte(`"cid":"`)

// sentAt finds the send time at the start of an event frame's cid.
func sentAt(raw []byte) (time.Time, bool) {
	ns, err := strconv.ParseInt(string(numberAfter(raw, cidField)), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// window is the measured part of a run: sends started in [from, to)
// count. It is closed (counts nothing) until set.
type window struct{ from, to atomic.Int64 }

func (w *window) set(from, to time.Time) {
	w.to.Store(to.UnixNano())
	w.from.Store(from.UnixNano())
}

func (w *window) in(t time.Time) bool {
	f, ns := w.from.Load(), t.UnixNano()
	return f != 0 && ns >= f && ns < w.to.Load()
}

func (w *window) length() time.Duration { return time.Duration(w.to.Load() - w.from.Load()) }

// load is what a scenario with senders and receivers measures.
type load struct {
	win       window
	ack       hist
	e2e       hist
	acked     atomic.Int64 // sends started in the window and acknowledged
	delivered atomic.Int64 // their deliveries to members other than the sender
	allAcked  atomic.Int64
	allDeliv  atomic.Int64
	errors    atomic.Int64
	lastErr   atomic.Pointer[error]
	lost      atomic.Int64 // connections that ended while measured
	// writer is the in-process node's store writer over the window;
	// zero for a node at --url.
	writerMu sync.Mutex
	writer   store.WriterStats
}

func (l *load) fail(err error) {
	l.errors.Add(1)
	l.lastErr.Store(&err)
}

// member is one connection of a room member and what it has received.
type member struct {
	u    user
	l    *load // nil: nothing measured
	conn wire
	// seq is the highest event seq received, per room.
	mu  sync.Mutex
	seq map[string]uint64
	// closing is set before the bench closes the connection itself.
	closing atomic.Bool
}

// join connects device dev of u as a member whose receptions count in l.
func (t *target) join(ctx context.Context, u user, dev int, l *load, full bool) (*member, error) {
	m := &member{u: u, l: l, seq: map[string]uint64{}}
	conn, err := t.dialWire(ctx, u, dev, full, m.received)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", u.Name, err)
	}
	m.conn = conn
	go func() {
		<-conn.done()
		if l != nil && !m.closing.Load() {
			l.lost.Add(1)
			l.fail(fmt.Errorf("%s: connection ended: %v", u.Name, conn.err()))
		}
	}()
	return m, nil
}

func (m *member) seen(room string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq[room]
}

// close ends the member's connection on purpose.
func (m *member) close() {
	m.closing.Store(true)
	m.conn.closeNow()
}

// received records an event, and the end-to-end latency of a message
// from someone else.
func (m *member) received(ev event) {
	now := time.Now()
	m.mu.Lock()
	if ev.seq > m.seq[ev.room] {
		m.seq[ev.room] = ev.seq
	}
	m.mu.Unlock()
	l := m.l
	if l == nil || (ev.typ != proto.EvText && ev.typ != proto.EvEncrypted) || ev.from == m.u.ID {
		return
	}
	t, ok := sentAt(ev.raw)
	if !ok {
		return
	}
	l.allDeliv.Add(1)
	if l.win.in(t) {
		l.delivered.Add(1)
		l.e2e.record(now.Sub(t))
	}
}

// waitSeen waits until every member has received event seq of room.
func waitSeen(ctx context.Context, members []*member, room string, seq uint64, within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, m := range members {
		for m.seen(room) < seq {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not receive event %d of %s within %s (has %d)", m.u.Name, seq, room, within, m.seen(room))
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			select {
			case <-m.conn.done():
				return fmt.Errorf("%s: connection ended: %v", m.u.Name, m.conn.err())
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	return nil
}

// maxSendsPerSender bounds every send loop in count, besides its deadline.
const maxSendsPerSender = 10_000_000

// sendLoop sends messages to room one after the other, each after
// the previous one's ack, until the deadline; with an interval, it paces
// its sends, the first one after phase. A text message is sent when enc
// is empty, else enc (the base64 of an MLS application message). It
// returns the seq of the last acknowledged event.
func sendLoop(ctx context.Context, l *load, m *member, room string, size int, enc string, end time.Time, interval, phase time.Duration) uint64 {
	prefix := "b" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	var last uint64
	next := time.Now().Add(phase)
	for i := 0; i < maxSendsPerSender && ctx.Err() == nil; i++ {
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = next.Add(interval)
		}
		t0 := time.Now()
		if !t0.Before(end) {
			break
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		msg := message{typ: proto.EvEncrypted, text: enc}
		if enc == "" {
			msg = message{typ: proto.EvText, text: body(size, t0)}
		}
		seq, err := m.conn.send(sctx, sendID(t0, prefix, i), room, msg)
		cancel()
		if err != nil {
			l.fail(fmt.Errorf("%s: send: %w", m.u.Name, err))
			if m.conn.err() != nil {
				return last
			}
			continue
		}
		d := time.Since(t0)
		last = seq
		l.allAcked.Add(1)
		if l.win.in(t0) {
			l.acked.Add(1)
			l.ack.record(d)
		}
	}
	return last
}

// drain waits until the deliveries stop growing (every member got what
// was sent) or the time is up.
func drain(l *load, expect int64, within time.Duration) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && l.allDeliv.Load() < expect {
		time.Sleep(5 * time.Millisecond)
	}
}

// group is the connected members of a scenario, one connection each.
type group struct {
	members []*member
}

// connectAll connects device 0 of every user, width connections at a
// time; their receptions count in l.
func connectAll(ctx context.Context, t *target, users []user, l *load, full bool, width int) (*group, error) {
	g := &group{members: make([]*member, len(users))}
	err := parallel(ctx, len(users), width, func(ctx context.Context, i int) error {
		m, err := t.join(ctx, users[i], 0, l, full)
		g.members[i] = m
		return err
	})
	if err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// close closes every connection.
func (g *group) close() {
	for _, m := range g.members {
		if m != nil {
			m.close()
		}
	}
	for _, m := range g.members {
		if m != nil {
			<-m.conn.done()
		}
	}
}

// roomID is the answer of create_room and open_dm.
type roomID struct {
	Room string `json:"room"`
}

// call makes a request on a member's connection with a deadline.
func call(ctx context.Context, m *member, t string, fields map[string]any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := m.conn.call(ctx, t, fields, out); err != nil {
		return fmt.Errorf("%s: %s: %w", m.u.Name, t, err)
	}
	return nil
}

// marker sends one message to room (outside any measured window) and
// waits until every member has received it: after it, the room's fan-out
// reaches them all. enc is the room's encrypted payload ("": a text).
func marker(ctx context.Context, from *member, room, enc string, members []*member) error {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	msg := message{typ: proto.EvText, text: "marker"}
	if enc != "" {
		msg = message{typ: proto.EvEncrypted, text: enc}
	}
	seq, err := from.conn.send(sctx, "marker-"+strconv.FormatInt(time.Now().UnixNano(), 36), room, msg)
	if err != nil {
		return fmt.Errorf("%s: send marker: %w", from.u.Name, err)
	}
	return waitSeen(ctx, members, room, seq, 60*time.Second)
}

// measure runs the senders (sender i sends to rooms[i], the encrypted
// payload enc[i] if enc is not nil) for the warm-up and the measured
// duration, printing progress, then waits for the deliveries still on
// their way (perSend of them per acknowledged send).
func (r *runner) measure(ctx context.Context, t *target, name string, l *load, senders []*member, rooms, enc []string, perSend int64) {
	start := time.Now()
	from := start.Add(r.set.warmup)
	end := from.Add(r.set.duration)
	l.win.set(from, end)
	if t.node != nil {
		db := t.node.DB
		go func() {
			time.Sleep(time.Until(from))
			w := db.WriterStats()
			time.Sleep(time.Until(end))
			l.writerMu.Lock()
			l.writer = db.WriterStats().Sub(w)
			l.writerMu.Unlock()
		}()
	}
	var interval time.Duration
	if r.set.rate > 0 {
		interval = time.Duration(float64(len(senders)) / r.set.rate * float64(time.Second))
	}
	var lastAcked, lastDeliv int64
	lastT := start
	stop := r.every(time.Second, func() string {
		now := time.Now()
		a, d := l.allAcked.Load(), l.allDeliv.Load()
		dt := now.Sub(lastT).Seconds()
		line := fmt.Sprintf("%s: %4.0fs  %8.0f acked/s  %9.0f deliveries/s  ack p99 %6.2f ms  e2e p99 %6.2f ms  errors %d",
			name, now.Sub(start).Seconds(), float64(a-lastAcked)/dt, float64(d-lastDeliv)/dt,
			ms(l.ack.quantile(0.99)), ms(l.e2e.quantile(0.99)), l.errors.Load())
		lastAcked, lastDeliv, lastT = a, d, now
		return line
	})
	var wg sync.WaitGroup
	for i, m := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Paced senders are spread over the interval, not in step.
			phase := interval * time.Duration(i) / time.Duration(len(senders))
			var payload string
			if enc != nil {
				payload = enc[i]
			}
			sendLoop(ctx, l, m, rooms[i], r.set.size, payload, end, interval, phase)
		}()
	}
	wg.Wait()
	drain(l, l.allAcked.Load()*perSend, 10*time.Second)
	stop()
}

// report prints the figures of a send load.
func (r *runner) reportLoad(name string, l *load, withDeliveries bool) error {
	secs := l.win.length().Seconds()
	r.emit(name, "acked_per_s", float64(l.acked.Load())/secs, "1/s")
	if withDeliveries {
		r.emit(name, "deliveries_per_s", float64(l.delivered.Load())/secs, "1/s")
	}
	r.emit(name, "ack_p50_ms", ms(l.ack.quantile(0.50)), "ms")
	r.emit(name, "ack_p95_ms", ms(l.ack.quantile(0.95)), "ms")
	r.emit(name, "ack_p99_ms", ms(l.ack.quantile(0.99)), "ms")
	r.emit(name, "e2e_p50_ms", ms(l.e2e.quantile(0.50)), "ms")
	r.emit(name, "e2e_p95_ms", ms(l.e2e.quantile(0.95)), "ms")
	r.emit(name, "e2e_p99_ms", ms(l.e2e.quantile(0.99)), "ms")
	r.emit(name, "e2e_max_ms", ms(l.e2e.quantile(1)), "ms")
	r.emit(name, "errors", l.errors.Load(), "")
	l.writerMu.Lock()
	w := l.writer
	l.writerMu.Unlock()
	if w.Commits > 0 {
		// The store's single writer, which every send waits for: how
		// many sends share a commit, what a commit writes and costs,
		// and how much of the window the writer was busy.
		r.emit(name, "writes_per_commit", float64(w.Writes)/float64(w.Commits), "")
		r.emit(name, "pages_per_write", float64(w.Pages)/float64(w.Writes), "")
		r.emit(name, "commit_ms", ms(w.Busy/time.Duration(w.Commits)), "ms")
		r.emit(name, "writer_busy", float64(w.Busy)/float64(secs*float64(time.Second)), "")
	}
	if l.acked.Load() == 0 {
		return fmt.Errorf("no send was acknowledged")
	}
	if p := l.lastErr.Load(); p != nil {
		return fmt.Errorf("%d errors, the last: %w", l.errors.Load(), *p)
	}
	return nil
}
