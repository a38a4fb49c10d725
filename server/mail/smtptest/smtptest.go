// Package smtptest runs an in-process SMTP server for tests.
//
// [Start] listens on 127.0.0.1 on a port the system chooses and serves
// EHLO/HELO, STARTTLS (optional, with a certificate it generates; trust it
// with [Server.RootCAs]), implicit TLS (optional), AUTH PLAIN (optional),
// MAIL FROM, RCPT TO, DATA (with dot-unstuffing), RSET, NOOP and QUIT. It
// stores every message it accepts, parsed with net/mail and with its body
// decoded, and [Server.WaitMessage] blocks until one arrives for a given
// recipient. The server stops when the test ends.
package smtptest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// MaxMessage is the largest message DATA accepts, in bytes.
const MaxMessage = 10 << 20

// Option configures a Server.
type Option func(*config)

type config struct {
	startTLS    bool
	implicitTLS bool
	user, pass  string
	auth        bool
}

// WithStartTLS makes the server offer STARTTLS.
func WithStartTLS() Option { return func(c *config) { c.startTLS = true } }

// WithImplicitTLS makes the server speak TLS from the first byte, like a
// relay on port 465.
func WithImplicitTLS() Option { return func(c *config) { c.implicitTLS = true } }

// WithAuth makes the server offer AUTH PLAIN (after STARTTLS when the
// server offers it), accept only username and password, and refuse MAIL
// before a successful AUTH.
func WithAuth(username, password string) Option {
	return func(c *config) { c.auth, c.user, c.pass = true, username, password }
}

// Received is one message the server accepted.
type Received struct {
	From    string      // MAIL FROM address
	To      []string    // RCPT TO addresses, in order
	Header  mail.Header // parsed headers
	Subject string      // Subject, RFC 2047 words decoded
	Text    string      // body, transfer encoding decoded, LF line endings
	Raw     []byte      // the message as received, dot-unstuffed, LF line endings
	TLS     bool        // whether the session was encrypted
	User    string      // the authenticated user, if any
}

// Server is a running test SMTP server.
type Server struct {
	// Addr is the listening address, "127.0.0.1:port".
	Addr string
	// Host is "127.0.0.1" and Port the listening port, for SMTP clients
	// configured with both.
	Host string
	Port int

	cfg    config
	ln     net.Listener
	tls    *tls.Config
	roots  *x509.CertPool
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	msgs   []Received
	cursor map[string]int // recipient → index after the last message WaitMessage returned
	added  chan struct{}  // closed and replaced whenever a message is stored
}

// Start starts a server on 127.0.0.1:0; it is stopped by t.Cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	tlsConfig, roots, err := newCertificates()
	if err != nil {
		t.Fatalf("smtptest: certificates: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	if cfg.implicitTLS {
		ln = tls.NewListener(ln, tlsConfig)
	}
	addr := ln.Addr().(*net.TCPAddr)
	s := &Server{
		Addr:   addr.String(),
		Host:   addr.IP.String(),
		Port:   addr.Port,
		cfg:    cfg,
		ln:     ln,
		tls:    tlsConfig,
		roots:  roots,
		conns:  map[net.Conn]struct{}{},
		cursor: map[string]int{},
		added:  make(chan struct{}),
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// RootCAs returns a pool holding the CA that signed the server's
// certificate (valid for 127.0.0.1, ::1 and localhost).
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// ClientTLSConfig returns a client configuration that trusts the server.
func (s *Server) ClientTLSConfig() *tls.Config { return &tls.Config{RootCAs: s.roots} }

// Close stops the server and waits for its goroutines. It is called by
// t.Cleanup and is safe to call more than once, for example to simulate a
// relay going down.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Messages returns every message received so far, oldest first.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// WaitMessage returns the oldest message for recipient to (compared
// without regard to case) that it has not returned before, waiting for one
// to arrive until ctx is done.
func (s *Server) WaitMessage(ctx context.Context, to string) (Received, error) {
	key := strings.ToLower(to)
	for {
		s.mu.Lock()
		for i := s.cursor[key]; i < len(s.msgs); i++ {
			for _, rcpt := range s.msgs[i].To {
				if strings.ToLower(rcpt) == key {
					s.cursor[key] = i + 1
					m := s.msgs[i]
					s.mu.Unlock()
					return m, nil
				}
			}
		}
		added := s.added
		s.mu.Unlock()
		select {
		case <-added:
		case <-ctx.Done():
			return Received{}, fmt.Errorf("smtptest: no message for %s: %w", to, ctx.Err())
		}
	}
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.handle(c)
		}()
	}
}

// session is the state of one SMTP connection.
type session struct {
	s     *Server
	conn  net.Conn
	tp    *textproto.Conn
	tls   bool
	hello bool
	user  string
	inTx  bool // MAIL accepted
	from  string
	to    []string
}

// handle runs one SMTP session on c.
func (s *Server) handle(c net.Conn) {
	ss := &session{s: s, conn: c, tp: textproto.NewConn(c), tls: s.cfg.implicitTLS}
	if err := ss.reply(220, "127.0.0.1 smtptest ESMTP ready"); err != nil {
		return
	}
	for {
		c.SetDeadline(time.Now().Add(time.Minute))
		line, err := ss.tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		var quit bool
		switch strings.ToUpper(verb) {
		case "EHLO":
			err = ss.ehlo(arg)
		case "HELO":
			ss.reset()
			ss.hello = true
			err = ss.reply(250, "127.0.0.1 greets "+arg)
		case "STARTTLS":
			err = ss.startTLS()
		case "AUTH":
			err = ss.auth(arg)
		case "MAIL":
			err = ss.mail(arg)
		case "RCPT":
			err = ss.rcpt(arg)
		case "DATA":
			err = ss.data()
		case "RSET":
			ss.reset()
			err = ss.reply(250, "2.0.0 OK")
		case "NOOP":
			err = ss.reply(250, "2.0.0 OK")
		case "QUIT":
			ss.reply(221, "2.0.0 Bye")
			quit = true
		default:
			err = ss.reply(502, "5.5.2 Command not recognized")
		}
		if err != nil || quit {
			return
		}
	}
}

func (ss *session) reply(code int, lines ...string) error {
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		if err := ss.tp.PrintfLine("%d%s%s", code, sep, l); err != nil {
			return err
		}
	}
	return nil
}

func (ss *session) reset() { ss.inTx, ss.from, ss.to = false, "", nil }

func (ss *session) offersAuth() bool {
	return ss.s.cfg.auth && (ss.tls || !ss.s.cfg.startTLS)
}

func (ss *session) ehlo(arg string) error {
	if arg == "" {
		return ss.reply(501, "5.5.4 EHLO needs a domain")
	}
	ss.reset()
	ss.hello = true
	lines := []string{"127.0.0.1 greets " + arg, "8BITMIME", "SIZE " + strconv.Itoa(MaxMessage)}
	if ss.s.cfg.startTLS && !ss.tls {
		lines = append(lines, "STARTTLS")
	}
	if ss.offersAuth() {
		lines = append(lines, "AUTH PLAIN")
	}
	return ss.reply(250, append(lines, "HELP")...)
}

func (ss *session) startTLS() error {
	if !ss.s.cfg.startTLS || ss.tls {
		return ss.reply(502, "5.5.1 STARTTLS not available")
	}
	if err := ss.reply(220, "2.0.0 Ready to start TLS"); err != nil {
		return err
	}
	tc := tls.Server(ss.conn, ss.s.tls)
	if err := tc.Handshake(); err != nil {
		return err
	}
	// RFC 3207: forget everything learnt before the handshake.
	ss.tp = textproto.NewConn(tc)
	ss.tls, ss.hello, ss.user = true, false, ""
	ss.reset()
	return nil
}

func (ss *session) auth(arg string) error {
	if !ss.offersAuth() {
		return ss.reply(503, "5.5.1 AUTH not available")
	}
	if ss.user != "" {
		return ss.reply(503, "5.5.1 Already authenticated")
	}
	mech, initial, _ := strings.Cut(arg, " ")
	if !strings.EqualFold(mech, "PLAIN") {
		return ss.reply(504, "5.5.4 Unrecognized authentication type")
	}
	if initial == "" {
		if err := ss.reply(334, ""); err != nil {
			return err
		}
		line, err := ss.tp.ReadLine()
		if err != nil {
			return err
		}
		if line == "*" {
			return ss.reply(501, "5.0.0 Authentication cancelled")
		}
		initial = line
	}
	raw, err := base64.StdEncoding.DecodeString(initial)
	if err != nil {
		return ss.reply(501, "5.5.2 Cannot decode response")
	}
	parts := bytes.Split(raw, []byte{0})
	if len(parts) != 3 {
		return ss.reply(501, "5.5.2 Malformed PLAIN response")
	}
	user, pass := string(parts[1]), string(parts[2])
	if user != ss.s.cfg.user || pass != ss.s.cfg.pass {
		return ss.reply(535, "5.7.8 Authentication credentials invalid")
	}
	ss.user = user
	return ss.reply(235, "2.7.0 Authentication successful")
}

// path extracts the address from "FROM:<addr> PARAMS" or "TO:<addr>".
func path(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	return rest[1:end], true
}

func (ss *session) mail(arg string) error {
	switch {
	case !ss.hello:
		return ss.reply(503, "5.5.1 Say EHLO first")
	case ss.s.cfg.auth && ss.user == "":
		return ss.reply(530, "5.7.0 Authentication required")
	case ss.inTx:
		return ss.reply(503, "5.5.1 Nested MAIL command")
	}
	from, ok := path(arg, "FROM:")
	if !ok {
		return ss.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
	}
	ss.inTx, ss.from = true, from
	return ss.reply(250, "2.1.0 OK")
}

func (ss *session) rcpt(arg string) error {
	if !ss.inTx {
		return ss.reply(503, "5.5.1 Need MAIL first")
	}
	to, ok := path(arg, "TO:")
	if !ok || to == "" {
		return ss.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
	}
	ss.to = append(ss.to, to)
	return ss.reply(250, "2.1.5 OK")
}

func (ss *session) data() error {
	if len(ss.to) == 0 {
		return ss.reply(503, "5.5.1 Need RCPT first")
	}
	if err := ss.reply(354, "End data with <CR><LF>.<CR><LF>"); err != nil {
		return err
	}
	dr := ss.tp.DotReader()
	raw, err := io.ReadAll(io.LimitReader(dr, MaxMessage+1))
	if err != nil {
		return err
	}
	if len(raw) > MaxMessage {
		if _, err := io.Copy(io.Discard, dr); err != nil {
			return err
		}
		ss.reset()
		return ss.reply(552, "5.3.4 Message too big")
	}
	m, err := parse(raw)
	if err != nil {
		ss.reset()
		return ss.reply(554, "5.6.0 "+err.Error())
	}
	m.From, m.To, m.TLS, m.User = ss.from, ss.to, ss.tls, ss.user
	ss.reset()
	ss.s.store(m)
	return ss.reply(250, "2.0.0 OK queued")
}

func (s *Server) store(m Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.added)
	s.added = make(chan struct{})
}

// parse reads a message and decodes its subject and body.
func parse(raw []byte) (Received, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Received{}, fmt.Errorf("malformed message: %v", err)
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return Received{}, fmt.Errorf("malformed subject: %v", err)
	}
	var body io.Reader = msg.Body
	switch cte := strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")); cte {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // skips line breaks
	case "", "7bit", "8bit", "binary":
	default:
		return Received{}, fmt.Errorf("unknown transfer encoding %q", cte)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		return Received{}, fmt.Errorf("malformed body: %v", err)
	}
	return Received{
		Header:  msg.Header,
		Subject: subject,
		Text:    strings.ReplaceAll(string(text), "\r\n", "\n"),
		Raw:     raw,
	}, nil
}

// newCertificates creates a CA and a server certificate for 127.0.0.1, ::1
// and localhost, valid for a day.
func newCertificates() (*tls.Config, *x509.CertPool, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
	return cfg, pool, nil
}
