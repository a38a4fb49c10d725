package turn

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	pion "github.com/pion/turn/v4"
)

// generator makes the relay sockets of allocations, wrapped to count and
// limit what they carry.
type generator struct {
	s      *Server
	static pion.RelayAddressGeneratorStatic
}

func (g *generator) Validate() error { return g.static.Validate() }

func (g *generator) AllocatePacketConn(network string, port int) (net.PacketConn, net.Addr, error) {
	c, addr, err := g.static.AllocatePacketConn(network, port)
	if err != nil {
		return nil, nil, err
	}
	rc := &relayConn{PacketConn: c, s: g.s, port: c.LocalAddr().(*net.UDPAddr).Port}
	g.s.mu.Lock()
	g.s.relays[rc.port] = rc
	g.s.mu.Unlock()
	return rc, addr, nil
}

// AllocateConn: TCP relaying (RFC 6062) is not offered; browsers relay
// over UDP allocations, reached over UDP or TCP.
func (g *generator) AllocateConn(network string, port int) (net.Conn, net.Addr, error) {
	return g.static.AllocateConn(network, port)
}

// relayConn is an allocation's relay socket. Bytes each way are charged to
// the whole relay's budget and its user's; over either, packets are
// dropped (UDP may lose them; the media adapts). Packets to the relay's
// own address go only to ports of live allocations.
type relayConn struct {
	net.PacketConn
	s    *Server
	port int
	user atomic.Pointer[byteBucket]
}

func (c *relayConn) charge(n int) bool {
	now := time.Now()
	if u := c.user.Load(); u != nil && !u.take(now, n) {
		return false
	}
	return c.s.total.take(now, n)
}

func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.charge(n) {
			if err == nil {
				c.s.relayed.Add(uint64(n))
			}
			return n, addr, err
		}
		c.s.dropped.Add(uint64(n))
	}
}

func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.s.mayReach(addr) || !c.charge(len(p)) {
		c.s.dropped.Add(uint64(len(p)))
		return len(p), nil
	}
	c.s.relayed.Add(uint64(len(p)))
	return c.PacketConn.WriteTo(p, addr)
}

func (c *relayConn) Close() error {
	c.s.mu.Lock()
	if c.s.relays[c.port] == c {
		delete(c.s.relays, c.port)
	}
	c.s.mu.Unlock()
	return c.PacketConn.Close()
}

// mayReach checks a destination once more at send time: permissions are
// per IP, and the relay's own IP is permitted only to reach another
// allocation of this relay, not whatever else listens on the machine.
func (s *Server) mayReach(addr net.Addr) bool {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return false
	}
	if ua.IP.Equal(s.cfg.RelayIP) && !s.allowed(ua.IP) {
		s.mu.Lock()
		_, live := s.relays[ua.Port]
		s.mu.Unlock()
		return live
	}
	return s.allowed(ua.IP)
}

// byteBucket is a token bucket of bytes: a second's worth of burst.
type byteBucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newByteBucket(perSecond int64) *byteBucket {
	return &byteBucket{rate: float64(perSecond), tokens: float64(perSecond)}
}

func (b *byteBucket) take(now time.Time, n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}
