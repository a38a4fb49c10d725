package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"relais/server/client"
	"relais/server/store"
)

// idle: --scale clients connected, authenticated and synced, doing
// nothing: the node's memory and goroutines per connection. The node runs
// in a child process so that its memory is its own.
func (r *runner) idle(ctx context.Context) error {
	n := r.set.scale
	if err := raiseFileLimit(uint64(n + 256)); err != nil {
		return err
	}
	var t *target
	var stats func(gc bool) (childStats, error)
	profile := func() {}
	if r.set.url != "" {
		if r.set.metricsURL == "" {
			return errors.New("idle with --url: give --metrics-url, the node's --metrics-listen address (the public listener serves no metrics)")
		}
		var err error
		if t, err = r.remote(); err != nil {
			return err
		}
		stats = func(bool) (childStats, error) { return remoteStats(ctx, r.set.metricsURL) }
	} else {
		dir, err := os.MkdirTemp(r.tmp, "idle-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		db, err := store.Open(filepath.Join(dir, "relais.db"), store.Options{})
		if err != nil {
			return err
		}
		users, err := provision(ctx, db, n, 1)
		db.Close()
		if err != nil {
			return err
		}
		c, err := r.spawnChild(ctx, dir)
		if err != nil {
			return err
		}
		defer c.stop()
		t = &target{url: c.url, dial: loopbackDialer(c.url), stop: func() {}}
		if r.set.tls {
			caPEM, err := os.ReadFile(filepath.Join(dir, "tls", "local", "ca.crt"))
			if err != nil {
				return fmt.Errorf("the child node's local CA: %w", err)
			}
			if t.tls, err = trustCA(caPEM); err != nil {
				return err
			}
		}
		t.provision = func(context.Context, int, int) ([]user, error) { return users, nil }
		stats = func(gc bool) (childStats, error) { return c.stats(ctx, gc) }
		if r.set.memprofile != "" {
			profile = func() {
				path := r.set.memprofile + ".idle-node"
				if err := c.heapProfile(ctx, path); err != nil {
					r.progress("idle: heap profile of the node: %v", err)
				} else {
					r.progress("idle: heap profile of the node written to %s", path)
				}
			}
		}
	}
	defer t.stop()
	users, err := t.provision(ctx, n, 1)
	if err != nil {
		return err
	}
	before, err := stats(true)
	if err != nil {
		return err
	}
	conns := make([]*client.Conn, n)
	var connected atomic.Int64
	t0 := time.Now()
	stop := r.every(time.Second, func() string {
		c := connected.Load()
		return fmt.Sprintf("idle: %d/%d connected and synced (%.0f/s)", c, n, float64(c)/time.Since(t0).Seconds())
	})
	err = parallel(ctx, n, 128, func(ctx context.Context, i int) error {
		conn, _, err := t.connect(ctx, users[i], 0, 8)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns[i] = conn
		connected.Add(1)
		return nil
	})
	connectTime := time.Since(t0)
	stop()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
	}()
	if err != nil {
		return err
	}
	r.progress("idle: %d connections in %s; holding them %s", n, connectTime.Round(time.Millisecond), r.set.hold)
	select {
	case <-time.After(r.set.hold):
	case <-ctx.Done():
		return ctx.Err()
	}
	alive := 0
	for _, c := range conns {
		select {
		case <-c.Done():
		default:
			alive++
		}
	}
	raw, err := stats(false)
	if err != nil {
		return err
	}
	after, err := stats(true)
	if err != nil {
		return err
	}
	profile()
	per := func(a, b int64) float64 { return float64(a-b) / float64(n) }
	r.emit("idle", "conns", alive, "")
	if after.RSS > 0 {
		r.emit("idle", "rss_per_conn_kib", per(after.RSS, before.RSS)/1024, "KiB")
		r.emit("idle", "rss_per_conn_before_gc_kib", per(raw.RSS, before.RSS)/1024, "KiB")
		r.emit("idle", "node_rss_mib", float64(after.RSS)/(1<<20), "MiB")
	}
	r.emit("idle", "heap_per_conn_kib", per(after.HeapInuse, before.HeapInuse)/1024, "KiB")
	if after.StackInuse > 0 {
		r.emit("idle", "stack_per_conn_kib", per(after.StackInuse, before.StackInuse)/1024, "KiB")
	}
	r.emit("idle", "goroutines_per_conn", per(after.Goroutines, before.Goroutines), "")
	r.emit("idle", "connect_per_s", float64(n)/connectTime.Seconds(), "1/s")
	if after.Sessions > 0 {
		r.emit("idle", "node_sessions", after.Sessions, "")
	}
	if alive < n {
		return fmt.Errorf("%d of %d connections were closed while idle", n-alive, n)
	}
	return nil
}

// remoteStats reads a node's memory, goroutines and sessions from its
// metrics endpoint (a node at --url; the Go runtime's and the process's
// standard metrics). Nodes serve metrics only on their --metrics-listen.
func remoteStats(ctx context.Context, metricsURL string) (childStats, error) {
	var st childStats
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", metricsURL, nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			st.RSS = int64(v)
		case "go_memstats_heap_inuse_bytes":
			st.HeapInuse = int64(v)
		case "go_memstats_heap_alloc_bytes":
			st.HeapAlloc = int64(v)
		case "go_memstats_stack_inuse_bytes":
			st.StackInuse = int64(v)
		case "go_memstats_sys_bytes":
			st.Sys = int64(v)
		case "go_goroutines":
			st.Goroutines = int64(v)
		case "relais_sessions":
			st.Sessions = int64(v)
		}
	}
	return st, sc.Err()
}
