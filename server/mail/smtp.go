package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// Security modes of an SMTP relay connection.
const (
	// SecurityStartTLS connects in clear text and requires the STARTTLS
	// upgrade before anything else is sent (RFC 3207); a relay that does
	// not offer it is an error. The default, usually on port 587.
	SecurityStartTLS = "starttls"
	// SecurityTLS speaks TLS from the first byte (RFC 8314 implicit TLS),
	// usually on port 465.
	SecurityTLS = "tls"
	// SecurityNone sends in clear text. Allowed only when Host is a
	// loopback address, for a relay on the same machine.
	SecurityNone = "none"
)

// DefaultTimeout bounds one Send when SMTPConfig.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// SMTPConfig configures an SMTP relay.
type SMTPConfig struct {
	// Host is the relay's name or IP address. It is also the name its TLS
	// certificate is checked against (unless TLSConfig.ServerName is set).
	Host string
	// Port defaults to 587 for starttls, 465 for tls and 25 for none.
	Port int
	// Security is SecurityStartTLS (the default when empty), SecurityTLS
	// or SecurityNone.
	Security string
	// Username and Password, if Username is set, authenticate with AUTH
	// PLAIN, which net/smtp sends only over TLS or to localhost.
	Username string
	Password string
	// From is the sender, "no-reply@chat.mairie.fr" or with a display name,
	// "Relais Mairie de Lyon <no-reply@chat.mairie-lyon.fr>".
	From string
	// HelloName is the name given in EHLO; it defaults to "localhost".
	// Some relays want the node's public name.
	HelloName string
	// TLSConfig, optional, is cloned for the TLS connection: set RootCAs to
	// trust an internal relay's CA. Certificates are always verified.
	TLSConfig *tls.Config
	// Timeout bounds a whole Send (connection and exchange), in addition
	// to the context's deadline; DefaultTimeout when zero.
	Timeout time.Duration
}

// SMTP is a Sender that delivers through an SMTP relay, opening one
// connection per message. It is safe for concurrent use.
type SMTP struct {
	cfg     SMTPConfig
	addr    string // host:port
	from    sender
	tls     *tls.Config
	timeout time.Duration
}

var _ Sender = (*SMTP)(nil)

// NewSMTP checks cfg and returns a Sender for it. It does not connect.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, errors.New("mail: SMTP host is required")
	}
	if strings.ContainsAny(cfg.Host, " \t\r\n/[]") {
		return nil, errors.New("mail: SMTP host is not a host name or IP address")
	}
	switch cfg.Security {
	case "":
		cfg.Security = SecurityStartTLS
	case SecurityStartTLS, SecurityTLS:
	case SecurityNone:
		if !isLoopback(cfg.Host) {
			return nil, fmt.Errorf("mail: SMTP security %q is allowed only with a loopback host, not %q", SecurityNone, cfg.Host)
		}
	default:
		return nil, fmt.Errorf("mail: unknown SMTP security %q (want %q, %q or %q)", cfg.Security, SecurityStartTLS, SecurityTLS, SecurityNone)
	}
	if cfg.Port == 0 {
		cfg.Port = map[string]int{SecurityStartTLS: 587, SecurityTLS: 465, SecurityNone: 25}[cfg.Security]
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("mail: SMTP port %d out of range", cfg.Port)
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if err := checkHeader(cfg.HelloName, 255); err != nil || strings.ContainsAny(cfg.HelloName, " \t") {
		return nil, errors.New("mail: SMTP hello name must be one word")
	}
	if strings.ContainsAny(cfg.Username+cfg.Password, "\x00\r\n") {
		return nil, errors.New("mail: SMTP credentials contain a NUL or line break")
	}
	if cfg.From == "" {
		return nil, errors.New("mail: sender address (From) is required")
	}
	from, err := parseFrom(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: sender address (From): %w", err)
	}
	tc := &tls.Config{}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &SMTP{
		cfg:     cfg,
		addr:    net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		from:    from,
		tls:     tc,
		timeout: timeout,
	}, nil
}

// isLoopback reports whether host is "localhost" or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Send implements Sender.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	to, err := m.Validate()
	if err != nil {
		return err
	}
	data, err := build(s.from, to, m, time.Now())
	if err != nil {
		return err
	}
	return s.exchange(ctx, func(c *smtp.Client, step *string) error {
		*step = "MAIL FROM"
		if err := c.Mail(s.from.addr.String()); err != nil {
			return err
		}
		*step = "RCPT TO"
		if err := c.Rcpt(to.String()); err != nil {
			return err
		}
		*step = "DATA"
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		return w.Close()
	})
}

// Check connects, upgrades to TLS and authenticates exactly as Send does,
// then quits without sending anything: it proves the relay's settings
// (relais doctor). Its errors name the step that failed.
func (s *SMTP) Check(ctx context.Context) error {
	return s.exchange(ctx, func(*smtp.Client, *string) error { return nil })
}

// exchange opens a session with the relay (connection, TLS, EHLO,
// STARTTLS, AUTH), runs do in it and quits.
func (s *SMTP) exchange(ctx context.Context, do func(c *smtp.Client, step *string) error) (err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	step := "connect to " + s.addr
	defer func() {
		if err == nil {
			return
		}
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("mail: %s: %w: %w", step, ctx.Err(), err)
			return
		}
		err = fmt.Errorf("mail: %s: %w", step, err)
	}()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// When ctx is done (its deadline, which s.timeout bounds, or a
	// cancellation), every pending and future read and write fails at
	// once: a silent relay cannot hold the caller. The connection deadline
	// is a safety net a little after ctx's, so that the error reports
	// ctx.Err().
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline.Add(time.Second))
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if s.cfg.Security == SecurityTLS {
		step = "TLS handshake with " + s.addr
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		conn = tc
	}
	step = "greeting from " + s.addr
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	step = "EHLO"
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return err
	}
	if s.cfg.Security == SecurityStartTLS {
		step = "STARTTLS"
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("relay does not offer STARTTLS (set security to \"tls\" for implicit TLS)")
		}
		if err := c.StartTLS(s.tls); err != nil {
			return err
		}
	}
	if s.cfg.Username != "" {
		step = "authenticate"
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("relay does not offer AUTH")
		}
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host)); err != nil {
			return err
		}
	}
	if err := do(c, &step); err != nil {
		return err
	}
	// The relay has accepted the message (or the check passed); a failed
	// QUIT does not undo that.
	_ = c.Quit()
	return nil
}
