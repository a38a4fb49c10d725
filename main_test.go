package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/media/mediatest"
	"relais/server/proto"
	"relais/server/store"
)

// binary builds relais once for the tests of this file.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "relais-bin")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "relais")
	out, err := exec.Command("go", "build", "-o", path, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return path, nil
})

// proc is a relais serve process.
type proc struct {
	cmd  *exec.Cmd
	url  string
	data string
	logs *nodetest.Logs
}

// startedURL finds the address a node reports once it listens.
var startedURL = regexp.MustCompile(`msg="node started" url=(\S+)`)

func startNode(t *testing.T, data string, args ...string) *proc {
	t.Helper()
	return startProc(t, data, append([]string{"--allowed-domains", "agents.gouv.fr"}, args...)...)
}

// startProc starts relais serve on data with args and no domain allowed
// by default.
func startProc(t *testing.T, data string, args ...string) *proc {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{data: data, logs: &nodetest.Logs{}}
	// The node picks its port and says which: no port is chosen here and
	// then raced for.
	p.cmd = exec.Command(bin, append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--tls", "off", "--turn-listen", "127.0.0.1:0"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("node logs:\n%s", p.logs)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := startedURL.FindStringSubmatch(p.logs.String()); m != nil {
			p.url = m[1]
			resp, err := http.Get(p.url + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node did not start and answer /healthz:\n%s", p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	bin, _ := binary()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("relais %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestKill9KeepsAnsweredRegistrations: registrations answered with success
// survive a kill -9 of the node.
func TestKill9KeepsAnsweredRegistrations(t *testing.T) {
	data := t.TempDir()
	p := startNode(t, data, "--rate-limits", "off")
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var answered []string
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(p.url)
			for i := 0; ctx.Err() == nil; i++ {
				email := fmt.Sprintf("agent.%d.%d@agents.gouv.fr", w, i)
				if _, err := c.Register(ctx, email, "Velours-Cuivre-42", ""); err == nil {
					mu.Lock()
					answered = append(answered, email)
					mu.Unlock()
				}
			}
		}()
	}
	// Let registrations flow, then pull the plug in the middle of them.
	for {
		mu.Lock()
		n := len(answered)
		mu.Unlock()
		if n >= 20 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	cancel()
	wg.Wait()

	db, err := store.Open(filepath.Join(data, "relais.db"), store.Options{})
	if err != nil {
		t.Fatalf("store does not open after kill -9: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *store.Tx) error {
		for _, email := range answered {
			if _, err := tx.UserByEmail(email); err != nil {
				t.Errorf("registration of %s was answered but is lost: %v", email, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d answered registrations all present after kill -9", len(answered))
}

// TestOperatorFlow follows the README: register, approve with relais
// admin, sign in, list devices; back up, restore into a new directory and
// find the account there.
func TestOperatorFlow(t *testing.T) {
	data := t.TempDir()
	p := startNode(t, data)
	ctx := context.Background()
	if !strings.Contains(p.logs.String(), "/setup?token=") {
		t.Fatalf("no setup link in the first start's logs:\n%s", p.logs)
	}
	c := client.New(p.url)
	if status, err := c.Register(ctx, "jean.dupont@agents.gouv.fr", "Velours-Cuivre-42", ""); err != nil || status != "pending_approval" {
		t.Fatalf("register: %s %v", status, err)
	}
	out := run(t, "admin", "--data", data, "users", "list")
	// Nothing proved that the registrant reads this address: the list
	// says so plainly, and so does the approval.
	if !strings.Contains(out, "jean.dupont@agents.gouv.fr") || !strings.Contains(out, "pending") || !strings.Contains(out, "UNPROVEN") {
		t.Fatalf("users list:\n%s", out)
	}
	if out := run(t, "admin", "--data", data, "users", "approve", "jean.dupont@agents.gouv.fr"); !strings.Contains(out, "not proven") {
		t.Fatalf("approval of an unproven address without a warning:\n%s", out)
	}
	if err := c.Login(ctx, "jean.dupont@agents.gouv.fr", "Velours-Cuivre-42"); err != nil {
		t.Fatal(err)
	}
	var devs struct{ Devices []json.RawMessage }
	if err := c.Do(ctx, "GET", "/api/v1/devices", nil, &devs); err != nil || len(devs.Devices) != 1 {
		t.Fatalf("devices: %v %v", devs, err)
	}
	run(t, "admin", "--data", data, "domains", "add", "*.interieur.gouv.fr")
	if out := run(t, "admin", "--data", data, "domains", "list"); !strings.Contains(out, "*.interieur.gouv.fr") {
		t.Fatalf("domains list:\n%s", out)
	}
	// Both actions are in the audit log, as the command line's.
	if out := run(t, "admin", "--data", data, "audit"); !strings.Contains(out, "user.approve") || !strings.Contains(out, "jean.dupont@agents.gouv.fr") ||
		!strings.Contains(out, "domains.add") || !strings.Contains(out, "admin.sock") {
		t.Fatalf("audit:\n%s", out)
	}
	if out := run(t, "admin", "--data", data, "audit", "--action", "domains.add", "--csv"); !strings.HasPrefix(out, "time,actor,") || strings.Count(out, "\n") != 2 || !strings.Contains(out, ",cli,") {
		t.Fatalf("audit --csv of domains.add:\n%s", out)
	}

	backup := filepath.Join(t.TempDir(), "relais.backup")
	run(t, "backup", "--data", data, backup)
	other := t.TempDir()
	run(t, "restore", "--data", other, backup)
	q := startNode(t, other)
	c2 := client.New(q.url)
	if err := c2.Login(ctx, "jean.dupont@agents.gouv.fr", "Velours-Cuivre-42"); err != nil {
		t.Fatalf("login on the restored node: %v", err)
	}
	if out := run(t, "admin", "--data", other, "audit", "--action", "user.approve"); !strings.Contains(out, "jean.dupont@agents.gouv.fr") {
		t.Fatalf("audit log of the restored node:\n%s", out)
	}
	// Restoring over a running node is refused.
	bin, _ := binary()
	if out, err := exec.Command(bin, "restore", "--data", other, backup).CombinedOutput(); err == nil {
		t.Fatalf("restore over a running node succeeded:\n%s", out)
	}
}

func TestVersionAndHelp(t *testing.T) {
	if out := run(t, "version"); !strings.HasPrefix(out, "relais ") {
		t.Fatalf("version: %q", out)
	}
	out := run(t, "serve", "--help")
	for _, flag := range []string{"-data", "-listen", "-tls", "-allowed-domains", "-domain", "-smtp-host", "-account-validity", "-rate-limits", "-clamd"} {
		if !strings.Contains(out, flag) {
			t.Errorf("serve --help does not document %s", flag)
		}
	}
}

// TestDoctorExitStatus: the relais binary's doctor exits 0 when it finds
// nothing, 1 with a problem (here a clamd that is not there), 2 on a
// usage error.
func TestDoctorExitStatus(t *testing.T) {
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	base := []string{"doctor", "--data", data, "--listen", "127.0.0.1:0", "--tls", "off"}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"healthy", nil, 0, "no problem found"},
		{"clamd missing", []string{"--clamd", "unix://" + filepath.Join(t.TempDir(), "clamd.sock")}, 1, "PROBLEM clamd"},
		{"unknown flag", []string{"--no-such-flag"}, 2, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bin, append(base, tc.args...)...).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Errorf("exit status %d, want %d, output lacks %q?\n%s", code, tc.code, tc.want, out)
			}
		})
	}
}

// TestBackupUnderSendLoad: `relais backup` taken while agents send
// continuously over the websocket and upload files restores into a node
// that has every message and file acknowledged before the backup started,
// and whose store passes the consistency check.
func TestBackupUnderSendLoad(t *testing.T) {
	data := t.TempDir()
	p := startNode(t, data, "--rate-limits", "off")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	type acked struct {
		room, body string
		seq        uint64
		at         time.Time
	}
	type uploaded struct {
		id   string
		body []byte
		at   time.Time
	}
	var mu sync.Mutex
	var msgs []acked
	var files []uploaded
	var users, rooms []string
	var wg sync.WaitGroup
	const senders = 4
	for w := range senders {
		email := fmt.Sprintf("agent.%d@agents.gouv.fr", w)
		c := client.New(p.url)
		if _, err := c.Register(ctx, email, nodetest.Password, fmt.Sprintf("Agent %d", w)); err != nil {
			t.Fatal(err)
		}
		run(t, "admin", "--data", data, "users", "approve", email)
		if err := c.Login(ctx, email, nodetest.Password); err != nil {
			t.Fatal(err)
		}
		users = append(users, email)
		conn := nodetest.Synced(t, ctx, c)
		go func() {
			for range conn.Frames() {
			}
		}()
		room := nodetest.Forum(t, ctx, conn, fmt.Sprintf("Service %d", w))
		rooms = append(rooms, room)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf("message %d of agent %d", i, w)
				ack, err := conn.Send(ctx, conn.NextID(), room, body)
				if err != nil {
					continue
				}
				mu.Lock()
				msgs = append(msgs, acked{room, body, ack.Seq, time.Now()})
				mu.Unlock()
			}
		}()
		if w > 0 {
			continue
		}
		// One agent also uploads files all along.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := mediatest.PDF(fmt.Sprintf("Note %d", i), 20<<10+i)
				f, err := c.UploadFile(ctx, proto.UploadRequest{Room: room, Name: fmt.Sprintf("note-%d.pdf", i), Type: "application/pdf"}, body, 0)
				if err != nil {
					continue
				}
				mu.Lock()
				files = append(files, uploaded{f.ID, body, time.Now()})
				mu.Unlock()
			}
		}()
	}
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(msgs), len(files)
	}
	nodetest.CheckFor(t, 60*time.Second, func() error {
		if m, f := count(); m < 300 || f < 5 {
			return fmt.Errorf("%d messages and %d files acked so far", m, f)
		}
		return nil
	})

	pass := filepath.Join(t.TempDir(), "passphrase")
	os.WriteFile(pass, []byte("Bureau-du-maire-2026\n"), 0o600)
	archive := filepath.Join(t.TempDir(), "relais.backup")
	began := time.Now()
	out := run(t, "backup", "--data", data, "--passphrase-file", pass, "--work-factor", "10", archive)
	ended := time.Now()
	if !strings.Contains(out, "written and checked") || !strings.Contains(out, "encrypted") {
		t.Fatalf("backup said:\n%s", out)
	}
	// The load goes on after the backup, then stops.
	m0, _ := count()
	nodetest.CheckFor(t, 30*time.Second, func() error {
		if m, _ := count(); m < m0+50 {
			return fmt.Errorf("%d messages acked after the backup, expected 50", m-m0)
		}
		return nil
	})
	cancel()
	wg.Wait()
	var before []acked
	for _, m := range msgs {
		if m.at.Before(began) {
			before = append(before, m)
		}
	}
	during := 0
	for _, m := range msgs {
		if !m.at.Before(began) && m.at.Before(ended) {
			during++
		}
	}
	if during == 0 {
		t.Fatal("no message was acked while the backup ran: the load did not overlap it")
	}
	var filesBefore []uploaded
	for _, f := range files {
		if f.at.Before(began) {
			filesBefore = append(filesBefore, f)
		}
	}
	t.Logf("backup took %s; %d messages and %d files acked before it began, %d messages while it ran, %d and %d in all",
		ended.Sub(began).Round(time.Millisecond), len(before), len(filesBefore), during, len(msgs), len(files))

	restored := filepath.Join(t.TempDir(), "data")
	out = run(t, "restore", "--data", restored, "--passphrase-file", pass, archive)
	if !strings.Contains(out, "checked and restored") {
		t.Fatalf("restore said:\n%s", out)
	}
	q := startNode(t, restored, "--rate-limits", "off")
	bctx := context.Background()

	// Every message acked before the backup began is on the restored
	// node, read through its websocket.
	got := map[string]string{} // room \x00 seq → body
	for i, email := range users {
		c := client.New(q.url)
		if err := c.Login(bctx, email, nodetest.Password); err != nil {
			t.Fatalf("login of %s on the restored node: %v", email, err)
		}
		conn := nodetest.Synced(t, bctx, c)
		go func() {
			for range conn.Frames() {
			}
		}()
		for _, room := range rooms[i : i+1] {
			for after := uint64(0); ; {
				var page struct {
					More   bool `json:"more"`
					Events []struct {
						Seq  uint64 `json:"seq"`
						Body string `json:"body"`
					} `json:"events"`
				}
				if err := conn.Call(bctx, "history", map[string]any{"room": room, "after": after, "limit": 100}, &page); err != nil {
					t.Fatal(err)
				}
				for _, e := range page.Events {
					got[fmt.Sprintf("%s\x00%d", room, e.Seq)] = e.Body
					after = e.Seq
				}
				if !page.More || len(page.Events) == 0 {
					break
				}
			}
		}
		if email != users[0] {
			continue
		}
		for _, f := range filesBefore {
			resp, err := c.Download(bctx, f.id, false, nil)
			if err != nil {
				t.Errorf("file %s acked before the backup: %v", f.id, err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(b, f.body) {
				t.Errorf("file %s: %d bytes restored, not the %d uploaded", f.id, len(b), len(f.body))
			}
		}
	}
	for _, m := range before {
		if body, ok := got[fmt.Sprintf("%s\x00%d", m.room, m.seq)]; !ok || body != m.body {
			t.Errorf("message acked before the backup is missing or changed: %s seq %d %q (found %q)", m.room, m.seq, m.body, body)
		}
	}

	// The restored store passes the consistency check, media files
	// included.
	q.cmd.Process.Signal(syscall.SIGTERM)
	q.cmd.Wait()
	db, err := store.Open(filepath.Join(restored, "relais.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CheckConsistency(func(hash string, size int64) error {
		fi, err := os.Stat(filepath.Join(restored, "media", "blobs", hash[:2], hash))
		if err != nil {
			return err
		}
		if size > 0 && fi.Size() != size {
			return fmt.Errorf("%d bytes, the record says %d", fi.Size(), size)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestBackupAndRestoreCommands: the commands as an operator types them:
// the passphrase from the environment, a wrong one refused, a non-empty
// directory refused without --force and kept aside with it.
func TestBackupAndRestoreCommands(t *testing.T) {
	data := t.TempDir()
	startNode(t, data)
	bin, _ := binary()
	cmd := func(env string, args ...string) (string, error) {
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), env)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	if out, err := cmd("", "backup", "--help"); err != nil || !strings.Contains(out, "-passphrase-file") || !strings.Contains(out, "-encrypt") {
		t.Fatalf("backup --help: %v\n%s", err, out)
	}
	archive := filepath.Join(t.TempDir(), "relais.backup")
	if out, err := cmd("RELAIS_BACKUP_PASSPHRASE=Bureau-du-maire-2026", "backup", "--data", data, "--work-factor", "10", archive); err != nil || !strings.Contains(out, ", encrypted") {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if out, err := cmd("RELAIS_BACKUP_PASSPHRASE=Bureau-du-maire-2026", "restore", "--check", archive); err != nil || !strings.Contains(out, "checks out") {
		t.Fatalf("restore --check: %v\n%s", err, out)
	}
	target := filepath.Join(t.TempDir(), "data")
	if out, err := cmd("RELAIS_BACKUP_PASSPHRASE=Bureau-du-maire-2025", "restore", "--data", target, archive); err == nil || !strings.Contains(out, "wrong passphrase") {
		t.Fatalf("restore with a wrong passphrase: %v\n%s", err, out)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("a refused restore created the directory: %v", err)
	}
	os.MkdirAll(target, 0o700)
	os.WriteFile(filepath.Join(target, "keep-me"), []byte("old"), 0o600)
	if out, err := cmd("RELAIS_BACKUP_PASSPHRASE=Bureau-du-maire-2026", "restore", "--data", target, archive); err == nil || !strings.Contains(out, "not empty: add --force") {
		t.Fatalf("restore into a non-empty directory: %v\n%s", err, out)
	}
	out, err := cmd("RELAIS_BACKUP_PASSPHRASE=Bureau-du-maire-2026", "restore", "--data", target, "--force", archive)
	m := regexp.MustCompile(`kept as (\S+)`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("restore --force: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(m[1], "keep-me")); err != nil || string(b) != "old" {
		t.Fatalf("the directory kept aside: %q %v", b, err)
	}
	if err := store.Check(filepath.Join(target, "relais.db")); err != nil {
		t.Fatal(err)
	}
}
