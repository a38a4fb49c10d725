// Package leaftest plays a hostile peer in tests of federation: a raw
// leaf-node client that speaks the NATS leaf protocol itself, so that it
// can send what a well-behaved server (which filters by the permissions
// the hub announces) never would.
package leaftest

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nkeys"
)

// RawLeaf is a leaf connection opened with a peer's key material.
type RawLeaf struct {
	conn net.Conn
	r    *bufio.Reader
	wmu  sync.Mutex
	msgs chan Msg
	done chan struct{}
	err  error
	errs []string
	mu   sync.Mutex
}

// Msg is a message the hub sent.
type Msg struct {
	Subject, Reply string
	Data           []byte
}

// DialRaw opens a leaf connection to endpoint as the node whose data
// directory is dataDir (its link certificate and NATS key, in
// dataDir/fed), TLS first, and authenticates with the nkey.
func DialRaw(endpoint, dataDir string) (*RawLeaf, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dataDir, "fed", "link.crt"), filepath.Join(dataDir, "fed", "link.key"))
	if err != nil {
		return nil, err
	}
	seed, err := os.ReadFile(filepath.Join(dataDir, "fed", "nats.nk"))
	if err != nil {
		return nil, err
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return nil, err
	}
	pub, _ := kp.PublicKey()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", endpoint,
		&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true})
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	l := &RawLeaf{conn: conn, r: bufio.NewReader(conn), msgs: make(chan Msg, 64), done: make(chan struct{})}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := l.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INFO ") {
		conn.Close()
		return nil, fmt.Errorf("no INFO from the hub: %q %v", line, err)
	}
	conn.SetReadDeadline(time.Time{})
	var info struct {
		Nonce string `json:"nonce"`
	}
	json.Unmarshal([]byte(strings.TrimPrefix(line, "INFO ")), &info)
	sig, err := kp.Sign([]byte(info.Nonce))
	if err != nil {
		conn.Close()
		return nil, err
	}
	connect, _ := json.Marshal(map[string]any{"nkey": pub, "sig": base64.RawURLEncoding.EncodeToString(sig),
		"name": "raw-leaf", "server_id": "NRAWLEAF", "headers": true, "protocol": 1})
	if err := l.write("CONNECT " + string(connect) + "\r\nPING\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	go l.read()
	return l, nil
}

func (l *RawLeaf) write(s string) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(l.conn, s)
	return err
}

func (l *RawLeaf) read() {
	defer close(l.done)
	for {
		line, err := l.r.ReadString('\n')
		if err != nil {
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch f := strings.Fields(line); {
		case len(f) == 0:
		case f[0] == "PING":
			l.write("PONG\r\n")
		case f[0] == "-ERR":
			l.mu.Lock()
			l.errs = append(l.errs, line)
			l.mu.Unlock()
		case (f[0] == "LMSG" || f[0] == "HMSG") && len(f) >= 3:
			n, _ := strconv.Atoi(f[len(f)-1])
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(l.r, buf); err != nil {
				return
			}
			m := Msg{Subject: f[1], Data: buf[:n]}
			if f[0] == "LMSG" && len(f) == 4 || f[0] == "HMSG" && len(f) == 5 {
				m.Reply = f[2]
			}
			if f[0] == "HMSG" {
				h, _ := strconv.Atoi(f[len(f)-2])
				m.Data = buf[h:n]
			}
			select {
			case l.msgs <- m:
			default:
			}
		}
	}
}

// Subscribe declares interest in subject on the hub.
func (l *RawLeaf) Subscribe(subject string) error { return l.write("LS+ " + subject + "\r\n") }

// Publish sends an LMSG straight onto the link, whatever the hub allows.
func (l *RawLeaf) Publish(subject, reply string, data []byte) error {
	r := ""
	if reply != "" {
		r = reply + " "
	}
	return l.write(fmt.Sprintf("LMSG %s %s%d\r\n%s\r\n", subject, r, len(data), data))
}

// Next returns the next message the hub sent, or an error if none came
// within d or the link closed.
func (l *RawLeaf) Next(d time.Duration) (Msg, error) {
	select {
	case m := <-l.msgs:
		return m, nil
	case <-l.done:
		return Msg{}, fmt.Errorf("link closed: %v %v", l.Err(), l.Errors())
	case <-time.After(d):
		return Msg{}, errors.New("no message")
	}
}

// Closed reports whether the hub closed the link.
func (l *RawLeaf) Closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Err is why reading stopped.
func (l *RawLeaf) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Errors are the -ERR lines the hub sent.
func (l *RawLeaf) Errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// Close closes the connection.
func (l *RawLeaf) Close() error { return l.conn.Close() }
