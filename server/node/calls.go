package node

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"relais/server/config"
	"relais/server/turn"
	"relais/server/ws"
)

// startTURN starts the embedded TURN relay of calls unless --turn off.
// A relay that cannot start (its port taken, no address to announce) is
// logged and the node serves without it: calls then connect only where
// the peers reach each other, and the node answers turn unavailable.
func (n *Node) startTURN(cfg config.Config) ws.TURNIssuer {
	if !cfg.TURN {
		return nil
	}
	tc, err := turnConfig(cfg, n.url)
	if err == nil {
		tc.Logger = n.log
		n.TURN, err = turn.Start(tc)
	}
	if err != nil {
		n.log.Error("the TURN relay of calls did not start: calls will have no relay", "listen", cfg.TURNListen, "err", err)
		return nil
	}
	return n.TURN
}

// turnConfig derives the relay's settings: the address announced for
// relayed transports is --turn-public-ip, else the --turn-listen host,
// else the address this machine reaches the outside from; clients reach
// the relay at --turn-public-ip, else the public URL's host.
func turnConfig(cfg config.Config, publicURL string) (turn.Config, error) {
	tc := turn.Config{Listen: cfg.TURNListen, SecretFile: filepath.Join(cfg.Data, "turn", "secret"), TTL: time.Duration(cfg.TURNTTL),
		UserBandwidth: cfg.TURNUserBandwidth, TotalBandwidth: cfg.TURNTotalBandwidth}
	host, _, err := net.SplitHostPort(cfg.TURNListen)
	if err != nil {
		return tc, fmt.Errorf("--turn-listen %q: %w", cfg.TURNListen, err)
	}
	if cfg.TURNPublicIP != "" {
		if tc.RelayIP = net.ParseIP(cfg.TURNPublicIP); tc.RelayIP == nil {
			return tc, fmt.Errorf("--turn-public-ip %q is not an IP address", cfg.TURNPublicIP)
		}
	} else if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		tc.RelayIP = ip
	} else if tc.RelayIP = outboundIP(); tc.RelayIP == nil {
		return tc, fmt.Errorf("no address to announce for relayed calls: set --turn-public-ip")
	}
	for _, c := range cfg.TURNAllowPeers {
		_, nw, err := net.ParseCIDR(c)
		if err != nil {
			return tc, fmt.Errorf("--turn-allow-peers %q: %w", c, err)
		}
		tc.AllowPeers = append(tc.AllowPeers, nw)
	}
	switch {
	case cfg.TURNPublicIP != "":
		tc.Host = cfg.TURNPublicIP
	default:
		if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
			tc.Host = u.Hostname()
		} else {
			tc.Host = tc.RelayIP.String()
		}
	}
	return tc, nil
}

// outboundIP is the local address of the route to the outside; dialling
// UDP sends nothing.
func outboundIP() net.IP {
	c, err := net.Dial("udp", "192.0.2.1:9")
	if err != nil {
		return nil
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP
}
