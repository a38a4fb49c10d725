package main

import (
	"context"
	"encoding/json"
	"fmt"
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
	p.cmd = exec.Command(bin, append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--tls", "off"}, args...)...)
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

	backup := filepath.Join(t.TempDir(), "relais.backup")
	run(t, "backup", "--data", data, backup)
	other := t.TempDir()
	run(t, "restore", "--data", other, backup)
	q := startNode(t, other)
	c2 := client.New(q.url)
	if err := c2.Login(ctx, "jean.dupont@agents.gouv.fr", "Velours-Cuivre-42"); err != nil {
		t.Fatalf("login on the restored node: %v", err)
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
