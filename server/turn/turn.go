// Package turn is the node's embedded TURN relay (RFC 8656, pion/turn) for
// calls whose peers cannot reach each other directly. Credentials are
// short-lived, in the TURN REST scheme that coturn also uses: username
// "<expiry>:<user id>", password base64(HMAC-SHA1(secret, username)), the
// secret random and kept in the data directory, so that only the node
// mints them and only for its signed-in users (ws, frame "turn"). The relay
// bounds allocations per user, bandwidth per user and in all, and never
// relays to loopback, private, link-local or multicast addresses unless
// the operator allowed them.
package turn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	pion "github.com/pion/turn/v4"

	"relais/server/proto"
)

// Realm is the realm of the node's credentials.
const Realm = "relais"

// Config configures the relay.
type Config struct {
	// Listen is the address of the UDP and TCP listeners, e.g. ":3478".
	Listen string
	// Host is the name or address clients reach the relay at, in the
	// turn: URLs they are given.
	Host string
	// RelayIP is the address announced for relayed transports: the
	// node's public address behind NAT (--turn-public-ip), else the
	// address the relay sockets bind to.
	RelayIP net.IP
	// AllowPeers are ranges the relay may send to although they are
	// loopback, private, link-local or multicast (tests: 127.0.0.0/8).
	AllowPeers []*net.IPNet
	// SecretFile holds the credentials' secret; made if absent.
	SecretFile string
	// TTL is the credentials' lifetime (default 1 hour).
	TTL time.Duration
	// MaxUserAllocations bounds the live allocations of one user
	// (default 16: a mesh call of 8 over UDP and TCP).
	MaxUserAllocations int
	// UserBandwidth and TotalBandwidth bound relayed bytes per second of
	// one user and of the whole relay (defaults 512 KiB/s and 64 MiB/s:
	// an audio stream is ~8 KB/s, a video stream ~200 KB/s).
	UserBandwidth, TotalBandwidth int64
	Logger                        *slog.Logger
	// Now is the clock of credentials (tests of expiry).
	Now func() time.Time
}

// Server is a running relay.
type Server struct {
	cfg    Config
	secret []byte
	pion   *pion.Server
	udp    net.PacketConn
	tcp    net.Listener
	log    *slog.Logger

	total *byteBucket

	mu     sync.Mutex
	allocs map[string]int         // live allocations by user
	users  map[string]*byteBucket // bandwidth by user, while they have allocations
	relays map[int]*relayConn     // live relay sockets by port
	byAddr map[string]string      // allocation (client 5-tuple) → user

	relayed atomic.Uint64
	dropped atomic.Uint64
}

// Stats are the relay's counters.
type Stats struct {
	Allocations int
	// RelayedBytes counts payload bytes relayed between clients and
	// peers, both ways; DroppedBytes those dropped over a bandwidth limit
	// or towards a refused address.
	RelayedBytes, DroppedBytes uint64
}

// listenBoth binds UDP and TCP on addr. When the system picks the port
// (":0", tests), TCP takes the UDP one's, which another socket may hold
// already: then both are tried again on new ports.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	host, port, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("turn: listen on udp %s: %w", addr, err)
		}
		tcpAddr := addr
		if port == "0" {
			tcpAddr = net.JoinHostPort(host, strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port))
		}
		tcp, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if port != "0" || try == 20 {
			return nil, nil, fmt.Errorf("turn: listen on tcp %s: %w", tcpAddr, err)
		}
	}
}

// Start listens on cfg.Listen (UDP and TCP) and serves.
func Start(cfg Config) (*Server, error) {
	if cfg.TTL <= 0 {
		cfg.TTL = time.Hour
	}
	if cfg.MaxUserAllocations <= 0 {
		cfg.MaxUserAllocations = 16
	}
	if cfg.UserBandwidth <= 0 {
		cfg.UserBandwidth = 512 << 10
	}
	if cfg.TotalBandwidth <= 0 {
		cfg.TotalBandwidth = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	secret, err := loadSecret(cfg.SecretFile)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, secret: secret, log: cfg.Logger.With("component", "turn"),
		total:  newByteBucket(cfg.TotalBandwidth),
		allocs: map[string]int{}, users: map[string]*byteBucket{}, relays: map[int]*relayConn{}, byAddr: map[string]string{}}
	if s.udp, s.tcp, err = listenBoth(cfg.Listen); err != nil {
		return nil, err
	}
	bind := s.udp.LocalAddr().(*net.UDPAddr).IP
	if cfg.RelayIP == nil {
		if bind.IsUnspecified() {
			s.Close()
			return nil, errors.New("turn: listening on every address, the relay needs --turn-public-ip (the address peers reach it at)")
		}
		s.cfg.RelayIP = bind
	}
	gen := &generator{s: s, static: pion.RelayAddressGeneratorStatic{RelayAddress: s.cfg.RelayIP, Address: bind.String()}}
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = slogWriter{s.log}
	lf.DefaultLogLevel = logging.LogLevelWarn
	s.pion, err = pion.NewServer(pion.ServerConfig{
		Realm:             Realm,
		AuthHandler:       s.auth,
		QuotaHandler:      s.quota,
		EventHandler:      pion.EventHandler{OnAllocationCreated: s.created, OnAllocationDeleted: s.deleted},
		LoggerFactory:     lf,
		PacketConnConfigs: []pion.PacketConnConfig{{PacketConn: s.udp, RelayAddressGenerator: gen, PermissionHandler: s.permit}},
		ListenerConfigs:   []pion.ListenerConfig{{Listener: s.tcp, RelayAddressGenerator: gen, PermissionHandler: s.permit}},
	})
	if err != nil {
		s.udp.Close()
		s.tcp.Close()
		return nil, fmt.Errorf("turn: start: %w", err)
	}
	s.log.Info("TURN relay started", "listen", s.udp.LocalAddr().String(), "relay_ip", s.cfg.RelayIP.String(), "host", cfg.Host)
	return s, nil
}

// Close stops the relay and ends its allocations.
func (s *Server) Close() error {
	if s.pion != nil {
		return s.pion.Close()
	}
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	return nil
}

// Addr is the UDP address the relay listens on (the TCP one has the same
// port).
func (s *Server) Addr() net.Addr { return s.udp.LocalAddr() }

// Stats returns the relay's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := 0
	for _, k := range s.allocs {
		n += k
	}
	s.mu.Unlock()
	return Stats{Allocations: n, RelayedBytes: s.relayed.Load(), DroppedBytes: s.dropped.Load()}
}

// Credentials mints credentials for a user, valid for the TTL.
func (s *Server) Credentials(user string) proto.TURNCredentials {
	expiry := s.cfg.Now().Add(s.cfg.TTL).Unix()
	username := strconv.FormatInt(expiry, 10) + ":" + user
	port := strconv.Itoa(s.udp.LocalAddr().(*net.UDPAddr).Port)
	hp := net.JoinHostPort(s.cfg.Host, port)
	return proto.TURNCredentials{
		URLs:       []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"},
		Username:   username,
		Credential: Password(s.secret, username),
		TTL:        int(s.cfg.TTL / time.Second),
	}
}

// Password is the TURN REST password of a username under secret.
func Password(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	io.WriteString(m, username)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// userOf reads a username "<expiry>:<user>" and checks that it has not
// expired and does not claim a lifetime the node never gives.
func (s *Server) userOf(username string) (string, bool) {
	exp, user, ok := strings.Cut(username, ":")
	if !ok || user == "" {
		return "", false
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return "", false
	}
	now := s.cfg.Now()
	if now.Unix() > e || time.Unix(e, 0).After(now.Add(s.cfg.TTL+time.Minute)) {
		return "", false
	}
	return user, true
}

// auth is pion's long-term credential callback: the key of a username
// the node could have minted, now. A forged password fails pion's
// message-integrity check against this key.
func (s *Server) auth(username, realm string, src net.Addr) ([]byte, bool) {
	if realm != Realm {
		return nil, false
	}
	if _, ok := s.userOf(username); !ok {
		s.log.Debug("TURN credentials refused", "src", src.String())
		return nil, false
	}
	return pion.GenerateAuthKey(username, realm, Password(s.secret, username)), true
}

// quota refuses a user's allocation past MaxUserAllocations.
func (s *Server) quota(username, _ string, _ net.Addr) bool {
	user, ok := s.userOf(username)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allocs[user] < s.cfg.MaxUserAllocations
}

func (s *Server) created(src, dst net.Addr, protocol, username, _ string, relay net.Addr, _ int) {
	user, _ := s.userOf(username)
	if user == "" {
		// Allocated while valid, expired since: count it on its name.
		_, user, _ = strings.Cut(username, ":")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allocs[user]++
	b := s.users[user]
	if b == nil {
		b = newByteBucket(s.cfg.UserBandwidth)
		s.users[user] = b
	}
	s.byAddr[allocKey(src, dst, protocol)] = user
	if ua, ok := relay.(*net.UDPAddr); ok {
		if rc := s.relays[ua.Port]; rc != nil {
			rc.user.Store(b)
		}
	}
}

func (s *Server) deleted(src, dst net.Addr, protocol, _, _ string) {
	k := allocKey(src, dst, protocol)
	s.mu.Lock()
	defer s.mu.Unlock()
	user, ok := s.byAddr[k]
	if !ok {
		return
	}
	delete(s.byAddr, k)
	if s.allocs[user]--; s.allocs[user] <= 0 {
		delete(s.allocs, user)
		delete(s.users, user)
	}
}

func allocKey(src, dst net.Addr, protocol string) string {
	return protocol + " " + src.String() + " " + dst.String()
}

// permit decides which peers a client may relay to (CreatePermission,
// ChannelBind): public addresses, the relay's own (two allocations of
// this relay talking; relayConn checks the port), and what the operator
// allowed.
func (s *Server) permit(_ net.Addr, peer net.IP) bool {
	if peer.Equal(s.cfg.RelayIP) {
		return true
	}
	return s.allowed(peer)
}

func (s *Server) allowed(ip net.IP) bool {
	for _, n := range s.cfg.AllowPeers {
		if n.Contains(ip) {
			return true
		}
	}
	return !Restricted(ip)
}

// restricted are the ranges a relay must not reach unless allowed besides
// what net.IP's predicates say: "this network", carrier-grade NAT,
// IETF protocol assignments, benchmarking, reserved and broadcast, and
// IPv6 discard, NAT64 and site-local.
var restricted = func() []*net.IPNet {
	var out []*net.IPNet
	for _, c := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4",
		"100::/64", "64:ff9b::/96", "64:ff9b:1::/48", "fec0::/10", "2001:db8::/32"} {
		_, n, _ := net.ParseCIDR(c)
		out = append(out, n)
	}
	return out
}()

// Restricted reports whether ip is loopback, private, link-local,
// multicast, unspecified or otherwise not a public unicast address.
func Restricted(ip net.IP) bool {
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsGlobalUnicast() {
		return true
	}
	for _, n := range restricted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// loadSecret reads the credentials' secret, or makes one (32 random
// bytes, mode 0600).
func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("turn: read secret: %w", err)
	}
	b = make([]byte, 32)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("turn: secret directory: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("turn: write secret: %w", err)
	}
	return b, nil
}

// slogWriter passes pion's log lines to the node's logger.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}
