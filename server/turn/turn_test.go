package turn_test

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	pion "github.com/pion/turn/v4"

	"relais/cluster/nodetest"
	"relais/server/turn"
)

// clock is a settable clock for credential expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func loopback(t *testing.T) []*net.IPNet {
	_, n, err := net.ParseCIDR("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	return []*net.IPNet{n}
}

// start runs a relay on loopback with cfg's limits.
func start(t *testing.T, cfg turn.Config) *turn.Server {
	t.Helper()
	cfg.Listen, cfg.Host = "127.0.0.1:0", "127.0.0.1"
	if cfg.SecretFile == "" {
		cfg.SecretFile = filepath.Join(t.TempDir(), "turn", "secret")
	}
	cfg.Logger = nodetest.Logger(t)
	s, err := turn.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// allocate runs a real pion client against the relay and asks for a UDP
// allocation with the given credentials.
func allocate(t *testing.T, s *turn.Server, username, password string) (net.PacketConn, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pion.NewClient(&pion.ClientConfig{
		STUNServerAddr: s.Addr().String(), TURNServerAddr: s.Addr().String(),
		Username: username, Password: password, Realm: turn.Realm, Conn: conn, RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	return c.Allocate()
}

// peer is a UDP socket the relay sends to, counting what arrives.
type peer struct {
	conn net.PacketConn
	mu   sync.Mutex
	got  [][]byte
	from net.Addr
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &peer{conn: conn}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.got, p.from = append(p.got, bytes.Clone(buf[:n])), from
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *peer) count() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.got) }

// TestCallTURNRelaysWithTheNodesCredentials: credentials minted by the
// node allocate a relay that carries packets both ways, and the relay
// counts the bytes.
func TestCallTURNRelaysWithTheNodesCredentials(t *testing.T) {
	s := start(t, turn.Config{AllowPeers: loopback(t)})
	cr := s.Credentials("u-nabcdefgh-abcdefghijklmnop")
	if len(cr.URLs) != 2 || cr.TTL != 3600 {
		t.Fatalf("credentials %+v", cr)
	}
	relay, err := allocate(t, s, cr.Username, cr.Credential)
	if err != nil {
		t.Fatalf("allocation refused: %v", err)
	}
	p := newPeer(t)
	if _, err := relay.WriteTo([]byte("bonjour"), p.conn.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	nodetest.CheckFor(t, 10*time.Second, func() error {
		if p.count() == 0 {
			return fmt.Errorf("nothing relayed to the peer")
		}
		return nil
	})
	p.mu.Lock()
	back := p.from
	p.mu.Unlock()
	if _, err := p.conn.WriteTo([]byte("retour"), back); err != nil {
		t.Fatal(err)
	}
	relay.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	n, _, err := relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "retour" {
		t.Fatalf("relayed back %q, %v", buf[:n], err)
	}
	if st := s.Stats(); st.RelayedBytes < uint64(len("bonjour")+len("retour")) || st.Allocations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCallTURNRefusesExpiredAndForgedCredentials: the relay allocates
// only for credentials the node minted and that have not expired —
// whatever the username claims.
func TestCallTURNRefusesExpiredAndForgedCredentials(t *testing.T) {
	clk := &clock{t: time.Now()}
	s := start(t, turn.Config{AllowPeers: loopback(t), TTL: 10 * time.Minute, Now: clk.now})
	user := "u-nabcdefgh-abcdefghijklmnop"
	expired := s.Credentials(user)
	other := []byte("0123456789abcdef0123456789abcdef")
	far := strconv.FormatInt(time.Now().Add(365*24*time.Hour).Unix(), 10) + ":" + user
	clk.add(11 * time.Minute)
	fresh := s.Credentials(user)
	for _, c := range []struct{ name, username, password string }{
		{"expired", expired.Username, expired.Credential},
		{"another secret's password", fresh.Username, turn.Password(other, fresh.Username)},
		{"a password of another username", fresh.Username, turn.Password(other, far)},
		{"a lifetime the node never gives", far, turn.Password(other, far)},
		{"no expiry", user, turn.Password(other, user)},
		{"right password, other user", fresh.Username[:len(fresh.Username)-1] + "q", fresh.Credential},
	} {
		if _, err := allocate(t, s, c.username, c.password); err == nil {
			t.Errorf("%s: allocated", c.name)
		}
	}
	if _, err := allocate(t, s, fresh.Username, fresh.Credential); err != nil {
		t.Fatalf("fresh credentials refused: %v", err)
	}
}

// TestCallTURNRefusesRestrictedPeers: without the operator's leave the
// relay reaches no loopback, private, link-local or multicast address,
// and on its own address only other allocations — not a service that
// listens there.
func TestCallTURNRefusesRestrictedPeers(t *testing.T) {
	s := start(t, turn.Config{})
	cr := s.Credentials("u-nabcdefgh-abcdefghijklmnop")
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := pion.NewClient(&pion.ClientConfig{STUNServerAddr: s.Addr().String(), TURNServerAddr: s.Addr().String(),
		Username: cr.Username, Password: cr.Credential, Realm: turn.Realm, Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.1.1", "224.0.0.251", "100.64.0.1", "0.0.0.1", "127.0.0.2"} {
		if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 9}); err == nil {
			t.Errorf("permission to %s granted", ip)
		}
	}
	// A service on the relay's own address: permitted by IP (another
	// allocation could be there), dropped by port.
	svc := newPeer(t)
	if _, err := relay.WriteTo([]byte("intrusion"), svc.conn.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	nodetest.CheckFor(t, 10*time.Second, func() error {
		if s.Stats().DroppedBytes < uint64(len("intrusion")) {
			return fmt.Errorf("not dropped yet: %+v", s.Stats())
		}
		return nil
	})
	if svc.count() != 0 {
		t.Fatal("the relay sent to a service on its own address")
	}
	for _, ip := range []string{"10.1.2.3", "192.168.1.1", "fe80::1", "ff02::1", "::1", "fc00::1", "64:ff9b::1.2.3.4"} {
		if !turn.Restricted(net.ParseIP(ip)) {
			t.Errorf("%s not restricted", ip)
		}
	}
	for _, ip := range []string{"8.8.8.8", "2a01:e0a::1", "193.51.24.1"} {
		if turn.Restricted(net.ParseIP(ip)) {
			t.Errorf("%s restricted", ip)
		}
	}
}

// TestCallTURNLimitsAllocationsAndBandwidth: a user gets at most
// MaxUserAllocations relays at once, and past the per-user bandwidth the
// relay drops packets.
func TestCallTURNLimitsAllocationsAndBandwidth(t *testing.T) {
	s := start(t, turn.Config{AllowPeers: loopback(t), MaxUserAllocations: 2, UserBandwidth: 20_000})
	cr := s.Credentials("u-nabcdefgh-abcdefghijklmnop")
	var relays []net.PacketConn
	for i := range 2 {
		r, err := allocate(t, s, cr.Username, cr.Credential)
		if err != nil {
			t.Fatalf("allocation %d refused: %v", i+1, err)
		}
		relays = append(relays, r)
	}
	if _, err := allocate(t, s, cr.Username, cr.Credential); err == nil {
		t.Fatal("a third allocation of the user was granted")
	}
	if _, err := allocate(t, s, s.Credentials("u-nabcdefgh-otheruserabcdefg").Username, s.Credentials("u-nabcdefgh-otheruserabcdefg").Credential); err != nil {
		t.Fatalf("another user's allocation refused: %v", err)
	}
	p := newPeer(t)
	packet := bytes.Repeat([]byte{7}, 1000)
	const sent = 100 // 100 KB at once, for a budget of 20 KB/s
	for range sent {
		relays[0].WriteTo(packet, p.conn.LocalAddr())
	}
	nodetest.CheckFor(t, 10*time.Second, func() error {
		// UDP may lose some on the way in; half of them is plenty.
		if st := s.Stats(); st.DroppedBytes+st.RelayedBytes < sent*1000/2 {
			return fmt.Errorf("%+v of %d bytes", st, sent*1000)
		}
		return nil
	})
	if st := s.Stats(); st.DroppedBytes == 0 || st.RelayedBytes > 50_000 {
		t.Fatalf("over the bandwidth: %+v", st)
	}
}
