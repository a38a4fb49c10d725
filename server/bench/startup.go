package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"relais/server/id"
	"relais/server/proto"
	"relais/server/store"
)

// startup: the binary's size; the time from exec to a successful /healthz
// and the resident memory once settled, of `relais serve` on an empty
// store and on a store of --store-messages messages (medians of --runs).
func (r *runner) startup(ctx context.Context) error {
	if r.set.url != "" {
		return errors.New("startup measures nodes the bench starts itself: it does not take --url")
	}
	bin, err := r.binary()
	if err != nil {
		return err
	}
	st, err := os.Stat(bin)
	if err != nil {
		return err
	}
	r.emit("startup", "binary_mb", float64(st.Size())/1e6, "MB")

	var answers []time.Duration
	var rss []int64
	for run := range r.set.runs {
		dir, err := os.MkdirTemp(r.tmp, "startup-")
		if err != nil {
			return err
		}
		a, m, err := r.coldStart(ctx, bin, dir)
		os.RemoveAll(dir)
		if err != nil {
			return err
		}
		r.progress("startup: empty store, run %d: first answer after %.1f ms, %.1f MiB resident", run+1, ms(a), float64(m)/(1<<20))
		answers, rss = append(answers, a), append(rss, m)
	}
	r.emit("startup", "first_answer_ms", ms(median(answers)), "ms")
	r.emit("startup", "idle_rss_mb", float64(median(rss))/(1<<20), "MiB")

	if r.set.storeMessages == 0 {
		return nil
	}
	dir, err := os.MkdirTemp(r.tmp, "startup-full-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	size, err := r.fillStore(ctx, dir, r.set.storeMessages)
	if err != nil {
		return fmt.Errorf("fill the store: %w", err)
	}
	r.progress("startup: store of %d messages (%.0f MB) filled in %s", r.set.storeMessages, float64(size)/1e6, time.Since(t0).Round(time.Millisecond))
	answers, rss = nil, nil
	for run := range r.set.runs {
		a, m, err := r.coldStart(ctx, bin, dir)
		if err != nil {
			return err
		}
		r.progress("startup: full store, run %d: first answer after %.1f ms, %.1f MiB resident", run+1, ms(a), float64(m)/(1<<20))
		answers, rss = append(answers, a), append(rss, m)
	}
	r.emit("startup", "first_answer_full_ms", ms(median(answers)), "ms")
	r.emit("startup", "idle_rss_full_mb", float64(median(rss))/(1<<20), "MiB")
	r.emit("startup", "full_store_messages", r.set.storeMessages, "")
	r.emit("startup", "full_store_mb", float64(size)/1e6, "MB")
	return nil
}

func median[T int64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// coldStart execs `relais serve` on dir, polls /healthz until it answers,
// lets the node settle and reads its resident memory, then stops it.
func (r *runner) coldStart(ctx context.Context, bin, dir string) (firstAnswer time.Duration, rss int64, err error) {
	port, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", "--tls", "off", "--listen", addr, "--data", dir, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	health := "http://" + addr + "/healthz"
	exited := make(chan error, 1)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	deadline := t0.Add(60 * time.Second)
	for {
		resp, err := hc.Get(health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				firstAnswer = time.Since(t0)
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return 0, 0, fmt.Errorf("relais serve exited (%v): %s", err, logs.Bytes())
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("relais serve did not answer within 60 s: %s", logs.Bytes())
		}
	}
	// Settled: the resident size has not moved by more than 1 % for half
	// a second (at most 5 s).
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	last, _ := procStatus(status, "VmRSS")
	stable := time.Now()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && time.Since(stable) < 500*time.Millisecond; {
		time.Sleep(50 * time.Millisecond)
		v, err := procStatus(status, "VmRSS")
		if err != nil {
			return 0, 0, err
		}
		if d := v - last; d > last/100 || -d > last/100 {
			last, stable = v, time.Now()
		}
	}
	return firstAnswer, last, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// fillStore writes a store of the given number of messages in dir, as
// setup, straight through package store in large transactions: 100
// users, rooms of five members with 1,000 messages each. It
// returns the store's size.
func (r *runner) fillStore(ctx context.Context, dir string, messages int) (int64, error) {
	path := filepath.Join(dir, "relais.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	users, err := provision(ctx, db, 100, 1)
	if err != nil {
		return 0, err
	}
	const perRoom, perTx = 1000, 20000
	nRooms := max(1, (messages+perRoom-1)/perRoom)
	rooms := make([]string, nRooms)
	now := time.Now()
	err = db.Update(ctx, func(tx *store.Tx) error {
		for k := range rooms {
			rooms[k] = id.NewRoom(db.Node())
			if err := tx.CreateRoom(store.Room{ID: rooms[k], Kind: store.Group, Name: fmt.Sprintf("Salle %d", k+1),
				Creator: users[k%len(users)].ID, Created: now}); err != nil {
				return err
			}
			for j := range 5 {
				role := store.Member
				if j == 0 {
					role = store.Owner
				}
				if err := tx.PutMember(rooms[k], users[(k+j)%len(users)].ID, store.Membership{Role: role, State: store.Joined, Since: now}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	ts0 := now.Add(-time.Duration(messages) * time.Second).UnixMilli()
	stop := r.every(time.Second, func() string { return fmt.Sprintf("startup: filling the store: %d MB", db.Size()/1e6) })
	defer stop()
	for done := 0; done < messages; {
		n := min(perTx, messages-done)
		first := done
		err := db.Update(ctx, func(tx *store.Tx) error {
			for i := first; i < first+n; i++ {
				k, seq := i/perRoom, uint64(i%perRoom+1)
				from := users[(k+i%5)%len(users)]
				ts := ts0 + int64(i)
				ev := proto.Event{T: proto.TEvent, Room: rooms[k], Seq: seq, TS: ts, From: from.ID, CID: "c" + strconv.Itoa(i),
					Type: proto.EvText, Body: body(r.set.size, time.UnixMilli(ts))}
				if _, err := tx.AppendEvent(rooms[k], store.Event{Seq: seq, Ord: seq, TS: ts, Flags: store.Countable, Frame: proto.Encode(ev)}); err != nil {
					return err
				}
			}
			return tx.MarkFeedPublished(tx.FeedHead(), n)
		})
		if err != nil {
			return 0, err
		}
		done += n
	}
	return db.Size(), nil
}
