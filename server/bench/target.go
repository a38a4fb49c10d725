package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"relais/server/admin"
	"relais/server/client"
	"relais/server/config"
	"relais/server/node"
	"relais/server/password"
	"relais/server/proto"
	"relais/server/store"
)

// Domain is the e-mail domain of the accounts the bench creates.
const Domain = "bench.gouv.fr"

// benchPassword is the password of every account the bench provisions, so
// that they can also sign in over HTTP.
const benchPassword = "Banc-d-Essai-Relais-2026"

// user is an account the bench drives, with the bearer token of each of
// its devices.
type user struct {
	ID     string
	Name   string
	Tokens []string
}

// target is the node under test and the way to get accounts on it.
type target struct {
	url  string
	node *node.Node // in process; nil for a node at --url
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// tls trusts the local CA of a node the bench started with --tls;
	// nil: the system's roots (or plain HTTP).
	tls *tls.Config

	provision func(ctx context.Context, n, devices int) ([]user, error)
	stop      func()
}

// inProcess starts a node in this process: a fresh data directory, plain
// HTTP on loopback, fsync on, rate limits off.
func (r *runner) inProcess(ctx context.Context, name string) (*target, error) {
	dir, err := os.MkdirTemp(r.tmp, name+"-")
	if err != nil {
		return nil, err
	}
	cfg := benchConfig(dir, "127.0.0.1:0", r.set.tls)
	n, err := r.start(ctx, cfg, r.log.With("node", name))
	if err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	t := &target{url: n.URL(), node: n, dial: loopbackDialer(n.URL())}
	if r.set.tls {
		if t.tls, err = trustCA(n.TLS.CACertPEM()); err != nil {
			n.Shutdown(ctx)
			return nil, err
		}
	}
	t.provision = func(ctx context.Context, count, devices int) ([]user, error) {
		return provision(ctx, n.DB, count, devices)
	}
	t.stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Shutdown(sctx)
		os.RemoveAll(dir)
	}
	return t, nil
}

// benchConfig is the configuration of the nodes the bench starts. Only
// what a benchmark must change is changed: the data directory, plain HTTP
// on loopback (as behind a reverse proxy) unless withTLS (HTTPS from the
// node's local CA, as a town hall runs it), and rate limits off so that
// the load is not refused. fsync stays on.
func benchConfig(dir, listen string, withTLS bool) config.Config {
	cfg := config.Defaults()
	cfg.Data = dir
	cfg.Listen = listen
	cfg.TLS = "off"
	if withTLS {
		cfg.TLS = "local"
	}
	cfg.RateLimits = false
	cfg.AllowedDomains = config.List{Domain}
	cfg.LogLevel = "error"
	// No scenario places calls, and several bench nodes run at once: the
	// TURN relay would fight for its port.
	cfg.TURN = false
	return cfg
}

// target returns the node a scenario drives: the one at --url, or a new
// one in process.
func (r *runner) target(ctx context.Context, name string) (*target, error) {
	if r.set.url == "" {
		return r.inProcess(ctx, name)
	}
	return r.remote()
}

var provisioned atomic.Int64

var benchHash = sync.OnceValues(func() (string, error) {
	return password.Hash(context.Background(), benchPassword, password.Default)
})

// provision creates accounts directly in a store (one the bench owns:
// in process, or before it starts a child node on it).
func provision(ctx context.Context, db *store.DB, count, devices int) ([]user, error) {
	hash, err := benchHash()
	if err != nil {
		return nil, err
	}
	prefix := fmt.Sprintf("b%d", provisioned.Add(1))
	accs, err := provisionAccounts(ctx, db, prefix, Domain, hash, count, devices)
	if err != nil {
		return nil, err
	}
	out := make([]user, len(accs))
	for i, a := range accs {
		out[i] = user{ID: a.ID, Name: a.Name, Tokens: a.Tokens}
	}
	return out, nil
}

// remote is the node at --url. Accounts come from --accounts-file (signed
// in over HTTP, one sign-in per device) and, with --data, from
// registrations approved through the node's admin socket.
func (r *runner) remote() (*target, error) {
	u, err := url.Parse(r.set.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q: expected http(s)://host:port", r.set.url)
	}
	t := &target{url: strings.TrimRight(r.set.url, "/"), dial: loopbackDialer(r.set.url), stop: func() {}}
	var mu sync.Mutex
	var accounts [][2]string
	if r.set.accountsFile != "" {
		if accounts, err = readAccounts(r.set.accountsFile); err != nil {
			return nil, err
		}
	}
	next := 0
	t.provision = func(ctx context.Context, count, devices int) ([]user, error) {
		out := make([]user, count)
		for i := range out {
			mu.Lock()
			var email, pw string
			if next < len(accounts) {
				email, pw = accounts[next][0], accounts[next][1]
				next++
			}
			mu.Unlock()
			if email == "" {
				if r.set.data == "" {
					return nil, fmt.Errorf("--url: %d accounts needed, --accounts-file has %d and there is no --data to register more", count, len(accounts))
				}
				email, pw = fmt.Sprintf("bench.%d.%d@%s", time.Now().UnixNano(), i, Domain), benchPassword
				if err := r.register(ctx, t, email, pw); err != nil {
					return nil, err
				}
			}
			for range devices {
				c := client.New(t.url, client.WithDialer(t.dial), client.WithTLS(t.tls))
				if err := c.Login(ctx, email, pw); err != nil {
					return nil, fmt.Errorf("sign in %s: %w", email, err)
				}
				out[i].ID, out[i].Name = c.Me.ID, c.Me.Name
				out[i].Tokens = append(out[i].Tokens, c.Token())
			}
		}
		return out, nil
	}
	return t, nil
}

// register registers an account on the node at --url and approves it
// through the admin socket in --data.
func (r *runner) register(ctx context.Context, t *target, email, pw string) error {
	c := client.New(t.url, client.WithDialer(t.dial), client.WithTLS(t.tls))
	if _, err := c.Register(ctx, email, pw, ""); err != nil {
		return fmt.Errorf("register %s (the node must allow %s and run with --rate-limits off): %w", email, Domain, err)
	}
	if err := admin.Dial(r.set.data).Do(ctx, "POST", "/users/approve", map[string]string{"email": email}, nil); err != nil {
		return fmt.Errorf("approve %s through %s: %w", email, filepath.Join(r.set.data, admin.SocketName), err)
	}
	return nil
}

func readAccounts(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		email, pw, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("%s:%d: expected `email password`", path, n)
		}
		out = append(out, [2]string{email, strings.TrimSpace(pw)})
	}
	return out, sc.Err()
}

// client returns a client of the target signed in with a token of u.
func (t *target) client(u user, device int) *client.Client {
	c := client.New(t.url, client.WithToken(u.Tokens[device]), client.WithDialer(t.dial), client.WithTLS(t.tls))
	c.Me = proto.Me{Profile: proto.Profile{ID: u.ID, Name: u.Name}}
	return c
}

// connect opens a websocket as device dev of u and syncs it from scratch.
func (t *target) connect(ctx context.Context, u user, dev, buffer int) (*client.Conn, []client.Frame, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := t.client(u, dev).Dial(ctx, buffer)
	if err != nil {
		return nil, nil, err
	}
	frames, err := conn.Sync(ctx, map[string]uint64{})
	if err != nil {
		conn.CloseNow()
		return nil, nil, fmt.Errorf("sync: %w", err)
	}
	return conn, frames, nil
}

// sourcesPerAddress is how many connections one loopback source address
// carries, well inside the ephemeral port range (32768–60999).
const sourcesPerAddress = 20000

// loopbackDialer spreads connections to a loopback node over the source
// addresses 127.0.0.2, 127.0.0.3… so that 100 k connections do not run
// out of ephemeral ports; other nodes are dialed normally.
func loopbackDialer(rawURL string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	u, err := url.Parse(rawURL)
	if err != nil {
		return d.DialContext
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback() || ip.To4() == nil) {
		return d.DialContext
	}
	var n atomic.Uint64
	// Start from another address each run, so that the sockets of the
	// previous one still in TIME_WAIT are out of the way.
	n.Store(uint64(time.Now().UnixNano()%250) * sourcesPerAddress)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "localhost:") {
			addr = "127.0.0.1" + addr[len("localhost"):]
		}
		var err error
		for range 8 {
			i := n.Add(1) / sourcesPerAddress
			src := net.IPv4(127, 0, byte(i/250), byte(2+i%250))
			// The port is chosen at connect time, for the whole 4-tuple
			// (IP_BIND_ADDRESS_NO_PORT), rather than at bind time.
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Control: bindNoPort}
			var c net.Conn
			if c, err = d.DialContext(ctx, "tcp4", addr); err == nil {
				return c, nil
			}
			if !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.EADDRINUSE) {
				return nil, err
			}
			// This source address has no port left: take the next one.
			n.Add(sourcesPerAddress)
		}
		return nil, err
	}
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h).
const ipBindAddressNoPort = 24

func bindNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// raiseFileLimit lets this process (and the child nodes it starts, which
// inherit it) hold n sockets and more.
func raiseFileLimit(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	want := syscall.Rlimit{Cur: n, Max: max(n, lim.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		if lim.Max >= n {
			return err
		}
		return fmt.Errorf("%d sockets need an open file limit of %d, over the hard limit of %d that this process may not raise (it needs CAP_SYS_RESOURCE, or ulimit -Hn beforehand): %w", n, n, lim.Max, err)
	}
	return nil
}

// parallel runs fn(i) for i in [0, n) on up to width goroutines and
// returns the first error.
func parallel(ctx context.Context, n, width int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// trustCA returns a TLS configuration trusting only the CA in caPEM.
func trustCA(caPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the node's local CA certificate does not parse")
	}
	return &tls.Config{RootCAs: pool}, nil
}
