package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"relais/server/buildinfo"
)

// runner runs scenarios and reports their figures.
type runner struct {
	set   settings
	start StartFunc
	log   *slog.Logger
	tmp   string // removed by close

	mu   sync.Mutex
	out  io.Writer
	errw io.Writer
}

func newRunner(set settings, start StartFunc, out, errw io.Writer) (*runner, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(set.logLevel)); err != nil {
		return nil, fmt.Errorf("bench: --log-level: %w", err)
	}
	tmp, err := os.MkdirTemp("", "relais-bench-")
	if err != nil {
		return nil, err
	}
	return &runner{
		set: set, start: start, tmp: tmp, out: out, errw: errw,
		log: slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: level})),
	}, nil
}

func (r *runner) close() { os.RemoveAll(r.tmp) }

// Figure is one line of the output.
type Figure struct {
	Scenario string `json:"scenario"`
	Figure   string `json:"figure"`
	Value    any    `json:"value"`
	Unit     string `json:"unit"`
}

// emit prints one figure as a JSON line. Numbers keep three significant
// decimals at most.
func (r *runner) emit(scenario, figure string, value any, unit string) {
	if f, ok := value.(float64); ok {
		value = round(f)
	}
	b, _ := json.Marshal(Figure{Scenario: scenario, Figure: figure, Value: value, Unit: unit})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out.Write(append(b, '\n'))
}

func round(f float64) float64 {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0
	case math.Abs(f) >= 100:
		return math.Round(f*10) / 10
	case math.Abs(f) >= 1:
		return math.Round(f*100) / 100
	}
	return math.Round(f*1000) / 1000
}

// progress prints a line on stderr, unless --json-only.
func (r *runner) progress(format string, args ...any) {
	if r.set.jsonOnly {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.errw, "bench: "+format+"\n", args...)
}

// every prints line() as progress every interval until the returned
// function is called.
func (r *runner) every(interval time.Duration, line func() string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.progress("%s", line())
			}
		}
	}()
	return func() { cancel(); <-done }
}

// machine reports what the figures were measured on.
func (r *runner) machine() {
	r.emit("machine", "cores", runtime.NumCPU(), "cores")
	r.emit("machine", "gomaxprocs", runtime.GOMAXPROCS(0), "")
	r.emit("machine", "go", runtime.Version(), "")
	r.emit("machine", "os", runtime.GOOS+"/"+runtime.GOARCH, "")
	if m := cpuModel(); m != "" {
		r.emit("machine", "cpu", m, "")
	}
	if mem := memTotal(); mem > 0 {
		r.emit("machine", "memory_mib", mem>>20, "MiB")
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		// Other tenants of the machine show here (and in the figures).
		var load float64
		if _, err := fmt.Sscan(string(b), &load); err == nil {
			r.emit("machine", "loadavg_1m", load, "")
		}
	}
	r.emit("machine", "commit", commit(), "")
	r.emit("machine", "date", time.Now().UTC().Format(time.RFC3339), "")
}

// commit is the node's commit: the build's, or the working tree's when
// the build does not carry it (-buildvcs=false).
func commit() string {
	c := buildinfo.Get().Commit
	if c != "" && c != "unknown" {
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c = strings.TrimSpace(string(out))
	if err := exec.CommandContext(ctx, "git", "diff", "--quiet", "HEAD").Run(); err != nil {
		c += "-dirty"
	}
	return c
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func memTotal() int64 {
	v, _ := procStatus("/proc/meminfo", "MemTotal")
	return v
}

// procStatus reads a "Key: N kB" line of a /proc file, in bytes.
func procStatus(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		var n int64
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &n); err != nil {
			return 0, fmt.Errorf("%s: %s: %w", path, key, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}
