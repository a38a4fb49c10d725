// Package cluster runs the node's embedded NATS server and implements the
// bus the server packages publish and subscribe through.
//
// On a single node the NATS server has no listeners and serves only the
// node itself, so the path events take on one node is the clustered path.
// The mesh of nodes (routes with mutual TLS, JetStream replication and the
// mesh directory) builds on this package.
package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"relais/server/bus"
	"relais/server/fed"
)

// Options configure Start.
type Options struct {
	// Name identifies this node's NATS server (the node id).
	Name string
	// Logger receives the NATS server's log lines.
	Logger *slog.Logger
	// Federation, when set, adds the links to peered administrations
	// (fedlink.go) and moves the bus to an account of its own.
	Federation *FedOptions
}

// Bus is a running embedded NATS server and the node's connection to it.
type Bus struct {
	ns  *server.Server
	nc  *nats.Conn
	log *slog.Logger

	mu   sync.Mutex
	subs map[*nats.Subscription]struct{}

	fed *Link
}

var _ bus.Bus = (*Bus)(nil)

// Start starts the embedded server and connects to it in process.
func Start(opts Options) (_ *Bus, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	log := opts.Logger.With("component", "nats")
	sopts := &server.Options{
		ServerName: opts.Name,
		DontListen: true,
		NoSigs:     true,
		// The bus carries whole events; media never crosses it.
		MaxPayload: 8 << 20,
		MaxPending: 256 << 20,
	}
	var link *Link
	var auth []nats.Option
	if opts.Federation != nil {
		var appAuth nats.Option
		if link, appAuth, err = newLink(*opts.Federation, sopts, opts.Logger); err != nil {
			return nil, err
		}
		auth = append(auth, appAuth)
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("cluster: new nats server: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log}, false, false, false)
	n := &Bus{ns: ns, log: log, subs: map[*nats.Subscription]struct{}{}, fed: link}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("cluster: nats server not ready after 10s")
	}
	if link != nil {
		link.start(ns, sopts)
	}
	n.nc, err = nats.Connect("", append(auth, nats.InProcessServer(ns), nats.Name("relais"),
		nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("bus error", "subject", subject, "err", err)
		}))...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect in process: %w", err)
	}
	return n, nil
}

// Federation returns the links to peered administrations, nil when the
// bus was started without federation.
func (n *Bus) Federation() fed.Link {
	if n.fed == nil {
		return nil
	}
	return n.fed
}

// Publish implements bus.Bus.
func (n *Bus) Publish(subject string, data []byte) error {
	if err := n.nc.Publish(subject, data); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return bus.ErrClosed
		}
		return fmt.Errorf("cluster: publish %s: %w", subject, err)
	}
	return nil
}

// Subscribe implements bus.Bus.
func (n *Bus) Subscribe(subject string, h bus.Handler) (bus.Subscription, error) {
	s, err := n.nc.Subscribe(subject, func(m *nats.Msg) { h(m.Subject, m.Data) })
	if err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil, bus.ErrClosed
		}
		return nil, fmt.Errorf("cluster: subscribe %s: %w", subject, err)
	}
	// Handlers never block, so a deep queue only absorbs bursts; the
	// default 64 MiB limit would drop events of a busy node silently.
	if err := s.SetPendingLimits(-1, 1<<30); err != nil {
		s.Unsubscribe()
		return nil, fmt.Errorf("cluster: subscribe %s: %w", subject, err)
	}
	// Make sure the server knows the subscription before returning, so a
	// publish that follows is delivered.
	if err := n.nc.Flush(); err != nil {
		s.Unsubscribe()
		return nil, fmt.Errorf("cluster: subscribe %s: %w", subject, err)
	}
	n.mu.Lock()
	n.subs[s] = struct{}{}
	n.mu.Unlock()
	return subscription{n, s}, nil
}

type subscription struct {
	n *Bus
	s *nats.Subscription
}

func (s subscription) Unsubscribe() error {
	s.n.mu.Lock()
	delete(s.n.subs, s.s)
	s.n.mu.Unlock()
	err := s.s.Unsubscribe()
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) {
		return nil
	}
	return err
}

// Flush implements bus.Bus.
func (n *Bus) Flush() error {
	if err := n.nc.Flush(); err != nil {
		return fmt.Errorf("cluster: flush: %w", err)
	}
	return nil
}

// Close drains the connection and shuts the server down, in that order.
// It is safe after a partial Start and more than once.
func (n *Bus) Close() error {
	if n.fed != nil {
		n.fed.close()
	}
	if n.nc != nil && !n.nc.IsClosed() {
		n.nc.Drain()
		deadline := time.Now().Add(5 * time.Second)
		for !n.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		n.nc.Close()
	}
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
	}
	return nil
}

// natsLogger forwards the NATS server's logs to slog. Fatalf must not exit
// the process: the node decides what a failure of its bus means.
type natsLogger struct{ l *slog.Logger }

func (l natsLogger) Noticef(f string, v ...any) { l.l.Debug(fmt.Sprintf(f, v...)) }
func (l natsLogger) Warnf(f string, v ...any)   { l.l.Warn(fmt.Sprintf(f, v...)) }
func (l natsLogger) Fatalf(f string, v ...any)  { l.l.Error(fmt.Sprintf(f, v...)) }
func (l natsLogger) Errorf(f string, v ...any)  { l.l.Error(fmt.Sprintf(f, v...)) }
func (l natsLogger) Debugf(f string, v ...any)  { l.l.Debug(fmt.Sprintf(f, v...)) }
func (l natsLogger) Tracef(f string, v ...any)  {}
