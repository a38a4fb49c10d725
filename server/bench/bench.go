// Package bench is `relais bench`: it drives a node — one it starts in
// process (the real store with fsync, the real embedded bus), or a running
// one at a URL — through named scenarios with the reference Go client, and
// prints one JSON line per figure on stdout and progress on stderr.
//
// Every loop is bounded in time and in count. Provisioning (accounts,
// rooms, a pre-filled store) is setup and is never part of a figure.
package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"relais/server/cli"
	"relais/server/config"
	"relais/server/node"
)

// StartFunc starts a node in process with the real bus; main.go provides
// it, since only main wires the cluster package in.
type StartFunc func(ctx context.Context, cfg config.Config, log *slog.Logger) (*node.Node, error)

// Scenarios, in the order `all` runs them. Their names and the names of
// their figures are part of the command's interface.
var scenarioNames = []string{"startup", "idle", "dm", "fanout", "sync", "reconnect", "federation"}

const usage = `usage: relais bench [flags] SCENARIO… (or all)

Scenarios:
  startup    binary size, time from exec to a successful /healthz, idle RSS;
             the same with a store of --store-messages messages
  idle       --scale clients connected and synced: node memory and goroutines per connection
  dm         --pairs senders in as many direct rooms, each waiting for its ack
  fanout     one room of --members members, --senders sending as fast as acks allow
             (dm and fanout rooms are end-to-end encrypted unless --plaintext)
  sync       a fresh connection of a user in --rooms rooms of --messages messages
  reconnect  --clients clients drop at once and reconnect, each missing 20 messages
  federation two peered administrations in process: a group homed on A, --senders on A;
             delivery to a member on A and to one on B side by side, then B's catch-up
             of --messages messages after an outage (plain text rooms)

Figures are printed on stdout, one JSON object per line:
  {"scenario":"dm","figure":"acked_per_s","value":5123.4,"unit":"1/s"}
Progress goes to stderr.

By default each scenario starts its own node in process (plain HTTP on
127.0.0.1, data in a temporary directory, fsync on, rate limits off);
idle and startup run the node as a child process to measure its memory
alone. With --url, scenarios drive that node instead (see BENCHMARKS.md for
what it must allow).

Flags:
`

// settings are the command's flags.
type settings struct {
	url          string
	metricsURL   string
	accountsFile string
	data         string

	duration time.Duration
	warmup   time.Duration
	scale    int
	clients  int
	members  int
	senders  int
	pairs    int
	rooms    int
	messages int
	size     int
	rate     float64
	runs     int
	hold     time.Duration

	storeMessages int
	binary        string

	fullClient bool
	tls        bool
	plaintext  bool
	jsonOnly   bool
	cpuprofile string
	memprofile string
	logLevel   string
}

func (s *settings) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.url, "url", "", "drive the running node at this URL instead of starting one")
	fs.StringVar(&s.metricsURL, "metrics-url", "", "with --url, idle: the node's metrics endpoint (its --metrics-listen), e.g. http://127.0.0.1:9090/metrics")
	fs.StringVar(&s.accountsFile, "accounts-file", "", "with --url: file of active accounts, one per line: the address, a space, the password")
	fs.StringVar(&s.data, "data", "", "with --url: the node's data directory on this machine; missing accounts are registered and approved through its admin socket")
	fs.DurationVar(&s.duration, "duration", 30*time.Second, "measured time of dm and fanout")
	fs.DurationVar(&s.warmup, "warmup", time.Second, "unmeasured time before dm and fanout measure")
	fs.IntVar(&s.scale, "scale", 10000, "idle: connections to hold (up to 100000 and more)")
	fs.IntVar(&s.clients, "clients", 1000, "reconnect: clients that drop and reconnect")
	fs.IntVar(&s.members, "members", 100, "fanout: members of the room, all connected")
	fs.IntVar(&s.senders, "senders", 10, "fanout: members sending")
	fs.IntVar(&s.pairs, "pairs", 50, "dm: sender/receiver pairs, one direct room each")
	fs.IntVar(&s.rooms, "rooms", 50, "sync: rooms of the user")
	fs.IntVar(&s.messages, "messages", 100, "sync: messages in each room")
	fs.IntVar(&s.size, "size", 160, "bytes of each message's text")
	fs.Float64Var(&s.rate, "rate", 0, "dm, fanout: total sends per second (0: as fast as acks allow)")
	fs.IntVar(&s.runs, "runs", 3, "startup: runs of each measure (the median is reported); sync uses 5")
	fs.DurationVar(&s.hold, "hold", 5*time.Second, "idle: how long the connections are held before measuring")
	fs.IntVar(&s.storeMessages, "store-messages", 1_000_000, "startup: messages in the pre-filled store")
	fs.StringVar(&s.binary, "binary", "", "startup, idle: the relais binary to run (default: this executable)")
	fs.BoolVar(&s.tls, "tls", false, "the nodes the bench starts serve HTTPS with their local CA, as a town hall runs them (default: plain HTTP, as behind a reverse proxy)")
	fs.BoolVar(&s.fullClient, "full-client", false, "dm, fanout: send and receive through the reference client's connection, which decodes every frame, instead of the bench's lean one")
	fs.BoolVar(&s.plaintext, "plaintext", false, "dm, fanout: text messages in rooms that are not end-to-end encrypted, instead of MLS application messages in encrypted rooms (the default, as for direct rooms and private groups)")
	fs.BoolVar(&s.jsonOnly, "json-only", false, "print nothing but the JSON lines (no progress on stderr)")
	fs.StringVar(&s.cpuprofile, "cpuprofile", "", "write a CPU profile of this process (in-process node and load) to this file")
	fs.StringVar(&s.memprofile, "memprofile", "", "write a heap profile of this process at the end to this file")
	fs.StringVar(&s.logLevel, "log-level", "error", "log level of the nodes the bench starts")
}

// roomKind names the rooms of dm and fanout in progress lines.
func (s *settings) roomKind() string {
	if s.plaintext {
		return "plaintext"
	}
	return "encrypted"
}

// Main runs `relais bench` with the command-line arguments after "bench".
func Main(args []string, start StartFunc) error {
	if len(args) > 0 && args[0] == childCommand {
		return childMain(args[1:], start)
	}
	return run(context.Background(), args, start, os.Stdout, os.Stderr)
}

// parseArgs accepts flags before, between and after the scenario names.
func parseArgs(args []string, errw io.Writer) (settings, []string, error) {
	var s settings
	fs := flag.NewFlagSet("relais bench", flag.ContinueOnError)
	fs.SetOutput(errw)
	s.flags(fs)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	var names []string
	for {
		if err := cli.Parse(fs, args); err != nil {
			return s, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(names) == 0 {
		return s, nil, cli.Usagef(fs, "name at least one scenario, or all")
	}
	var out []string
	for _, n := range names {
		switch {
		case n == "all":
			out = append(out, scenarioNames...)
		case slices.Contains(scenarioNames, n):
			out = append(out, n)
		default:
			return s, nil, cli.Usagef(fs, "unknown scenario %q (known: %s, all)", n, strings.Join(scenarioNames, ", "))
		}
	}
	if s.duration <= 0 || s.duration > 24*time.Hour || s.scale < 1 || s.clients < 1 || s.members < 2 ||
		s.senders < 1 || s.senders > s.members || s.pairs < 1 || s.rooms < 1 || s.messages < 1 || s.runs < 1 ||
		s.size < 16 || s.size > 256<<10 || s.storeMessages < 0 || s.rate < 0 {
		return s, nil, cli.Usagef(fs, "a count or duration is out of range")
	}
	return s, out, nil
}

func run(ctx context.Context, args []string, start StartFunc, out, errw io.Writer) error {
	set, names, err := parseArgs(args, errw)
	if err != nil {
		return err
	}
	r, err := newRunner(set, start, out, errw)
	if err != nil {
		return err
	}
	defer r.close()
	if set.cpuprofile != "" {
		f, err := os.Create(set.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r.machine()
	var failed []string
	for _, name := range names {
		r.progress("%s: starting", name)
		t0 := time.Now()
		err := r.scenario(ctx, name)
		if err != nil {
			failed = append(failed, name)
			r.progress("%s: FAILED after %s: %v", name, time.Since(t0).Round(time.Millisecond), err)
			r.emit(name, "error", err.Error(), "")
			continue
		}
		r.progress("%s: done in %s", name, time.Since(t0).Round(time.Millisecond))
	}
	if set.memprofile != "" {
		runtime.GC()
		f, err := os.Create(set.memprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("bench: %s failed", strings.Join(failed, ", "))
	}
	return nil
}

func (r *runner) scenario(ctx context.Context, name string) error {
	switch name {
	case "startup":
		return r.startup(ctx)
	case "idle":
		return r.idle(ctx)
	case "dm":
		return r.dm(ctx)
	case "fanout":
		return r.fanout(ctx)
	case "sync":
		return r.sync(ctx)
	case "reconnect":
		return r.reconnect(ctx)
	case "federation":
		return r.federation(ctx)
	}
	return fmt.Errorf("unknown scenario %q", name)
}
