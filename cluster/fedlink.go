package cluster

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"relais/server/bus"
	"relais/server/fed"
	"relais/server/proto"
)

// Federation links administrations with leaf-node links of the embedded
// NATS server, one per pair of peered administrations:
//
//   - each peer has its own account PEER_<id> on both sides, so nothing of
//     the node's own bus (account APP, in-process users only) nor of any
//     other peer is reachable over its link;
//   - the side that listens authenticates the side that dials with its
//     pinned NATS nkey, and both check the other's pinned certificate
//     (SPKI SHA-256) during a TLS 1.3 handshake that comes first, before
//     any NATS protocol is parsed; compression is off;
//   - the listening side gives the peer's user an allow-list: it may
//     publish only fed.<us>.> (requests and pushes addressed to us) and
//     _INBOX_<us>.> (replies to our requests), and receive only
//     fed.<peer>.> and _INBOX_<peer>.>. A peer that publishes anything
//     else has its link cut by the server.
//
// Subjects: fed.<to>.req.<op> for requests, fed.<to>.push.<op> for pushes,
// replies on _INBOX_<from>.… (a custom inbox prefix per administration).
const (
	// MaxFrame is the largest request, reply or push body.
	MaxFrame = 1 << 20
	// DefaultMaxInFlight is how many requests to one peer may wait for
	// their answer at once; more fail at once with fed.ErrUnreachable.
	DefaultMaxInFlight = 64
	// DefaultMaxServing is how many requests or pushes of one peer are
	// handled at once; more are refused (unavailable) or, for pushes,
	// dropped.
	DefaultMaxServing = 32
	// DefaultRequestTimeout bounds a request whose context has no
	// deadline.
	DefaultRequestTimeout = 5 * time.Second
	// HandlerTimeout bounds the handling of one request of a peer.
	HandlerTimeout = 10 * time.Second

	// FrozenPingInterval and FrozenMaxPingsOut are the link's pings.
	FrozenPingInterval = 10 * time.Second
	FrozenMaxPingsOut  = 3

	errHeader    = "Relais-Error"
	reasonHeader = "Relais-Reason"
)

// FedOptions turn federation on in Start.
type FedOptions struct {
	// Admin is this administration (fed.AdminIDOf its event key).
	Admin fed.AdminID
	// DataDir keeps the link certificate and NATS key, in DataDir/fed.
	DataDir string
	// Listen is host:port of the leaf-node listener; "" for none (this
	// node only dials). Port 0 picks one.
	Listen string
	// Endpoint is what peering tokens advertise (default: the listener's
	// address when it names a host).
	Endpoint string
	// MaxInFlight and MaxServing bound the requests waiting on one peer
	// and those of one peer being handled (defaults DefaultMaxInFlight,
	// DefaultMaxServing).
	MaxInFlight, MaxServing int
}

// FederatedBus returns the constructor of a bus with federation (a
// node.BusFunc): the administration is the one of the event key kept in
// dataDir (fed.LoadKey).
func FederatedBus(dataDir, listen, endpoint string) func(nodeID string, log *slog.Logger) (bus.Bus, error) {
	return func(nodeID string, log *slog.Logger) (bus.Bus, error) {
		key, err := fed.LoadKey(dataDir)
		if err != nil {
			return nil, err
		}
		return Start(Options{Name: nodeID, Logger: log, Federation: &FedOptions{
			Admin: fed.AdminIDOf(key.Public().(ed25519.PublicKey)), DataDir: dataDir, Listen: listen, Endpoint: endpoint}})
	}
}

// Link is the federation transport over leaf-node links. It implements
// fed.Link.
type Link struct {
	ns   *server.Server
	log  *slog.Logger
	self fed.AdminID
	info fed.LinkInfo
	cert tls.Certificate
	seed string

	// base is the server's options without peers; options() adds them.
	base     server.Options
	app      *server.Account
	accounts map[string]*server.Account // PEER_<id>, reused across reloads
	// pins is the set of SPKI pins of the peers that may dial in.
	pins     atomic.Pointer[map[string]bool]
	hubTLS   *tls.Config
	leafPort int
	// refusedAt is when a dialer's unpinned key was last logged.
	refusedAt sync.Map
	// maxInFlight and maxServing are FedOptions' bounds.
	maxInFlight, maxServing int

	mu      sync.Mutex // serialises SetPeers and guards peers
	peers   map[fed.AdminID]*peerLink
	hmu     sync.RWMutex
	handler map[string]fed.Handler
	onUp    []func(fed.AdminID)

	stop chan struct{}
	done chan struct{}
}

var _ fed.Link = (*Link)(nil)

// peerLink is one peer's side of the link on this node.
type peerLink struct {
	// LinkPeer never changes; meta is the pinned record as last set
	// (its name or domains may change with a new peering).
	fed.LinkPeer
	meta     atomic.Pointer[fed.Peer]
	dials    bool
	user     *server.NkeyUser // in process, into the peer's account
	auth     nats.Option
	nkeyUser *server.NkeyUser // the peer's node, over the link
	remote   *server.RemoteLeafOpts
	nc       *nats.Conn

	inflight    chan struct{}
	serving     chan struct{}
	up          atomic.Bool
	lastContact atomic.Int64 // Unix ms
	pending     atomic.Int64
}

func accountOf(id fed.AdminID) string { return "PEER_" + string(id) }

// newLink prepares the federation options of a server that is not yet
// started: the accounts, the in-process user of the bus and the leaf
// listener. start finishes once the server runs.
func newLink(o FedOptions, opts *server.Options, log *slog.Logger) (*Link, nats.Option, error) {
	if !o.Admin.Valid() {
		return nil, nil, fmt.Errorf("cluster: federation: bad administration id %q", o.Admin)
	}
	if o.Endpoint != "" && o.Listen == "" {
		// Peers would wait for this node to listen, and it would not.
		return nil, nil, errors.New("cluster: --federation-endpoint needs --federation-listen")
	}
	cert, pin, err := loadLinkCert(o.DataDir)
	if err != nil {
		return nil, nil, err
	}
	seed, pub, err := loadNkey(o.DataDir)
	if err != nil {
		return nil, nil, err
	}
	l := &Link{log: log.With("component", "federation"), self: o.Admin, cert: cert, seed: seed,
		accounts: map[string]*server.Account{}, peers: map[fed.AdminID]*peerLink{}, handler: map[string]fed.Handler{},
		stop: make(chan struct{}), done: make(chan struct{})}
	l.info = fed.LinkInfo{Endpoint: o.Endpoint, TLSPin: pin, Nkey: pub}
	l.maxInFlight, l.maxServing = cmp.Or(o.MaxInFlight, DefaultMaxInFlight), cmp.Or(o.MaxServing, DefaultMaxServing)
	empty := map[string]bool{}
	l.pins.Store(&empty)

	// A frozen peer (stopped process, black-holed network) keeps its TCP
	// connection: pings find it out in about 30 s rather than the default
	// 4 to 6 minutes. In-process connections answer pings at once.
	opts.PingInterval, opts.MaxPingsOut = FrozenPingInterval, FrozenMaxPingsOut
	l.app = server.NewAccount("APP")
	opts.Accounts = []*server.Account{l.app}
	appUser, appAuth, err := inProcessUser(l.app)
	if err != nil {
		return nil, nil, err
	}
	opts.Nkeys = []*server.NkeyUser{appUser}
	if o.Listen != "" {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: --federation-listen %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, nil, fmt.Errorf("cluster: --federation-listen %q: bad port", o.Listen)
		}
		if p == 0 {
			p = -1 // the server picks one
		} else {
			// The server would only say it is not ready after 10 s (its
			// listener error goes to a Fatalf that must not exit).
			ln, err := net.Listen("tcp", o.Listen)
			if err != nil {
				return nil, nil, fmt.Errorf("cluster: --federation-listen: %w", err)
			}
			ln.Close()
		}
		// The certificate is self-signed: it proves nothing but the key,
		// which is checked against the pins of the peers in the handshake
		// (and the pinned nkey authenticates right after).
		l.hubTLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
			ClientAuth: tls.RequireAnyClientCert, VerifyPeerCertificate: l.verifyDialer}
		opts.LeafNode = server.LeafNodeOpts{Host: host, Port: p, TLSConfig: l.hubTLS, TLSHandshakeFirst: true,
			TLSTimeout: 2, Compression: server.CompressionOpts{Mode: server.CompressionOff}, IsolateLeafnodeInterest: true}
	}
	l.base = *opts
	return l, appAuth, nil
}

// start runs once the server is ready.
func (l *Link) start(ns *server.Server, opts *server.Options) {
	l.ns = ns
	if opts.LeafNode.Port != 0 {
		// A port the server picked is fixed from now on: reloads may not
		// change it.
		l.leafPort = opts.LeafNode.Port
		l.base.LeafNode.Port = l.leafPort
		if l.info.Endpoint == "" {
			if h := opts.LeafNode.Host; h != "" && h != "0.0.0.0" && h != "::" {
				l.info.Endpoint = net.JoinHostPort(h, strconv.Itoa(l.leafPort))
			}
		}
		l.log.Info("federation link listening", "addr", net.JoinHostPort(opts.LeafNode.Host, strconv.Itoa(l.leafPort)), "endpoint", l.info.Endpoint)
		if l.info.Endpoint == "" {
			l.log.Warn("federation link listener without --federation-endpoint: tokens advertise none, so peers will not dial this node")
		}
	}
	go l.monitor()
}

// Info implements fed.Link.
func (l *Link) Info() fed.LinkInfo { return l.info }

// verifyDialer accepts a dialing peer's certificate only if its key is
// pinned.
func (l *Link) verifyDialer(raw [][]byte, _ [][]*x509.Certificate) error {
	if len(raw) == 0 {
		return errors.New("no certificate")
	}
	pin, err := spkiPin(raw[0])
	if err != nil {
		return err
	}
	if !(*l.pins.Load())[pin] {
		// A removed peer keeps dialing every second until it removes us
		// too: say it once a minute per key.
		if last, ok := l.refusedAt.Load(pin); !ok || time.Since(last.(time.Time)) > time.Minute {
			l.refusedAt.Store(pin, time.Now())
			l.log.Warn("federation link refused: certificate not pinned", "spki", pin)
		}
		return errors.New("certificate not pinned")
	}
	return nil
}

func verifyPin(want string) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("no certificate")
		}
		pin, err := spkiPin(raw[0])
		if err != nil {
			return err
		}
		if pin != want {
			return fmt.Errorf("the peer's certificate (spki %s) is not the pinned one", pin)
		}
		return nil
	}
}

// dials says whether this side opens the link to p: the side without an
// endpoint dials; with both, the smaller id does.
func (l *Link) dials(p fed.LinkPeer) (dials, route bool) {
	switch {
	case p.Endpoint == "" && l.info.Endpoint == "":
		return false, false
	case l.info.Endpoint == "" || l.leafPort == 0:
		return p.Endpoint != "", p.Endpoint != ""
	case p.Endpoint == "":
		return false, true
	}
	return l.self < p.ID, true
}

// options is the server's configuration with these peers.
func (l *Link) options(peers map[fed.AdminID]*peerLink) *server.Options {
	o := l.base
	o.Accounts = []*server.Account{l.app}
	o.Nkeys = slices.Clone(l.base.Nkeys)
	o.LeafNode.Remotes = nil
	ids := make([]fed.AdminID, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p := peers[id]
		o.Accounts = append(o.Accounts, l.accounts[accountOf(id)])
		o.Nkeys = append(o.Nkeys, p.user)
		if p.nkeyUser != nil {
			o.Nkeys = append(o.Nkeys, p.nkeyUser)
		}
		if p.remote != nil {
			o.LeafNode.Remotes = append(o.LeafNode.Remotes, p.remote)
		}
	}
	return &o
}

// SetPeers implements fed.Link.
func (l *Link) SetPeers(list []fed.LinkPeer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := map[fed.AdminID]*peerLink{}
	var added []*peerLink
	var removed []*peerLink
	// Peering refuses them already; a second peer with the same key or
	// certificate would get the first one's link.
	seen := map[string]fed.AdminID{}
	for _, lp := range list {
		if !lp.ID.Valid() || lp.ID == l.self {
			continue
		}
		if other, dup := seen[lp.Nkey]; dup {
			l.log.Error("federation peer left out: its NATS key is another peer's", "peer", lp.ID, "other", other)
			continue
		}
		if other, dup := seen[lp.TLSPin]; dup {
			l.log.Error("federation peer left out: its certificate is another peer's", "peer", lp.ID, "other", other)
			continue
		}
		seen[lp.Nkey], seen[lp.TLSPin] = lp.ID, lp.ID
		if old, ok := l.peers[lp.ID]; ok && old.LinkPeer.Endpoint == lp.Endpoint && old.TLSPin == lp.TLSPin && old.Nkey == lp.Nkey {
			old.meta.Store(&lp.Peer)
			next[lp.ID] = old
			continue
		}
		if old, ok := l.peers[lp.ID]; ok {
			removed = append(removed, old) // changed: down and up again
		}
		p, err := l.newPeer(lp)
		if err != nil {
			return err
		}
		next[lp.ID] = p
		added = append(added, p)
	}
	for id, p := range l.peers {
		if _, ok := next[id]; !ok {
			removed = append(removed, p)
		}
	}
	// Accepted links of removed peers, found before their account goes.
	var kick []uint64
	for _, p := range removed {
		if p.nc != nil {
			p.nc.Close()
		}
		p.up.Store(false)
		if lz, err := l.ns.Leafz(&server.LeafzOptions{Account: accountOf(p.ID)}); err == nil {
			for _, li := range lz.Leafs {
				kick = append(kick, li.ID)
			}
		}
	}
	pins := map[string]bool{}
	for _, p := range next {
		if p.nkeyUser != nil {
			pins[p.TLSPin] = true
		}
	}
	l.pins.Store(&pins)
	if err := l.ns.ReloadOptions(l.options(next)); err != nil {
		return fmt.Errorf("cluster: federation: reload: %w", err)
	}
	for _, id := range kick {
		l.ns.DisconnectClientByID(id)
	}
	for _, p := range removed {
		if _, again := next[p.ID]; !again {
			delete(l.accounts, accountOf(p.ID))
			l.log.Info("federation link closed: peer removed", "peer", p.ID)
		}
	}
	l.peers = next
	for _, p := range added {
		if err := l.connect(p); err != nil {
			return err
		}
	}
	return nil
}

func (l *Link) newPeer(lp fed.LinkPeer) (*peerLink, error) {
	name := accountOf(lp.ID)
	acc, ok := l.accounts[name]
	if !ok {
		acc = server.NewAccount(name)
		l.accounts[name] = acc
	}
	p := &peerLink{LinkPeer: lp, inflight: make(chan struct{}, l.maxInFlight), serving: make(chan struct{}, l.maxServing)}
	p.meta.Store(&lp.Peer)
	var err error
	if p.user, p.auth, err = inProcessUser(acc); err != nil {
		return nil, err
	}
	dials, route := l.dials(lp)
	p.dials = dials
	if !route {
		return p, nil
	}
	us, them := string(l.self), string(lp.ID)
	if dials {
		u, err := url.Parse("nats-leaf://" + lp.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("cluster: federation: endpoint of %s: %w", lp.ID, err)
		}
		p.remote = &server.RemoteLeafOpts{URLs: []*url.URL{u}, LocalAccount: name, Nkey: l.seed,
			TLS: true, TLSHandshakeFirst: true, TLSTimeout: 2, IgnoreDiscoveredServers: true,
			Compression: server.CompressionOpts{Mode: server.CompressionOff},
			TLSConfig: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{l.cert},
				// Self-signed: the pin is the whole check.
				InsecureSkipVerify: true, VerifyPeerCertificate: verifyPin(lp.TLSPin)}}
	} else if l.leafPort != 0 {
		p.nkeyUser = &server.NkeyUser{Nkey: lp.Nkey, Account: acc,
			AllowedConnectionTypes: map[string]struct{}{"LEAFNODE": {}},
			Permissions: &server.Permissions{
				// What the peer may send us, and what it may receive.
				Publish:   &server.SubjectPermission{Allow: []string{"fed." + us + ".>", "_INBOX_" + us + ".>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"fed." + them + ".>", "_INBOX_" + them + ".>"}},
			}}
	}
	return p, nil
}

// connect opens this node's in-process connection into the peer's
// account and subscribes to what is addressed to us.
func (l *Link) connect(p *peerLink) error {
	nc, err := nats.Connect("", nats.InProcessServer(l.ns), p.auth,
		nats.Name("relais-fed-"+string(p.ID)), nats.CustomInboxPrefix("_INBOX_"+string(l.self)),
		nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("cluster: federation: connect for %s: %w", p.ID, err)
	}
	p.nc = nc
	if _, err := nc.Subscribe("fed."+string(l.self)+".>", func(m *nats.Msg) { l.serve(p, m) }); err != nil {
		nc.Close()
		return fmt.Errorf("cluster: federation: subscribe for %s: %w", p.ID, err)
	}
	return nc.Flush()
}

// serve handles one message from peer p.
func (l *Link) serve(p *peerLink, m *nats.Msg) {
	p.lastContact.Store(time.Now().UnixMilli())
	rest := strings.TrimPrefix(m.Subject, "fed."+string(l.self)+".")
	kind, op, ok := strings.Cut(rest, ".")
	isReq := kind == "req"
	if !ok || (kind != "req" && kind != "push") || !opRe(op) {
		l.log.Warn("federation frame refused: bad subject", "peer", p.ID, "subject", m.Subject)
		return
	}
	if isReq && !strings.HasPrefix(m.Reply, "_INBOX_"+string(p.ID)+".") {
		l.log.Warn("federation request refused: reply subject outside the peer's inbox", "peer", p.ID, "op", op)
		return
	}
	reply := func(body []byte, code, reason string) {
		if !isReq {
			return
		}
		msg := &nats.Msg{Subject: m.Reply, Data: body, Header: nats.Header{}}
		if code != "" {
			msg.Header.Set(errHeader, code)
			msg.Header.Set(reasonHeader, reason)
		}
		p.nc.PublishMsg(msg)
	}
	if len(m.Data) > MaxFrame {
		l.log.Warn("federation frame refused: too large", "peer", p.ID, "op", op, "bytes", len(m.Data))
		reply(nil, proto.CodeTooLarge, "frame over "+strconv.Itoa(MaxFrame)+" bytes")
		return
	}
	l.hmu.RLock()
	h := l.handler[op]
	l.hmu.RUnlock()
	if h == nil {
		reply(nil, proto.CodeUnknownType, "unknown operation "+op)
		return
	}
	select {
	case p.serving <- struct{}{}:
	default:
		l.log.Warn("federation frame dropped: too many in progress", "peer", p.ID, "op", op)
		reply(nil, proto.CodeUnavailable, "too many requests in progress")
		return
	}
	go func() {
		defer func() { <-p.serving }()
		ctx, cancel := context.WithTimeout(context.Background(), HandlerTimeout)
		defer cancel()
		out, err := h(ctx, p.ID, m.Data)
		if err != nil {
			var re *fed.RemoteError
			if errors.As(err, &re) {
				reply(nil, re.Code, re.Reason)
				return
			}
			if pe := proto.AsError(err); pe != nil {
				reply(nil, pe.Code, pe.Message)
				return
			}
			l.log.Error("federation handler failed", "peer", p.ID, "op", op, "err", err)
			reply(nil, proto.CodeInternal, "internal error")
			return
		}
		if len(out) > MaxFrame {
			l.log.Error("federation answer too large", "peer", p.ID, "op", op, "bytes", len(out))
			reply(nil, proto.CodeTooLarge, "answer too large")
			return
		}
		reply(out, "", "")
	}()
}

func opRe(op string) bool {
	if op == "" || len(op) > 64 {
		return false
	}
	for _, c := range op {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

func (l *Link) peer(id fed.AdminID) *peerLink {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peers[id]
}

// Request implements fed.Transport.
func (l *Link) Request(ctx context.Context, to fed.AdminID, op string, body []byte) ([]byte, error) {
	if !opRe(op) {
		return nil, fmt.Errorf("cluster: federation: bad operation %q", op)
	}
	if len(body) > MaxFrame {
		return nil, proto.Errorf(proto.CodeTooLarge, "federation request over %d bytes", MaxFrame)
	}
	p := l.peer(to)
	if p == nil || p.nc == nil || !p.up.Load() {
		return nil, fmt.Errorf("%w: %s: no link", fed.ErrUnreachable, to)
	}
	select {
	case p.inflight <- struct{}{}:
	default:
		return nil, fmt.Errorf("%w: %s: %d requests already waiting", fed.ErrUnreachable, to, cap(p.inflight))
	}
	defer func() { <-p.inflight }()
	p.pending.Add(1)
	defer p.pending.Add(-1)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	m, err := p.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "fed." + string(to) + ".req." + op, Data: body})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", fed.ErrUnreachable, to, err)
	}
	p.lastContact.Store(time.Now().UnixMilli())
	if code := m.Header.Get(errHeader); code != "" {
		return nil, &fed.RemoteError{Code: code, Reason: m.Header.Get(reasonHeader)}
	}
	if len(m.Data) > MaxFrame {
		return nil, fmt.Errorf("%w: %s: answer over %d bytes", fed.ErrUnreachable, to, MaxFrame)
	}
	return m.Data, nil
}

// Push implements fed.Transport.
func (l *Link) Push(to fed.AdminID, op string, body []byte) error {
	if !opRe(op) {
		return fmt.Errorf("cluster: federation: bad operation %q", op)
	}
	if len(body) > MaxFrame {
		return proto.Errorf(proto.CodeTooLarge, "federation push over %d bytes", MaxFrame)
	}
	p := l.peer(to)
	if p == nil || p.nc == nil || !p.up.Load() {
		return fmt.Errorf("%w: %s: no link", fed.ErrUnreachable, to)
	}
	// Publishing only buffers: a dead peer's link never blocks the caller.
	if err := p.nc.Publish("fed."+string(to)+".push."+op, body); err != nil {
		return fmt.Errorf("%w: %s: %v", fed.ErrUnreachable, to, err)
	}
	return nil
}

// Handle implements fed.Transport.
func (l *Link) Handle(op string, h fed.Handler) {
	l.hmu.Lock()
	l.handler[op] = h
	l.hmu.Unlock()
}

// OnLinkUp implements fed.Transport.
func (l *Link) OnLinkUp(f func(fed.AdminID)) {
	l.hmu.Lock()
	l.onUp = append(l.onUp, f)
	l.hmu.Unlock()
}

// Status implements fed.Link.
func (l *Link) Status() []fed.LinkStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]fed.LinkStatus, 0, len(l.peers))
	for _, p := range l.peers {
		st := fed.LinkStatus{ID: p.ID, Dials: p.dials, Pending: int(p.pending.Load()), State: fed.LinkDown}
		if p.up.Load() {
			st.State = fed.LinkUp
		} else if p.remote == nil && p.nkeyUser == nil {
			st.State = fed.LinkNoRoute
		}
		if ms := p.lastContact.Load(); ms != 0 {
			st.LastContact = time.UnixMilli(ms).UTC()
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b fed.LinkStatus) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// monitorEvery is how often link states are read from the server.
const monitorEvery = 250 * time.Millisecond

// monitor follows the leaf connections of every peer's account and calls
// the OnLinkUp functions when one comes up.
func (l *Link) monitor() {
	defer close(l.done)
	t := time.NewTicker(monitorEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		lz, err := l.ns.Leafz(nil)
		if err != nil {
			continue
		}
		up := map[string]bool{}
		for _, li := range lz.Leafs {
			up[li.Account] = true
		}
		l.mu.Lock()
		var came []fed.AdminID
		for id, p := range l.peers {
			now := up[accountOf(id)] && p.nc != nil
			if was := p.up.Swap(now); now && !was {
				p.lastContact.Store(time.Now().UnixMilli())
				came = append(came, id)
				l.log.Info("federation link up", "peer", id)
			} else if was && !now {
				l.log.Warn("federation link down", "peer", id)
			}
		}
		l.mu.Unlock()
		l.hmu.RLock()
		fs := slices.Clone(l.onUp)
		l.hmu.RUnlock()
		for _, id := range came {
			for _, f := range fs {
				go f(id)
			}
		}
	}
}

// close stops the monitor and the peers' connections; the server is shut
// down by the bus.
func (l *Link) close() {
	if l.ns == nil {
		return
	}
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.peers {
		if p.nc != nil {
			p.nc.Close()
		}
	}
}

// Peer implements fed.Peers.
func (l *Link) Peer(id fed.AdminID) (fed.Peer, bool) {
	if p := l.peer(id); p != nil {
		return *p.meta.Load(), true
	}
	return fed.Peer{}, false
}

// ByDomain implements fed.Peers: an exact domain, or a *.parent pattern
// the domain is below.
func (l *Link) ByDomain(domain string) (fed.Peer, bool) {
	domain = strings.ToLower(domain)
	for _, p := range l.List() {
		for _, d := range p.Domains {
			if d == domain || (strings.HasPrefix(d, "*.") && strings.HasSuffix(domain, d[1:])) {
				return p, true
			}
		}
	}
	return fed.Peer{}, false
}

// ByNode implements fed.Peers.
func (l *Link) ByNode(node string) (fed.Peer, bool) {
	for _, p := range l.List() {
		if slices.Contains(p.Nodes, node) {
			return p, true
		}
	}
	return fed.Peer{}, false
}

// List implements fed.Peers.
func (l *Link) List() []fed.Peer {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]fed.Peer, 0, len(l.peers))
	for _, p := range l.peers {
		out = append(out, *p.meta.Load())
	}
	slices.SortFunc(out, func(a, b fed.Peer) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

func spkiPin(der []byte) (string, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "", fmt.Errorf("bad certificate: %w", err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:]), nil
}

// inProcessUser makes a user of acc that only in-process connections may
// be, authenticated by a key that never leaves memory.
func inProcessUser(acc *server.Account) (*server.NkeyUser, nats.Option, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: in-process key: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: in-process key: %w", err)
	}
	return &server.NkeyUser{Nkey: pub, Account: acc, AllowedConnectionTypes: map[string]struct{}{"IN_PROCESS": {}}},
		nats.Nkey(pub, kp.Sign), nil
}
