// Package node assembles a whole Relais node from its parts (store,
// accounts, rooms, websocket fan-out, HTTP API, TLS, admin socket) around a
// bus given by the caller, and runs it until shut down.
package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"relais/server/account"
	"relais/server/admin"
	"relais/server/adminops"
	"relais/server/api"
	"relais/server/backup"
	"relais/server/buildinfo"
	"relais/server/bus"
	"relais/server/chat"
	"relais/server/config"
	"relais/server/fed"
	"relais/server/files"
	"relais/server/httpx"
	"relais/server/mail"
	"relais/server/metrics"
	"relais/server/password"
	"relais/server/series"
	"relais/server/store"
	"relais/server/tlsmgr"
	"relais/server/turn"
	"relais/server/ws"
)

// Options are what a node takes besides its configuration: the parts tests
// and benchmarks substitute.
type Options struct {
	Logger *slog.Logger
	// Web is the built web client; nil serves no client.
	Web fs.FS
	// Password overrides the hashing parameters (tests use cheap ones).
	Password password.Params
	// Mailer overrides the SMTP relay of the configuration.
	Mailer mail.Sender
	// WS overrides the websocket endpoint's tuning; WS.RateLimits turns
	// the limits of websocket frames (and KeyPackage claims) on even with
	// the configuration's rate limits off.
	WS ws.Options
	// Bodies overrides the deadlines of request bodies (tests).
	Bodies api.BodyDeadlines
	// LowKeysEvery overrides the least time between two low_keys frames
	// of one device (tests).
	LowKeysEvery time.Duration
	// NoSync turns fsync off; only for tests that measure nothing.
	NoSync bool
	// Now is the clock of accounts and rooms (tests of expiry).
	Now func() time.Time
	// ExpirySweep is how often accounts whose validity ran out are signed
	// out (default account.DefaultExpirySweep).
	ExpirySweep time.Duration
	// AltHTTPPort and AltTLSALPNPort redirect ACME validation (tests).
	AltHTTPPort, AltTLSALPNPort int
	// Files tunes the attachment service (tests shorten its periods).
	Files files.Tuning
}

// Node is a running node.
type Node struct {
	cfg config.Config
	log *slog.Logger
	bus bus.Bus

	DB       *store.DB
	Chat     *chat.Service
	Accounts *account.Service
	WS       *ws.Server
	TLS      *tlsmgr.Manager
	Files    *files.Service
	// Metrics reads every part's counters: /metrics and the admin page.
	Metrics *metrics.Metrics
	// Fed is peering and the directory across administrations; nil when
	// federation is off.
	Fed *fed.Service
	// TURN is the relay of calls; nil with --turn off (calls.go).
	TURN *turn.Server

	admin      *admin.Server
	http       *http.Server
	redirect   *http.Server
	redirectLn net.Listener
	listener   net.Listener

	metricsSrv *http.Server
	metricsLn  net.Listener

	series *series.Ring // the admin page's chart

	url     string
	started time.Time
	stop    context.CancelFunc
	done    chan struct{}
}

// BusFunc starts the node's bus once the node's identifier is known.
type BusFunc func(nodeID string, log *slog.Logger) (bus.Bus, error)

// Start opens the data directory and starts serving. The bus newBus
// returns becomes the node's: Shutdown closes it. On error everything
// started is stopped again.
func Start(ctx context.Context, cfg config.Config, newBus BusFunc, opts Options) (n *Node, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n = &Node{cfg: cfg, log: log, started: time.Now(), done: make(chan struct{}), Metrics: metrics.New()}
	defer func() {
		if err != nil {
			n.Shutdown(context.Background())
			n = nil
		}
	}()
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	os.Chmod(cfg.Data, 0o700)
	if n.DB, err = store.Open(filepath.Join(cfg.Data, "relais.db"), store.Options{Logger: log.With("component", "store"), NoSync: opts.NoSync,
		ObserveCommit: n.Metrics.ObserveCommit}); err != nil {
		return nil, err
	}
	if n.bus, err = newBus(n.DB.Node(), log); err != nil {
		return nil, fmt.Errorf("start bus: %w", err)
	}
	b := n.bus

	// Listeners are bound before the TLS manager starts, so that ACME
	// challenges are answered by the node's own listeners.
	if n.listener, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	tlsOn := cfg.TLS != tlsmgr.ModeOff
	var redirectLn net.Listener
	if addr := cfg.HTTPListen; tlsOn && (addr != "" || len(cfg.Domains) > 0) {
		if addr == "" {
			addr = ":80"
		}
		if redirectLn, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("listen on %s (HTTP redirect and ACME challenges; set --http-listen): %w", addr, err)
		}
	}
	tcfg := tlsmgr.Config{
		Mode: cfg.TLS, Domains: cfg.Domains, DataDir: cfg.Data,
		ACMECA: cfg.ACMECA, ACMECARoot: cfg.ACMECARoot, ACMEEmail: cfg.ACMEEmail,
		CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, Logger: log,
		AltHTTPPort: opts.AltHTTPPort, AltTLSALPNPort: opts.AltTLSALPNPort,
	}
	if port := portOf(n.listener.Addr()); port != 443 {
		tcfg.RedirectPort = port
		if tcfg.AltTLSALPNPort == 0 {
			tcfg.AltTLSALPNPort = port
		}
	}
	if redirectLn != nil && tcfg.AltHTTPPort == 0 {
		if port := portOf(redirectLn.Addr()); port != 80 {
			tcfg.AltHTTPPort = port
		}
	}
	if n.TLS, err = tlsmgr.New(ctx, tcfg); err != nil {
		if redirectLn != nil {
			redirectLn.Close()
		}
		return nil, err
	}
	tlsConf := n.TLS.TLSConfig()
	if n.url, err = publicURL(cfg, n.listener.Addr(), tlsConf != nil); err != nil {
		return nil, err
	}
	loopback := tlsmgr.LoopbackOnly(n.listener.Addr().String())
	if tlsConf == nil && !loopback {
		log.Warn("TLS IS OFF and the node listens beyond loopback: passwords and messages cross the network in clear. Use --tls off only behind a reverse proxy that terminates HTTPS.", "listen", n.listener.Addr().String())
	}

	mailer := opts.Mailer
	if mailer == nil && cfg.SMTPHost != "" {
		if mailer, err = mail.NewSMTP(mail.SMTPConfig{Host: cfg.SMTPHost, Port: cfg.SMTPPort, Security: cfg.SMTPSecurity,
			Username: cfg.SMTPUser, Password: cfg.SMTPPassword, From: cfg.SMTPFrom}); err != nil {
			return nil, err
		}
	}
	name := cfg.Name
	if name == "" {
		name = "Relais"
	}
	n.Chat = chat.New(n.DB, b, chat.Options{Logger: log, Now: opts.Now,
		RateLimits: cfg.RateLimits || opts.WS.RateLimits, LowKeysEvery: opts.LowKeysEvery})
	if n.Accounts, err = account.New(ctx, n.DB, b, account.Config{
		Domains: cfg.AllowedDomains, PublicURL: n.url, Mailer: mailer, Templates: mail.Templates{Node: name},
		Validity:        time.Duration(cfg.AccountValidity),
		SessionLifetime: time.Duration(cfg.SessionLifetime), SessionMaxAge: time.Duration(cfg.SessionMaxAge), RateLimits: cfg.RateLimits, Password: opts.Password, Logger: log, Now: opts.Now,
		ExpirySweep: opts.ExpirySweep,
	}); err != nil {
		return nil, err
	}
	// chat and account call each other through interfaces each declares
	// (neither imports the other); the assertions below keep both ends
	// of these two setters in step at compile time.
	n.Chat.SetInviter(n.Accounts)
	n.Accounts.SetJoiner(n.Chat)
	if n.Files, err = files.Open(files.Config{
		Dir: filepath.Join(cfg.Data, "media"), DB: n.DB, Chat: n.Chat, Accounts: n.Accounts,
		Clamd: cfg.Clamd, ClamdDown: cfg.ClamdDown, MaxUpload: cfg.MaxUpload, UserQuota: cfg.UserQuota,
		ScanEncrypted: cfg.ScanEncrypted, Tuning: opts.Files, Logger: log,
	}); err != nil {
		return nil, err
	}
	n.Chat.SetFiles(n.Files)
	if err := n.Chat.Recover(ctx); err != nil {
		return nil, err
	}
	if err := n.startFederation(cfg, b); err != nil {
		return nil, err
	}
	wsOpts := opts.WS
	wsOpts.Logger = log
	if n.Fed != nil {
		wsOpts.RemoteDirectory = n.Fed.SearchDirectory
	}
	// Tests may turn the websocket's limits on alone.
	wsOpts.RateLimits = wsOpts.RateLimits || cfg.RateLimits
	wsOpts.TURN = n.startTURN(cfg)
	if n.WS, err = ws.New(n.Chat, b, ws.AuthFunc(n.authenticate), wsOpts); err != nil {
		return nil, err
	}
	ops := n.adminOps(opts)
	n.Metrics.SetSources(metrics.Sources{WS: n.WS, Chat: n.Chat, DB: n.DB, Files: n.Files, TLS: n.TLS, Fed: n.Fed})
	handler := api.New(api.Config{
		Accounts: n.Accounts, Chat: n.Chat, WS: n.WS, Media: n.Files.Handler(), Web: opts.Web, Health: n.health, Admin: ops,
		// Browsers reach the node at its public URL: behind a local HTTPS
		// proxy the listener is plain HTTP on loopback, the cookie still
		// must never travel in clear.
		SecureCookies: tlsConf != nil || !loopback || strings.HasPrefix(n.url, "https://"),
		TrustProxy:    cfg.TrustProxy, Bodies: opts.Bodies, Name: name, Logger: log,
	})
	if n.admin, err = admin.Listen(cfg.Data, ops, n.DB, log); err != nil {
		return nil, err
	}
	n.admin.ServeBackup(backup.Handler(backup.Source{DB: n.DB, Data: cfg.Data, HoldRemovals: n.Files.HoldRemovals,
		Version: buildinfo.Get().Version}, log.With("component", "backup")))
	if n.Fed != nil {
		n.admin.ServeFederation(n.Fed)
	}
	if cfg.MetricsListen != "" {
		if err := n.serveMetrics(cfg.MetricsListen); err != nil {
			return nil, err
		}
	}

	// Logged before serving, so that a node that answers has told it.
	if setup, err := n.Accounts.SetupLink(ctx); err != nil {
		return nil, err
	} else if setup != "" {
		log.Warn("no administrator yet: open this one-time link to create the first one", "setup", setup)
	}

	var h http.Handler = handler
	if tlsConf != nil {
		h = n.TLS.HSTS(handler)
	}
	// Only ReadHeaderTimeout here: read and write timeouts would stay on
	// the connections hijacked by websockets. Bodies get their deadline
	// per request (api.BodyDeadlines); idle keep-alive connections close
	// after IdleTimeout.
	n.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		TLSConfig: tlsConf, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug), ConnState: n.Metrics.ConnState}
	go func() {
		var err error
		if tlsConf != nil {
			// Record by record, so that idle websockets cost over TLS
			// what they cost over plain TCP (ws.RecordListener).
			err = n.http.ServeTLS(ws.RecordListener(n.listener), "", "")
		} else {
			err = n.http.Serve(n.listener)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", "err", err)
		}
	}()
	if redirectLn != nil {
		n.redirectLn = redirectLn
		n.redirect = &http.Server{Handler: n.TLS.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		go n.redirect.Serve(redirectLn)
	}

	mctx, stop := context.WithCancel(context.Background())
	n.stop = stop
	n.Files.Start(mctx)
	go n.series.Run(mctx, 5*time.Second)
	go func() {
		defer close(n.done)
		n.Accounts.Maintain(mctx, time.Hour)
	}()

	log.Info("node started", "url", n.url, "listen", n.listener.Addr().String(), "node", n.DB.Node(),
		"version", buildinfo.Get().Version, "tls", n.TLS.Status().Mode, "startup", time.Since(n.started).Round(time.Millisecond))
	if fp := n.TLS.CAFingerprint(); fp != "" {
		log.Info("local certificate authority: pin the node's key (curl --pinnedpubkey) or trust the CA, which can only vouch for the node's names",
			"sha256", fp, "spki_pin", n.TLS.SPKIPin(), "file", filepath.Join(cfg.Data, "tls", "local", "ca.crt"))
		if u := n.TrustPageURL(); u != "" {
			log.Info("agents install the CA from the trust page, after comparing its fingerprint with the one above", "trust_page", u)
		}
	}
	return n, nil
}

// adminOps builds the administrative actions shared by the admin socket
// and the admin page, and the activity series the page draws.
func (n *Node) adminOps(opts Options) *adminops.Service {
	disk := func() adminops.Disk { return adminops.DiskOf(n.cfg.Data, n.DB.Size()) }
	n.series = series.New(series.Source{Conns: n.WS.Sessions, Messages: n.Chat.MessagesSent,
		Disk: func() int64 { d := disk(); return d.Store + d.Media }}, nil)
	if err := n.series.Load(n.activityFile()); err != nil {
		n.log.Warn("the admin page's activity of the last day is lost", "err", err)
	}
	return adminops.New(adminops.Config{Accounts: n.Accounts, DB: n.DB, Health: n.health, Series: n.series,
		Antivirus: func(ctx context.Context) any { return n.Files.Antivirus(ctx) }, Disk: disk, Peers: n.peers(), Logger: n.log, Now: opts.Now})
}

// peers lists the peered administrations for the admin actions; nil
// without federation.
func (n *Node) peers() func() ([]fed.PeerInfo, error) {
	if n.Fed == nil {
		return nil
	}
	return n.Fed.List
}

// activityFile keeps the admin page's activity series across restarts.
func (n *Node) activityFile() string { return filepath.Join(n.cfg.Data, "activity.json") }

// authenticate resolves a websocket upgrade's session.
func (n *Node) authenticate(r *http.Request) (ws.Identity, error) {
	token, cookie := httpx.TokenFrom(r)
	ident, err := n.Accounts.Resolve(token)
	if err != nil {
		return ws.Identity{}, err
	}
	return ws.Identity{User: ident.User.ID, Device: ident.Session.DeviceID, External: ident.User.External, Cookie: cookie}, nil
}

// publicURL is how users reach the node: the configured URL, the ACME
// domain, or the listener's address.
func publicURL(cfg config.Config, addr net.Addr, tls bool) (string, error) {
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return "", fmt.Errorf("--public-url %q: expected https://host[:port]", cfg.PublicURL)
		}
		return u.Scheme + "://" + u.Host, nil
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	_, port, _ := net.SplitHostPort(addr.String())
	host := "localhost"
	if len(cfg.Domains) > 0 {
		host = cfg.Domains[0]
	} else if h, _, _ := net.SplitHostPort(cfg.Listen); h != "" && h != "0.0.0.0" && h != "::" {
		host = h
	}
	if (tls && port == "443") || (!tls && port == "80") {
		return scheme + "://" + host, nil
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

func portOf(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}

// URL is the node's public URL.
func (n *Node) URL() string { return n.url }

// TrustPageURL is the plain-HTTP page that guides agents through
// installing the local CA, "" when there is none (not local mode, or no
// plain-HTTP listener).
func (n *Node) TrustPageURL() string {
	if n.redirectLn == nil || n.TLS == nil || n.TLS.CAFingerprint() == "" {
		return ""
	}
	u, err := url.Parse(n.url)
	if err != nil {
		return ""
	}
	return "http://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(portOf(n.redirectLn.Addr()))) + "/trust"
}

// RedirectAddr is the address of the plain HTTP listener (redirects and
// ACME challenges), "" without one.
func (n *Node) RedirectAddr() string {
	if n.redirectLn == nil {
		return ""
	}
	return n.redirectLn.Addr().String()
}

// MetricsAddr is the address of the metrics listener, "" without one.
func (n *Node) MetricsAddr() string {
	if n.metricsLn == nil {
		return ""
	}
	return n.metricsLn.Addr().String()
}

// serveMetrics serves /metrics alone on its own listener, so that the
// public listener never does: behind a reverse proxy every request comes
// from loopback, and no check of the client address can tell the operator
// from the public.
func (n *Node) serveMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (--metrics-listen): %w", addr, err)
	}
	n.metricsLn = ln
	if !tlsmgr.LoopbackOnly(ln.Addr().String()) {
		n.log.Warn("the metrics listener is reachable beyond loopback: restrict it with a firewall", "metrics_listen", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.Metrics.Handler())
	n.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go n.metricsSrv.Serve(ln)
	return nil
}

// Addr is the address the node listens on.
func (n *Node) Addr() string { return n.listener.Addr().String() }

func (n *Node) health() map[string]any {
	bi := buildinfo.Get()
	h := map[string]any{
		"status":     "ok",
		"version":    bi.Version,
		"commit":     bi.Commit,
		"node":       n.DB.Node(),
		"uptime_s":   int64(time.Since(n.started).Seconds()),
		"store_size": n.DB.Size(),
		"sessions":   n.WS.Sessions(),
	}
	if n.Fed != nil {
		h["federation"] = n.Fed.Health()
	}
	if n.TLS != nil {
		st := n.TLS.Status()
		h["tls"] = st
		if fp := n.TLS.CAFingerprint(); fp != "" {
			h["ca_fingerprint"] = fp
		}
	}
	return h
}

// Shutdown stops the node gracefully: in-flight HTTP requests finish,
// websocket sessions are closed (clients resync elsewhere or later), the
// bus is drained and closed, then the store. It is safe after a partial
// start.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.stop != nil {
		n.stop()
		<-n.done
	}
	if n.series != nil {
		if err := n.series.Save(n.activityFile()); err != nil {
			n.log.Warn("the admin page's activity of the last day is not saved", "err", err)
		}
	}
	if n.redirect != nil {
		n.redirect.Shutdown(ctx)
	}
	if n.metricsSrv != nil {
		n.metricsSrv.Shutdown(ctx)
	} else if n.metricsLn != nil {
		n.metricsLn.Close()
	}
	if n.http != nil {
		n.http.Shutdown(ctx)
	} else if n.listener != nil {
		n.listener.Close()
	}
	if n.Files != nil {
		// Its goroutines publish on the bus and write to the store.
		n.Files.Close()
	}
	if n.WS != nil {
		n.WS.Close()
	}
	if n.TURN != nil {
		n.TURN.Close()
	}
	n.admin.Close()
	if n.Accounts != nil {
		n.Accounts.Close()
	}
	if n.Chat != nil {
		// Nothing writes any more: sessions, uploads and the admin socket
		// are closed.
		if err := n.Chat.Close(ctx); err != nil {
			n.log.Error("stop", "err", err)
		}
	}
	if n.bus != nil {
		n.bus.Close()
	}
	if n.TLS != nil {
		n.TLS.Close()
	}
	var err error
	if n.DB != nil {
		err = n.DB.Close()
	}
	n.log.Info("node stopped")
	return err
}

// The services' cross-calls, checked at compile time (see Start).
var (
	_ chat.Inviter   = (*account.Service)(nil)
	_ account.Joiner = (*chat.Service)(nil)
)
