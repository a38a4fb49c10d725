package mail_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"relais/server/mail"
	"relais/server/mail/smtptest"
)

func newSMTP(t *testing.T, cfg mail.SMTPConfig) *mail.SMTP {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "Relais <no-reply@chat.mairie-lyon.fr>"
	}
	s, err := mail.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var testMessage = mail.Message{
	To:      "Jean.Dupont@Elysee.FR",
	Subject: "Vérification – Relais",
	Text:    "Bonjour,\n.\n..deux points\nCode : 123 456\n",
}

func TestSendSecurityModes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []smtptest.Option
		security string
		user     string
		tls      bool
	}{
		{"starttls with auth", []smtptest.Option{smtptest.WithStartTLS(), smtptest.WithAuth("relais", "s3cret")}, mail.SecurityStartTLS, "relais", true},
		{"starttls default security", []smtptest.Option{smtptest.WithStartTLS()}, "", "", true},
		{"implicit tls with auth", []smtptest.Option{smtptest.WithImplicitTLS(), smtptest.WithAuth("relais", "s3cret")}, mail.SecurityTLS, "relais", true},
		{"implicit tls", []smtptest.Option{smtptest.WithImplicitTLS()}, mail.SecurityTLS, "", true},
		{"none on loopback", nil, mail.SecurityNone, "", false},
		{"none on loopback with auth", []smtptest.Option{smtptest.WithAuth("relais", "s3cret")}, mail.SecurityNone, "relais", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.opts...)
			s := newSMTP(t, mail.SMTPConfig{
				Host:      srv.Host,
				Port:      srv.Port,
				Security:  tc.security,
				Username:  tc.user,
				Password:  "s3cret",
				TLSConfig: srv.ClientTLSConfig(),
				HelloName: "chat.mairie-lyon.fr",
			})
			ctx := ctxTimeout(t, 10*time.Second)
			if err := s.Send(ctx, testMessage); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got, err := srv.WaitMessage(ctx, "jean.dupont@elysee.fr")
			if err != nil {
				t.Fatal(err)
			}
			if got.From != "no-reply@chat.mairie-lyon.fr" || len(got.To) != 1 || got.To[0] != "jean.dupont@elysee.fr" {
				t.Errorf("envelope %q → %q", got.From, got.To)
			}
			if got.TLS != tc.tls || got.User != tc.user {
				t.Errorf("TLS %v user %q, want %v %q", got.TLS, got.User, tc.tls, tc.user)
			}
			if got.Subject != testMessage.Subject {
				t.Errorf("Subject %q, want %q", got.Subject, testMessage.Subject)
			}
			if got.Text != testMessage.Text {
				t.Errorf("Text %q, want %q", got.Text, testMessage.Text)
			}
			if got.Header.Get("To") != "jean.dupont@elysee.fr" {
				t.Errorf("To header %q", got.Header.Get("To"))
			}
		})
	}
}

func TestSendAuthFails(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opt      smtptest.Option
		security string
	}{
		{"starttls", smtptest.WithStartTLS(), mail.SecurityStartTLS},
		{"implicit tls", smtptest.WithImplicitTLS(), mail.SecurityTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.opt, smtptest.WithAuth("relais", "s3cret"))
			s := newSMTP(t, mail.SMTPConfig{
				Host: srv.Host, Port: srv.Port, Security: tc.security,
				Username: "relais", Password: "wrong",
				TLSConfig: srv.ClientTLSConfig(),
			})
			err := s.Send(ctxTimeout(t, 10*time.Second), testMessage)
			var te *textproto.Error
			if !errors.As(err, &te) || te.Code != 535 {
				t.Fatalf("Send: %v, want a 535 error", err)
			}
			if !strings.Contains(err.Error(), "authenticate") || strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q should say what failed and not contain the password", err)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages accepted", n)
			}
		})
	}
}

func TestSendAuthRequiredButNotConfigured(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithStartTLS(), smtptest.WithAuth("relais", "s3cret"))
	s := newSMTP(t, mail.SMTPConfig{Host: srv.Host, Port: srv.Port, TLSConfig: srv.ClientTLSConfig()})
	err := s.Send(ctxTimeout(t, 10*time.Second), testMessage)
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 530 {
		t.Fatalf("Send: %v, want a 530 error", err)
	}
}

func TestSendStartTLSRequired(t *testing.T) {
	// A relay that does not offer STARTTLS, even on loopback, is refused
	// in starttls mode: no clear-text fallback.
	srv := smtptest.Start(t, smtptest.WithAuth("relais", "s3cret"))
	s := newSMTP(t, mail.SMTPConfig{Host: srv.Host, Port: srv.Port, Username: "relais", Password: "s3cret"})
	err := s.Send(ctxTimeout(t, 10*time.Second), testMessage)
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send: %v, want a STARTTLS error", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages accepted in clear text", n)
	}
}

func TestSendUntrustedCertificate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opt      smtptest.Option
		security string
	}{
		{"starttls", smtptest.WithStartTLS(), mail.SecurityStartTLS},
		{"implicit tls", smtptest.WithImplicitTLS(), mail.SecurityTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.opt)
			s := newSMTP(t, mail.SMTPConfig{Host: srv.Host, Port: srv.Port, Security: tc.security})
			err := s.Send(ctxTimeout(t, 10*time.Second), testMessage)
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("Send: %v, want a certificate error", err)
			}
		})
	}
	t.Run("wrong name", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.WithImplicitTLS())
		cfg := srv.ClientTLSConfig()
		cfg.ServerName = "relay.example.fr"
		s := newSMTP(t, mail.SMTPConfig{Host: srv.Host, Port: srv.Port, Security: mail.SecurityTLS, TLSConfig: cfg})
		if err := s.Send(ctxTimeout(t, 10*time.Second), testMessage); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Send: %v, want a certificate error", err)
		}
	})
}

func TestSendServerDown(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithStartTLS())
	srv.Close()
	s := newSMTP(t, mail.SMTPConfig{Host: srv.Host, Port: srv.Port, TLSConfig: srv.ClientTLSConfig()})
	start := time.Now()
	err := s.Send(ctxTimeout(t, 10*time.Second), testMessage)
	if err == nil || !strings.Contains(err.Error(), "connect to "+srv.Addr) {
		t.Fatalf("Send: %v, want a connection error naming %s", err, srv.Addr)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// silentServer accepts connections and never answers, like a relay behind
// a black-holing firewall.
func silentServer(t *testing.T) *net.TCPAddr {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().(*net.TCPAddr)
}

func TestSendSilentServer(t *testing.T) {
	addr := silentServer(t)
	for _, security := range []string{mail.SecurityStartTLS, mail.SecurityTLS, mail.SecurityNone} {
		t.Run(security+" deadline", func(t *testing.T) {
			s := newSMTP(t, mail.SMTPConfig{Host: "127.0.0.1", Port: addr.Port, Security: security})
			start := time.Now()
			err := s.Send(ctxTimeout(t, 300*time.Millisecond), testMessage)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send: %v, want DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	t.Run("config timeout", func(t *testing.T) {
		s := newSMTP(t, mail.SMTPConfig{Host: "127.0.0.1", Port: addr.Port, Timeout: 300 * time.Millisecond})
		start := time.Now()
		err := s.Send(context.Background(), testMessage)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send: %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		s := newSMTP(t, mail.SMTPConfig{Host: "127.0.0.1", Port: addr.Port})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		err := s.Send(ctx, testMessage)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Send: %v, want Canceled", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
}

func TestSendInvalidMessage(t *testing.T) {
	// Nothing listens: an invalid message must fail before connecting.
	s := newSMTP(t, mail.SMTPConfig{Host: "127.0.0.1", Port: 1})
	for _, m := range []mail.Message{
		{To: "x@gmail.com@elysee.fr"},
		{To: "a@b.fr", Subject: "x\r\nBcc: y@gmail.com"},
	} {
		if err := s.Send(context.Background(), m); !errors.Is(err, mail.ErrInvalidMessage) {
			t.Errorf("Send(%+v): %v, want ErrInvalidMessage", m, err)
		}
	}
}

func TestSendConcurrent(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithStartTLS(), smtptest.WithAuth("relais", "s3cret"))
	s := newSMTP(t, mail.SMTPConfig{Host: srv.Host, Port: srv.Port, Username: "relais", Password: "s3cret", TLSConfig: srv.ClientTLSConfig()})
	ctx := ctxTimeout(t, 20*time.Second)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			m := testMessage
			m.To = "agent" + string(rune('a'+i)) + "@interieur.gouv.fr"
			if err := s.Send(ctx, m); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 8 {
		if _, err := srv.WaitMessage(ctx, "agent"+string(rune('a'+i))+"@interieur.gouv.fr"); err != nil {
			t.Error(err)
		}
	}
}

func TestNewSMTP(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  mail.SMTPConfig
		ok   bool
	}{
		{"defaults", mail.SMTPConfig{Host: "smtp.mairie.fr", From: "no-reply@mairie.fr"}, true},
		{"tls", mail.SMTPConfig{Host: "smtp.mairie.fr", Security: "tls", From: "no-reply@mairie.fr"}, true},
		{"none on 127.0.0.1", mail.SMTPConfig{Host: "127.0.0.1", Security: "none", From: "no-reply@mairie.fr"}, true},
		{"none on ::1", mail.SMTPConfig{Host: "::1", Security: "none", From: "no-reply@mairie.fr"}, true},
		{"none on localhost", mail.SMTPConfig{Host: "localhost", Security: "none", From: "no-reply@mairie.fr"}, true},
		{"none on 127.0.0.2", mail.SMTPConfig{Host: "127.0.0.2", Security: "none", From: "no-reply@mairie.fr"}, true},
		{"none on remote host", mail.SMTPConfig{Host: "smtp.mairie.fr", Security: "none", From: "no-reply@mairie.fr"}, false},
		{"none on lan address", mail.SMTPConfig{Host: "10.0.0.25", Security: "none", From: "no-reply@mairie.fr"}, false},
		{"none on localhost look-alike", mail.SMTPConfig{Host: "localhost.evil.com", Security: "none", From: "no-reply@mairie.fr"}, false},
		{"unknown security", mail.SMTPConfig{Host: "smtp.mairie.fr", Security: "ssl", From: "no-reply@mairie.fr"}, false},
		{"no host", mail.SMTPConfig{From: "no-reply@mairie.fr"}, false},
		{"host with port", mail.SMTPConfig{Host: "[::1]", From: "no-reply@mairie.fr"}, false},
		{"bad port", mail.SMTPConfig{Host: "smtp.mairie.fr", Port: 70000, From: "no-reply@mairie.fr"}, false},
		{"no from", mail.SMTPConfig{Host: "smtp.mairie.fr"}, false},
		{"bad from", mail.SMTPConfig{Host: "smtp.mairie.fr", From: "x@gmail.com@mairie.fr"}, false},
		{"from with injection", mail.SMTPConfig{Host: "smtp.mairie.fr", From: "R <a@mairie.fr>\r\nBcc: x@gmail.com"}, false},
		{"hello with space", mail.SMTPConfig{Host: "smtp.mairie.fr", From: "a@mairie.fr", HelloName: "a b"}, false},
		{"credentials with newline", mail.SMTPConfig{Host: "smtp.mairie.fr", From: "a@mairie.fr", Username: "u\r\nRCPT TO:<x@y.fr>"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mail.NewSMTP(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("NewSMTP: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestTLSConfigNotModified checks that the caller's TLS configuration is
// cloned, not written to.
func TestTLSConfigNotModified(t *testing.T) {
	cfg := &tls.Config{}
	newSMTP(t, mail.SMTPConfig{Host: "smtp.mairie.fr", TLSConfig: cfg})
	if cfg.ServerName != "" || cfg.MinVersion != 0 {
		t.Errorf("TLSConfig modified: %+v", cfg)
	}
}
