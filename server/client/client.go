// Package client is the reference Go client of a Relais node: accounts over
// HTTP, and the websocket protocol with resume and idempotent sends. The
// tests, `relais bench` and bots use it.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"relais/server/proto"
)

// Client talks to one node as one user (once signed in).
type Client struct {
	base  string
	http  *http.Client
	token string
	// Me is the signed-in user, after Login.
	Me proto.Me
	// Dialer, if set, dials the node's connections (benchmarks spread
	// them over several loopback source addresses).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Option configures a Client.
type Option func(*Client)

// WithTLS sets the TLS configuration (for a node with its own CA).
func WithTLS(cfg *tls.Config) Option {
	return func(c *Client) { c.http.Transport.(*http.Transport).TLSClientConfig = cfg }
}

// WithDialer sets how connections to the node are dialed.
func WithDialer(d func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(c *Client) {
		c.dial = d
		c.http.Transport.(*http.Transport).DialContext = d
	}
}

// WithToken uses an existing session token.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// New returns a client of the node at baseURL (http(s)://host:port).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{
		base: strings.TrimRight(baseURL, "/"),
		http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second, ForceAttemptHTTP2: true,
		}},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Token is the session token after Login.
func (c *Client) Token() string { return c.token }

// URL is the node's base URL.
func (c *Client) URL() string { return c.base }

// Error is an error answer of the node.
type Error struct {
	Status     int
	Code       string `json:"code"`
	Detail     string `json:"detail"`
	Message    string `json:"message"`
	RetryAfter int    `json:"retry_after"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("relais: %s (%d): %s", e.Code, e.Status, e.Message)
}

// Do calls a JSON endpoint of the HTTP API; out may be nil.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error Error `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
		e.Error.Status = resp.StatusCode
		if e.Error.Code == "" {
			e.Error.Code = "http_" + fmt.Sprint(resp.StatusCode)
		}
		return &e.Error
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Register starts a registration; it returns the node's status
// (verification_sent or pending_approval).
func (c *Client) Register(ctx context.Context, email, password, name string) (string, error) {
	var out struct{ Status string }
	err := c.Do(ctx, "POST", "/api/v1/register", proto.RegisterRequest{Email: email, Password: password, DisplayName: name}, &out)
	return out.Status, err
}

// Verify confirms an address with the token of the link and the password
// given at registration.
func (c *Client) Verify(ctx context.Context, token, password string) error {
	return c.Do(ctx, "POST", "/api/v1/verify", proto.VerifyRequest{Token: token, Password: password}, nil)
}

// VerifyCode confirms an address with the code of the mail and the
// password given at registration.
func (c *Client) VerifyCode(ctx context.Context, email, code, password string) error {
	return c.Do(ctx, "POST", "/api/v1/verify", proto.VerifyRequest{Email: email, Code: code, Password: password}, nil)
}

// Login signs in and keeps the bearer token.
func (c *Client) Login(ctx context.Context, email, password string) error {
	var out proto.LoginAnswer
	if err := c.Do(ctx, "POST", "/api/v1/login", proto.LoginRequest{Email: email, Password: password, Device: "relais Go client", Bearer: true}, &out); err != nil {
		return err
	}
	c.token, c.Me = out.Token, out.Me
	return nil
}

// Logout ends the session.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, "POST", "/api/v1/logout", nil, nil)
}

// wsURL is the websocket endpoint's URL.
func (c *Client) wsURL() string {
	u, _ := url.Parse(c.base)
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = "/api/v1/ws"
	return u.String()
}
