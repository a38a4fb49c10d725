// Command relais is a sovereign, end-to-end encrypted instant messenger for
// public administrations, in one binary.
//
//	relais serve [flags]          run a node (relais serve --help lists every option)
//	relais admin [--data DIR] …   manage a running node: users, domains, invitations
//	relais federation [--data DIR] …  peer with other administrations
//	relais backup [--data DIR] [--encrypt] FILE
//	relais restore [--data DIR] [--force] FILE
//	relais bench [flags] SCENARIO…  measure a node (relais bench --help)
//	relais doctor [flags]         check the configuration of serve and the machine
//	relais version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"relais/cluster"
	webembed "relais/embed"
	"relais/server/admin"
	"relais/server/backup"
	"relais/server/bench"
	"relais/server/buildinfo"
	"relais/server/bus"
	"relais/server/cli"
	"relais/server/config"
	"relais/server/doctor"
	"relais/server/node"
	"relais/server/sdnotify"
)

const usage = `relais — messagerie instantanée souveraine et chiffrée de bout en bout
relais — sovereign, end-to-end encrypted instant messenger

usage:
  relais serve [flags]                  run a node (relais serve --help)
  relais admin [--data DIR] COMMAND     manage a running node (relais admin --help)
  relais federation [--data DIR] …      peer with other administrations (relais federation --help)
  relais backup [--data DIR] FILE       archive a running node (store, media, TLS) into FILE (relais backup --help)
  relais restore [--data DIR] FILE      check an archive and put it in place (node stopped; relais restore --help)
  relais bench [flags] SCENARIO…        measure a node: startup idle dm fanout sync reconnect, or all
  relais doctor [flags]                 check the settings of serve (same flags) and the machine: ports, DNS, certificates, SMTP, clamd, disk, clock, permissions
  relais version                        print the version
`

func main() {
	if len(os.Args) < 2 {
		cli.Exit("relais", &cli.UsageError{Cmd: "relais", Err: errors.New("missing command")})
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = serve(args)
	case "admin":
		err = admin.Command(args, envOr("RELAIS_DATA", config.Defaults().Data), os.Stdout)
	case "federation":
		err = admin.FederationCommand(args, envOr("RELAIS_DATA", config.Defaults().Data), os.Stdout, os.Stderr)
	case "backup":
		err = backupCmd(args)
	case "restore":
		err = restoreCmd(args)
	case "bench":
		err = bench.Main(args, startBenchNode)
	case "doctor":
		os.Exit(doctor.Main(context.Background(), args, os.Environ(), os.Stdout, os.Stderr, doctor.Options{}))
	case "version", "--version", "-v":
		err = version(args)
	case "help", "--help", "-h":
		fmt.Print(usage)
	default:
		err = &cli.UsageError{Cmd: "relais", Err: fmt.Errorf("unknown command %q", cmd)}
	}
	cli.Exit("relais", err)
}

// version prints the version, commit and build date: from the release
// build's stamp, else from what Go recorded, else "unknown".
func version(args []string) error {
	fs := flag.NewFlagSet("relais version", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: relais version\n\nprints the version, the commit and the build date of this binary")
	}
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef(fs, "unexpected argument %q", fs.Arg(0))
	}
	bi := buildinfo.Get()
	fmt.Printf("relais %s (commit %s, built %s, %s)\n", bi.Version, bi.Commit, bi.Date, bi.GoVersion)
	return nil
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
	// Under systemd (Type=notify) the unit is started only now that the
	// node serves.
	if _, err := sdnotify.Notify(sdnotify.Ready); err != nil {
		log.Warn("tell systemd the node is ready", "err", err)
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
	if _, err := sdnotify.Notify(sdnotify.Stopping); err != nil {
		log.Warn("tell systemd the node is stopping", "err", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	return n.Shutdown(sctx)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

const backupUsage = `usage: relais backup [--data DIR] [--encrypt | --passphrase-file FILE] FILE

Writes an archive of the running node into FILE: its store as of one
instant, the media files that store names, the scanner key and the TLS
state. The archive is read back and checked before it gets its name.
It is encrypted when --encrypt (passphrase asked on the terminal),
--passphrase-file or RELAIS_BACKUP_PASSPHRASE is given.

`

func backupCmd(args []string) error {
	fs := flag.NewFlagSet("relais backup", flag.ContinueOnError)
	data := fs.String("data", envOr("RELAIS_DATA", config.Defaults().Data), "data directory of the running node")
	encrypt := fs.Bool("encrypt", false, "encrypt to a passphrase asked on the terminal")
	passFile := fs.String("passphrase-file", "", "encrypt to the passphrase on the first line of this file")
	work := fs.Int("work-factor", backup.DefaultWorkFactor, "scrypt cost of the encryption, log2(N), 10 to 20")
	fs.Usage = func() { fmt.Fprint(fs.Output(), backupUsage); fs.PrintDefaults() }
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef(fs, "expected one FILE: relais backup [--data DIR] FILE")
	}
	pass := backup.Passphrase{File: *passFile, Env: os.Getenv(backup.EnvPassphrase), Prompt: *encrypt}
	var key []byte
	if pass.Given() || *encrypt {
		var err error
		if key, err = pass.Get(true); err != nil {
			return err
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	prog := backup.NewProgress(os.Stderr, backup.IsTerminal(os.Stderr), "backup", 0)
	c, err := backup.Create(ctx, backup.CreateOptions{Data: *data, File: fs.Arg(0), Passphrase: key, WorkFactor: *work, Progress: prog})
	if err != nil {
		return err
	}
	how := "not encrypted"
	if c.Encrypted {
		how = "encrypted"
	}
	fmt.Fprintf(os.Stderr, "backup: %s written and checked: %d files, %d of them media files, %s\n", fs.Arg(0), len(c.Manifest.Files), c.Blobs(), how)
	if n := len(c.Manifest.Missing); n > 0 {
		fmt.Fprintf(os.Stderr, "backup: warning: %d media files the store names were already missing from the node's disk\n", n)
	}
	return nil
}

const restoreUsage = `usage: relais restore [--data DIR] [--force] [--passphrase-file FILE] FILE
       relais restore --check [--passphrase-file FILE] FILE

Checks the whole archive FILE (every file's SHA-256, the encryption, the
store and its consistency) in a new directory next to DIR, then puts it in
place of DIR. A DIR that is not empty needs --force and is kept as
DIR.before-restore-<time>. The node must be stopped. --check only checks.

`

func restoreCmd(args []string) error {
	fs := flag.NewFlagSet("relais restore", flag.ContinueOnError)
	data := fs.String("data", envOr("RELAIS_DATA", config.Defaults().Data), "data directory of the stopped node")
	force := fs.Bool("force", false, "restore over a data directory that is not empty (kept aside)")
	check := fs.Bool("check", false, "only check the archive as a restore would; change nothing")
	passFile := fs.String("passphrase-file", "", "the passphrase of an encrypted archive, on the first line of this file")
	fs.Usage = func() { fmt.Fprint(fs.Output(), restoreUsage); fs.PrintDefaults() }
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef(fs, "expected one FILE: relais restore [--data DIR] FILE")
	}
	if _, err := os.Stat(fs.Arg(0)); err != nil {
		return fmt.Errorf("the archive: %w", err)
	}
	pass := backup.Passphrase{File: *passFile, Env: os.Getenv(backup.EnvPassphrase), Prompt: true}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if *check {
		c, err := backup.Verify(ctx, fs.Arg(0), func() ([]byte, error) { return pass.Get(false) })
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "restore: %s checks out: node %s, schema %d, %d files, %d of them media files, made %s\n",
			fs.Arg(0), c.About.Node, c.About.Schema, len(c.Manifest.Files), c.Blobs(), c.About.Created.Format(time.RFC3339))
		return nil
	}
	r, err := backup.Restore(ctx, backup.RestoreOptions{File: fs.Arg(0), Data: *data, Force: *force,
		Passphrase: func() ([]byte, error) { return pass.Get(false) },
		Progress:   backup.NewProgress(os.Stderr, backup.IsTerminal(os.Stderr), "restore", 0)})
	if err != nil {
		return err
	}
	if r.Aside != "" {
		fmt.Fprintf(os.Stderr, "restore: the previous data directory is kept as %s\n", r.Aside)
	}
	if r.Legacy {
		fmt.Fprintln(os.Stderr, "restore: warning: this is a bare store file of an older relais: it has no media files")
	}
	fmt.Fprintf(os.Stderr, "restore: %s checked and restored into %s (%d media files); start the node\n", fs.Arg(0), *data, r.Blobs())
	return nil
}
