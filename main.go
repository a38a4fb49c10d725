// Command relais is a sovereign, end-to-end encrypted instant messenger for
// public administrations, in one binary.
//
//	relais serve [flags]          run a node (relais serve --help lists every option)
//	relais admin [--data DIR] …   manage a running node: users, domains, invitations
//	relais federation [--data DIR] …  peer with other administrations
//	relais backup [--data DIR] FILE
//	relais restore [--data DIR] FILE
//	relais bench [flags] SCENARIO…  measure a node (relais bench --help)
//	relais version
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"relais/cluster"
	webembed "relais/embed"
	"relais/server/admin"
	"relais/server/bench"
	"relais/server/buildinfo"
	"relais/server/bus"
	"relais/server/config"
	"relais/server/node"
	"relais/server/store"
)

const usage = `relais — messagerie instantanée souveraine et chiffrée de bout en bout
relais — sovereign, end-to-end encrypted instant messenger

usage:
  relais serve [flags]                  run a node (relais serve --help)
  relais admin [--data DIR] COMMAND     manage a running node (relais admin --help)
  relais federation [--data DIR] …      peer with other administrations (relais federation --help)
  relais backup [--data DIR] FILE       snapshot a running node's store into FILE
  relais restore [--data DIR] FILE      put a snapshot back (node stopped)
  relais bench [flags] SCENARIO…        measure a node: startup idle dm fanout sync reconnect, or all
  relais version                        print the version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = serve(args)
	case "admin":
		err = adminCmd(args)
	case "federation":
		err = admin.FederationCommand(args, envOr("RELAIS_DATA", config.Defaults().Data), os.Stdout, os.Stderr)
	case "backup":
		err = backup(args)
	case "restore":
		err = restore(args)
	case "bench":
		err = bench.Main(args, startBenchNode)
	case "version", "--version", "-v":
		bi := buildinfo.Get()
		fmt.Printf("relais %s (commit %s, built %s, %s)\n", bi.Version, bi.Commit, bi.Date, bi.GoVersion)
	case "help", "--help", "-h":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "relais: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "relais:", err)
		os.Exit(1)
	}
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: expected text or json, got %q", format)
}

// startBus starts the embedded NATS server: the node's bus.
func startBus(nodeID string, log *slog.Logger) (bus.Bus, error) {
	return cluster.Start(cluster.Options{Name: nodeID, Logger: log})
}

// busFor is startBus with the links to peered administrations when cfg
// turns federation on.
func busFor(cfg config.Config) node.BusFunc {
	if !cfg.Federation && cfg.FederationListen == "" && cfg.FederationEndpoint == "" {
		return startBus
	}
	return cluster.FederatedBus(cfg.Data, cfg.FederationListen, cfg.FederationEndpoint)
}

// startBenchNode starts a node in process for `relais bench`, with the
// same bus as `relais serve`.
func startBenchNode(ctx context.Context, cfg config.Config, log *slog.Logger) (*node.Node, error) {
	return node.Start(ctx, cfg, busFor(cfg), node.Options{Logger: log})
}

func serve(args []string) error {
	cfg := config.Defaults()
	fs := cfg.Flags("relais serve")
	if err := config.Load(fs, args, os.Environ()); err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	n, err := node.Start(ctx, cfg, busFor(cfg), node.Options{Logger: log, Web: webembed.Web()})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	for {
		select {
		case <-hup:
			if err := n.TLS.Reload(); err != nil {
				log.Error("reload TLS certificate", "err", err)
			} else {
				log.Info("TLS certificate reloaded")
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	return n.Shutdown(sctx)
}

const adminUsage = `usage: relais admin [--data DIR] COMMAND

  users list                    ADDRESS says UNPROVEN for registrations nobody proved to read
  users approve EMAIL           activate a registration (no SMTP relay, or vouched for): check
                                with the person first, anyone can register any allowed address
  users deactivate EMAIL        sign out everywhere and block
  users reactivate EMAIL
  users reset-password EMAIL    sign out everywhere; prints a reset link
  users promote EMAIL           make an administrator
  domains list
  domains add DOMAIN…           a.gouv.fr, or *.gouv.fr for its sub-domains
  domains remove DOMAIN…
  invitations list              invitations of externals waiting (no SMTP relay)
  invitations approve EMAIL     prints the link to hand to the external
  setup-link                    prints a new one-time link to create the first administrator
  health                        the node's health details (version, TLS state, pins), as JSON
`

func adminCmd(args []string) error {
	fs := flag.NewFlagSet("relais admin", flag.ContinueOnError)
	data := fs.String("data", envOr("RELAIS_DATA", config.Defaults().Data), "data directory of the running node")
	fs.Usage = func() { fmt.Fprint(fs.Output(), adminUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	a := fs.Args()
	if len(a) == 0 {
		fs.Usage()
		return errors.New("missing command")
	}
	c := admin.Dial(*data)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	one := func() (string, error) {
		if len(a) != 3 {
			return "", fmt.Errorf("%s %s takes one e-mail address", a[0], a[1])
		}
		return a[2], nil
	}
	cmd := strings.Join(a[:min(2, len(a))], " ")
	switch cmd {
	case "users list":
		var users []admin.UserInfo
		if err := c.Do(ctx, "GET", "/users", nil, &users); err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "EMAIL\tADDRESS\tNAME\tSTATE\tKIND\tCREATED\tEXPIRES")
		for _, u := range users {
			kind := "agent"
			if u.External {
				kind = "external"
			}
			if u.Admin {
				kind += ",admin"
			}
			exp := ""
			if !u.Expires.IsZero() {
				exp = u.Expires.Format(time.DateOnly)
			}
			// Anyone may register any address of an allowed domain: the
			// operator must see which ones nobody proved to read.
			proof := "proven"
			if u.Unproven {
				proof = "UNPROVEN"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Email, proof, u.Name, u.State, kind, u.Created.Format(time.DateOnly), exp)
		}
		return w.Flush()
	case "users approve", "users deactivate", "users reactivate", "users promote":
		email, err := one()
		if err != nil {
			return err
		}
		if err := c.Do(ctx, "POST", "/users/"+a[1], map[string]string{"email": email}, nil); err != nil {
			return err
		}
		if a[1] == "approve" {
			fmt.Println("ok: the address was not proven by mail; you vouch that its owner made this registration")
			break
		}
		fmt.Println("ok")
	case "users reset-password", "invitations approve":
		email, err := one()
		if err != nil {
			return err
		}
		var out struct{ Link string }
		if err := c.Do(ctx, "POST", "/"+a[0]+"/"+map[string]string{"users": "reset-password", "invitations": "approve"}[a[0]], map[string]string{"email": email}, &out); err != nil {
			return err
		}
		fmt.Println(out.Link)
	case "domains list", "domains add", "domains remove":
		var out []string
		var err error
		if a[1] == "list" {
			err = c.Do(ctx, "GET", "/domains", nil, &out)
		} else {
			if len(a) < 3 {
				return fmt.Errorf("domains %s needs at least one domain", a[1])
			}
			err = c.Do(ctx, "POST", "/domains/"+a[1], map[string][]string{"domains": a[2:]}, &out)
		}
		if err != nil {
			return err
		}
		fmt.Println(strings.Join(out, "\n"))
	case "invitations list":
		var out []struct {
			Email, RoomID string
			Expires       time.Time
		}
		if err := c.Do(ctx, "GET", "/invitations", nil, &out); err != nil {
			return err
		}
		for _, i := range out {
			fmt.Printf("%s\troom %s\texpires %s\n", i.Email, i.RoomID, i.Expires.Format(time.DateOnly))
		}
	case "health":
		var out json.RawMessage
		if err := c.Do(ctx, "GET", "/health", nil, &out); err != nil {
			return err
		}
		var b bytes.Buffer
		json.Indent(&b, out, "", "  ")
		fmt.Println(b.String())
	case "setup-link":
		var out struct{ Link string }
		if err := c.Do(ctx, "POST", "/setup-link", nil, &out); err != nil {
			return err
		}
		fmt.Println(out.Link)
	default:
		fs.Usage()
		return fmt.Errorf("unknown admin command %q", cmd)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// backup snapshots a running node's store through its admin socket, then
// checks that the snapshot opens.
func backup(args []string) error {
	fs := flag.NewFlagSet("relais backup", flag.ContinueOnError)
	data := fs.String("data", envOr("RELAIS_DATA", config.Defaults().Data), "data directory of the running node")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: relais backup [--data DIR] FILE")
	}
	out := fs.Arg(0)
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	pw := &progress{w: f, label: "backup", start: time.Now()}
	n, err := admin.Dial(*data).Backup(context.Background(), pw)
	pw.done()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := store.Check(tmp); err != nil {
		return fmt.Errorf("the snapshot does not check out, not kept: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "backup: %d bytes written to %s and checked\n", n, out)
	return nil
}

// restore puts a snapshot in place of a stopped node's store, keeping the
// current one aside.
func restore(args []string) error {
	fs := flag.NewFlagSet("relais restore", flag.ContinueOnError)
	data := fs.String("data", envOr("RELAIS_DATA", config.Defaults().Data), "data directory of the stopped node")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: relais restore [--data DIR] FILE")
	}
	src := fs.Arg(0)
	if err := store.Check(src); err != nil {
		return fmt.Errorf("%s is not a usable snapshot: %w", src, err)
	}
	dst := filepath.Join(*data, "relais.db")
	if _, err := os.Stat(filepath.Join(*data, admin.SocketName)); err == nil {
		if err := admin.Dial(*data).Do(context.Background(), "GET", "/domains", nil, nil); err == nil {
			return errors.New("the node is running: stop it before restoring")
		}
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".restoring"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	pw := &progress{w: out, label: "restore", start: time.Now()}
	_, err = io.Copy(pw, in)
	pw.done()
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		aside := dst + ".before-restore-" + time.Now().Format("20060102-150405")
		if err := os.Rename(dst, aside); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "restore: the previous store is kept as %s\n", aside)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "restore: %s restored into %s; start the node\n", src, dst)
	return nil
}

// progress reports bytes copied on stderr, at most twice a second.
type progress struct {
	w     io.Writer
	label string
	n     int64
	start time.Time
	last  time.Time
}

func (p *progress) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if time.Since(p.last) > 500*time.Millisecond {
		p.last = time.Now()
		fmt.Fprintf(os.Stderr, "\r%s: %.1f MiB", p.label, float64(p.n)/(1<<20))
	}
	return n, err
}

func (p *progress) done() {
	fmt.Fprintf(os.Stderr, "\r%s: %.1f MiB in %s\n", p.label, float64(p.n)/(1<<20), time.Since(p.start).Round(time.Millisecond))
}
