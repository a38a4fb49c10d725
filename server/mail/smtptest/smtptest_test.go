package smtptest

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial opens a raw protocol connection and reads the greeting.
func dial(t *testing.T, s *Server) *textproto.Conn {
	t.Helper()
	c, err := textproto.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, _, err := c.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	return c
}

func cmd(t *testing.T, c *textproto.Conn, want int, format string, args ...any) string {
	t.Helper()
	id, err := c.Cmd(format, args...)
	if err != nil {
		t.Fatal(err)
	}
	c.StartResponse(id)
	defer c.EndResponse(id)
	code, msg, err := c.ReadResponse(want)
	if err != nil {
		t.Fatalf("%s: %d %s (%v), want %d", format, code, msg, err, want)
	}
	return msg
}

func TestProtocol(t *testing.T) {
	s := Start(t)
	c := dial(t, s)
	cmd(t, c, 503, "MAIL FROM:<a@b.fr>")
	cmd(t, c, 501, "EHLO")
	ehlo := cmd(t, c, 250, "EHLO client.example")
	if strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO offers extensions that are not configured: %q", ehlo)
	}
	cmd(t, c, 250, "NOOP")
	cmd(t, c, 502, "VRFY a@b.fr")
	cmd(t, c, 502, "STARTTLS")
	cmd(t, c, 503, "AUTH PLAIN AHUAcA==")
	cmd(t, c, 503, "RCPT TO:<a@b.fr>")
	cmd(t, c, 503, "DATA")
	cmd(t, c, 501, "MAIL FROM:a@b.fr")
	cmd(t, c, 250, "MAIL FROM:<a@b.fr> BODY=8BITMIME")
	cmd(t, c, 503, "MAIL FROM:<a@b.fr>")
	cmd(t, c, 250, "RCPT TO:<x@y.fr>")
	cmd(t, c, 250, "RSET")
	cmd(t, c, 503, "RCPT TO:<x@y.fr>")
	cmd(t, c, 250, "HELO client.example")
	cmd(t, c, 250, "MAIL FROM:<>")
	cmd(t, c, 250, "RCPT TO:<x@y.fr>")
	cmd(t, c, 250, "RCPT TO:<z@y.fr>")
	cmd(t, c, 354, "DATA")
	// Written as on the wire: dot-stuffed lines and the final dot.
	c.W.WriteString("Subject: =?utf-8?q?=C3=A9t=C3=A9?=\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"..ligne\r\n...\r\nd=C3=A9but=\r\n fin\r\n.\r\n")
	if err := c.W.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadResponse(250); err != nil {
		t.Fatal(err)
	}
	cmd(t, c, 221, "QUIT")

	for _, rcpt := range []string{"X@Y.FR", "z@y.fr"} {
		m, err := s.WaitMessage(ctxTimeout(t), rcpt)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "été" || m.Text != ".ligne\n..\ndébut fin\n" || m.From != "" || len(m.To) != 2 || m.TLS {
			t.Errorf("received %+v", m)
		}
	}
	// Each message is returned once per recipient.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.WaitMessage(ctx, "x@y.fr"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second WaitMessage: %v, want DeadlineExceeded", err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestWaitMessageBlocks(t *testing.T) {
	s := Start(t)
	got := make(chan Received, 1)
	go func() {
		m, err := s.WaitMessage(ctxTimeout(t), "later@y.fr")
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	for i, to := range []string{"other@y.fr", "later@y.fr"} {
		if err := smtp.SendMail(s.Addr, nil, "a@b.fr", []string{to}, []byte("Subject: "+string(rune('0'+i))+"\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	if m := <-got; m.Subject != "1" {
		t.Errorf("got message %q, want 1", m.Subject)
	}
}

func TestStartTLSAndAuth(t *testing.T) {
	s := Start(t, WithStartTLS(), WithAuth("u", "p"))
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := textproto.NewConn(conn)
	if _, _, err := c.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	if ehlo := cmd(t, c, 250, "EHLO client.example"); !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("before TLS, EHLO = %q; want STARTTLS and no AUTH", ehlo)
	}
	cmd(t, c, 503, "AUTH PLAIN AHUAcA==")
	cmd(t, c, 530, "MAIL FROM:<a@b.fr>")
	cmd(t, c, 220, "STARTTLS")
	tc := tls.Client(conn, &tls.Config{ServerName: "localhost", RootCAs: s.RootCAs()})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = textproto.NewConn(tc)
	cmd(t, c, 503, "MAIL FROM:<a@b.fr>") // state reset by STARTTLS
	if ehlo := cmd(t, c, 250, "EHLO client.example"); strings.Contains(ehlo, "STARTTLS") || !strings.Contains(ehlo, "AUTH PLAIN") {
		t.Errorf("after TLS, EHLO = %q; want AUTH PLAIN and no STARTTLS", ehlo)
	}
	cmd(t, c, 502, "STARTTLS")
	cmd(t, c, 504, "AUTH LOGIN")
	cmd(t, c, 535, "AUTH PLAIN %s", base64.StdEncoding.EncodeToString([]byte("\x00u\x00wrong")))
	cmd(t, c, 501, "AUTH PLAIN !!!")
	cmd(t, c, 334, "AUTH PLAIN")
	cmd(t, c, 501, "*")
	cmd(t, c, 334, "AUTH PLAIN")
	cmd(t, c, 235, "%s", base64.StdEncoding.EncodeToString([]byte("\x00u\x00p")))
	cmd(t, c, 503, "AUTH PLAIN AHUAcA==")
	cmd(t, c, 250, "MAIL FROM:<a@b.fr>")
}

func TestSMTPClient(t *testing.T) {
	s := Start(t, WithStartTLS(), WithAuth("u", "p"))
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before STARTTLS")
	}
	if err := c.Mail("a@b.fr"); err == nil {
		t.Error("MAIL accepted before AUTH")
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: s.RootCAs()}); err != nil {
		t.Fatal(err)
	}
	if ok, params := c.Extension("AUTH"); !ok || params != "PLAIN" {
		t.Errorf("after STARTTLS, AUTH = %v %q", ok, params)
	}
	if err := c.Auth(smtp.PlainAuth("", "u", "p", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@b.fr"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("x@y.fr"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: s\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("bonjour\r\n")) + "\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	m, err := s.WaitMessage(ctxTimeout(t), "x@y.fr")
	if err != nil {
		t.Fatal(err)
	}
	if !m.TLS || m.User != "u" || m.Text != "bonjour\n" {
		t.Errorf("received TLS=%v user=%q text=%q", m.TLS, m.User, m.Text)
	}
}

func TestImplicitTLS(t *testing.T) {
	s := Start(t, WithImplicitTLS())
	conn, err := tls.Dial("tcp", s.Addr, s.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseWithOpenConnections(t *testing.T) {
	s := Start(t)
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with an idle client connected")
	}
	s.Close() // twice is fine
	if _, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		t.Error("server still accepts connections after Close")
	}
}
