package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"relais/cluster"
	"relais/server/bus"
	"relais/server/config"
	"relais/server/node"
)

// childEnv makes this test binary act as the relais binary for the child
// processes the bench starts (`relais serve` for startup, `relais bench
// _node` for idle).
const childEnv = "RELAIS_BENCH_TEST_AS_RELAIS"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" && len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "serve":
			err = serveForTest(os.Args[2:])
		case "bench":
			err = Main(os.Args[2:], startForTest)
		default:
			err = fmt.Errorf("unknown command %q", os.Args[1])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "relais (bench test):", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startBus(id string, log *slog.Logger) (bus.Bus, error) {
	return cluster.Start(cluster.Options{Name: id, Logger: log})
}

func startForTest(ctx context.Context, cfg config.Config, log *slog.Logger) (*node.Node, error) {
	busFor := startBus
	if cfg.Federation {
		// As main.go's busFor: the links to peered administrations.
		busFor = cluster.FederatedBus(cfg.Data, cfg.FederationListen, cfg.FederationEndpoint)
	}
	return node.Start(ctx, cfg, busFor, node.Options{Logger: log})
}

// serveForTest is `relais serve` as main.go runs it, without the web
// client.
func serveForTest(args []string) error {
	cfg := config.Defaults()
	if err := config.Load(cfg.Flags("relais serve"), args, nil); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	n, err := startForTest(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		return err
	}
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	return n.Shutdown(sctx)
}

// required are the figures each scenario must print, with a positive
// value: the command's interface.
var required = map[string][]string{
	"machine":   {"cores"},
	"startup":   {"first_answer_ms", "idle_rss_mb", "binary_mb", "first_answer_full_ms", "idle_rss_full_mb"},
	"idle":      {"conns", "rss_per_conn_kib", "heap_per_conn_kib", "goroutines_per_conn"},
	"dm":        {"acked_per_s", "ack_p50_ms", "ack_p99_ms", "e2e_p99_ms"},
	"fanout":    {"acked_per_s", "deliveries_per_s", "e2e_p50_ms", "e2e_p99_ms"},
	"sync":      {"sync_ms"},
	"reconnect": {"catchup_s"},
	"federation": {"acked_per_s", "same_node_e2e_p99_ms", "cross_admin_e2e_p50_ms", "cross_admin_e2e_p99_ms",
		"catch_up_events_per_s"},
}

// tinyArgs are the settings of the test runs: every scenario at a tiny
// scale.
var tinyArgs = []string{"--duration", "1s", "--warmup", "200ms", "--runs", "1", "--store-messages", "3000",
	"--scale", "300", "--hold", "300ms", "--pairs", "3", "--members", "6", "--senders", "2",
	"--rooms", "4", "--messages", "25", "--clients", "25"}

// TestEveryScenario runs every scenario at a tiny scale, so that the
// harness cannot rot, and checks that each prints its figures.
func TestEveryScenario(t *testing.T) {
	got := runTiny(t, "all")
	for scenario, figures := range required {
		checkFigures(t, got, scenario, figures)
	}
	for _, name := range []string{"go", "commit"} {
		if s, _ := got["machine/"+name].(string); s == "" {
			t.Errorf("machine: no %s", name)
		}
	}
	for _, s := range []string{"dm", "fanout"} {
		if got[s+"/encrypted"] != true {
			t.Errorf("%s: encrypted = %v, want true by default", s, got[s+"/encrypted"])
		}
	}
}

// TestFederationScenario runs the federation scenario alone (it is also
// part of all).
func TestFederationScenario(t *testing.T) {
	got := runTiny(t, "federation")
	checkFigures(t, got, "federation", required["federation"])
}

// TestPlaintext runs dm and fanout in rooms that are not encrypted.
func TestPlaintext(t *testing.T) {
	got := runTiny(t, "dm", "fanout", "--plaintext")
	for _, s := range []string{"dm", "fanout"} {
		checkFigures(t, got, s, required[s])
		if got[s+"/encrypted"] != false {
			t.Errorf("%s: encrypted = %v, want false", s, got[s+"/encrypted"])
		}
	}
}

// runTiny runs the bench with tinyArgs and returns its figures by
// "scenario/figure".
func runTiny(t *testing.T, args ...string) map[string]any {
	t.Helper()
	t.Setenv(childEnv, "1")
	var out, errw bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	err := run(ctx, append(args, tinyArgs...), startForTest, &out, &errw)
	t.Logf("ran in %s; progress:\n%s", time.Since(t0).Round(time.Millisecond), errw.String())
	if err != nil {
		t.Fatalf("bench: %v\noutput:\n%s", err, out.String())
	}
	got := map[string]any{}
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var f Figure
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("not a JSON figure: %q: %v", line, err)
		}
		if f.Scenario == "" || f.Figure == "" {
			t.Errorf("incomplete figure: %q", line)
		}
		got[f.Scenario+"/"+f.Figure] = f.Value
	}
	return got
}

// checkFigures checks that a scenario printed the figures, each a
// positive number.
func checkFigures(t *testing.T, got map[string]any, scenario string, figures []string) {
	t.Helper()
	for _, name := range figures {
		v, ok := got[scenario+"/"+name]
		if !ok {
			t.Errorf("%s: no %s", scenario, name)
			continue
		}
		if f, isNum := v.(float64); !isNum || f <= 0 {
			t.Errorf("%s: %s = %v, want a positive number", scenario, name, v)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, 1000 * time.Millisecond}} {
		got := h.quantile(c.q)
		if d := got - c.want; d > c.want/50 || -d > c.want/50 {
			t.Errorf("quantile %.2f = %v, want %v ± 2 %%", c.q, got, c.want)
		}
	}
	if h.count() != 1000 {
		t.Errorf("count = %d", h.count())
	}
}

func TestArgs(t *testing.T) {
	set, names, err := parseArgs([]string{"dm", "--duration", "3s", "fanout", "--members", "1000"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "dm,fanout" || set.duration != 3*time.Second || set.members != 1000 {
		t.Errorf("got %v %v %d", names, set.duration, set.members)
	}
	for _, bad := range [][]string{{}, {"nosuch"}, {"dm", "--duration", "0s"}, {"fanout", "--senders", "20", "--members", "10"}} {
		if _, _, err := parseArgs(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// TestRemoteStatsReadsNodeMetrics: idle against a running node reads its
// memory, goroutines and sessions from the node's metrics listener.
func TestRemoteStatsReadsNodeMetrics(t *testing.T) {
	cfg := config.Defaults()
	cfg.Data, cfg.Listen, cfg.TLS, cfg.MetricsListen = t.TempDir(), "127.0.0.1:0", "off", "127.0.0.1:0"
	n, err := startForTest(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	st, err := remoteStats(context.Background(), "http://"+n.MetricsAddr()+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if st.RSS <= 0 || st.HeapInuse <= 0 || st.StackInuse <= 0 || st.Goroutines <= 0 || st.Sessions != 0 {
		t.Fatalf("read from the node's metrics: %+v", st)
	}
}
