package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// childCommand runs a node as a child process of the bench (`relais bench
// _node`), so that its memory is measured apart from the load generator's.
// It is the node `relais serve` runs (node.Start with the real bus), and it
// answers the parent's commands on stdin, one per line:
//
//	stats   print the node's memory and goroutines as one JSON line
//	gc      collect garbage and return free memory to the system, then stats
//	heap F  write a heap profile to file F, then stats
//	quit    shut down (as does the end of stdin)
const childCommand = "_node"

// childStats is what a child node reports of itself.
type childStats struct {
	RSS        int64 `json:"rss"`
	RSSAnon    int64 `json:"rss_anon"`
	HeapInuse  int64 `json:"heap_inuse"`
	HeapAlloc  int64 `json:"heap_alloc"`
	StackInuse int64 `json:"stack_inuse"`
	Sys        int64 `json:"sys"`
	Goroutines int64 `json:"goroutines"`
	Sessions   int64 `json:"sessions"`
}

func childMain(args []string, start StartFunc) error {
	fs := flag.NewFlagSet("relais bench "+childCommand, flag.ContinueOnError)
	data := fs.String("data", "", "data directory")
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	logLevel := fs.String("log-level", "error", "log level")
	withTLS := fs.Bool("tls", false, "serve HTTPS with the local CA")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	n, err := start(context.Background(), benchConfig(*data, *listen, *withTLS), log)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	}()
	fmt.Printf("ready %s\n", n.URL())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch cmd {
		case "heap":
			if err := writeHeapProfile(arg); err != nil {
				return err
			}
			fallthrough
		case "gc":
			runtime.GC()
			debug.FreeOSMemory()
			fallthrough
		case "stats":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			st := childStats{HeapInuse: int64(ms.HeapInuse), HeapAlloc: int64(ms.HeapAlloc), StackInuse: int64(ms.StackInuse), Sys: int64(ms.Sys),
				Goroutines: int64(runtime.NumGoroutine()), Sessions: int64(n.WS.Sessions())}
			st.RSS, _ = procStatus("/proc/self/status", "VmRSS")
			st.RSSAnon, _ = procStatus("/proc/self/status", "RssAnon")
			b, _ := json.Marshal(st)
			fmt.Printf("%s\n", b)
		case "quit":
			return nil
		}
	}
	return nil
}

func writeHeapProfile(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}

// child is a node running in a child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	url   string
}

// binary is the relais executable the bench runs as a child.
func (r *runner) binary() (string, error) {
	if r.set.binary != "" {
		return r.set.binary, nil
	}
	return os.Executable()
}

// spawnChild starts a node on dir in a child process.
func (r *runner) spawnChild(ctx context.Context, dir string) (*child, error) {
	bin, err := r.binary()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "bench", childCommand, "--data", dir, "--listen", "127.0.0.1:0", "--log-level", r.set.logLevel, fmt.Sprintf("--tls=%t", r.set.tls))
	cmd.Stderr = r.errw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{cmd: cmd, lines: make(chan string, 16)}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	line, err := c.line(ctx, 60*time.Second)
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("child node: %w", err)
	}
	url, ok := strings.CutPrefix(line, "ready ")
	if !ok {
		c.stop()
		return nil, fmt.Errorf("child node said %q", line)
	}
	c.url = url
	return c, nil
}

func (c *child) line(ctx context.Context, within time.Duration) (string, error) {
	select {
	case l, ok := <-c.lines:
		if !ok {
			return "", errors.New("child node exited")
		}
		return l, nil
	case <-time.After(within):
		return "", fmt.Errorf("no answer from the child node within %s", within)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// stats asks the child for its figures, after a collection with gc.
func (c *child) stats(ctx context.Context, gc bool) (childStats, error) {
	cmd := "stats\n"
	if gc {
		cmd = "gc\n"
	}
	return c.ask(ctx, cmd)
}

// heapProfile has the child write its heap profile to path.
func (c *child) heapProfile(ctx context.Context, path string) error {
	_, err := c.ask(ctx, "heap "+path+"\n")
	return err
}

func (c *child) ask(ctx context.Context, cmd string) (childStats, error) {
	var st childStats
	if _, err := io.WriteString(c.stdin, cmd); err != nil {
		return st, err
	}
	line, err := c.line(ctx, 60*time.Second)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(line), &st)
}

// stop shuts the child down, killing it if it takes too long.
func (c *child) stop() {
	io.WriteString(c.stdin, "quit\n")
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}
