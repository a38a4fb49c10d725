// Package admin is the operator's channel to a running node: an HTTP API
// on a unix socket inside the data directory (mode 0600, so only the
// account that runs the node can use it), and the client `relais admin`
// and `relais backup` use.
package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"relais/server/account"
	"relais/server/fed"
	"relais/server/proto"
	"relais/server/store"
)

// SocketName is the socket's file name in the data directory.
const SocketName = "admin.sock"

// Server serves the admin API on the socket.
type Server struct {
	acc  *account.Service
	db   *store.DB
	log  *slog.Logger
	srv  *http.Server
	path string
	// health fills GET /health; nil until ServeHealth.
	health atomic.Pointer[func() map[string]any]
	// fed serves /federation; nil until ServeFederation.
	fed atomic.Pointer[fed.Service]
}

// Listen creates the socket in dataDir and serves it until Close.
func Listen(dataDir string, acc *account.Service, db *store.DB, log *slog.Logger) (*Server, error) {
	path := filepath.Join(dataDir, SocketName)
	// A socket left by a killed node would make Listen fail; the store's
	// lock already guarantees that no other node runs on this directory.
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin: chmod %s: %w", path, err)
	}
	s := &Server{acc: acc, db: db, log: log.With("component", "admin"), path: path}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", s.handle(s.users))
	mux.HandleFunc("POST /users/approve", s.handle(s.email(acc.Approve)))
	mux.HandleFunc("POST /users/deactivate", s.handle(s.email(func(ctx context.Context, e string) error { return acc.SetActive(ctx, e, false) })))
	mux.HandleFunc("POST /users/reactivate", s.handle(s.email(func(ctx context.Context, e string) error { return acc.SetActive(ctx, e, true) })))
	mux.HandleFunc("POST /users/promote", s.handle(s.email(acc.PromoteAdmin)))
	mux.HandleFunc("POST /users/reset-password", s.handle(s.link(acc.AdminResetLink)))
	mux.HandleFunc("GET /domains", s.handle(s.domains))
	mux.HandleFunc("POST /domains/add", s.handle(s.changeDomains(acc.AddDomains)))
	mux.HandleFunc("POST /domains/remove", s.handle(s.changeDomains(acc.RemoveDomains)))
	mux.HandleFunc("GET /invitations", s.handle(s.invitations))
	mux.HandleFunc("POST /invitations/approve", s.handle(s.link(acc.ApproveInvitation)))
	mux.HandleFunc("POST /setup-link", s.handle(s.setupLink))
	mux.HandleFunc("GET /backup", s.backup)
	mux.HandleFunc("GET /health", s.handle(s.healthDetails))
	s.federationRoutes(mux)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(l)
	return s, nil
}

// ServeHealth makes GET /health answer f's details: the ones the public
// /healthz keeps for administrators.
func (s *Server) ServeHealth(f func() map[string]any) { s.health.Store(&f) }

func (s *Server) healthDetails(w http.ResponseWriter, r *http.Request) (any, error) {
	if f := s.health.Load(); f != nil {
		return (*f)(), nil
	}
	return map[string]string{"status": "ok"}, nil
}

// Close stops the admin API and removes the socket.
func (s *Server) Close() error {
	if s == nil || s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	os.Remove(s.path)
	return err
}

func (s *Server) handle(fn func(w http.ResponseWriter, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(w, r)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			pe := proto.AsError(err)
			if pe == nil {
				s.log.Error("admin request failed", "path", r.URL.Path, "err", err)
				pe = proto.Errorf(proto.CodeInternal, "%v", err)
			}
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": pe.Code, "message": pe.Message}})
			return
		}
		s.log.Info("admin action", "path", r.URL.Path)
		json.NewEncoder(w).Encode(v)
	}
}

type emailBody struct {
	Email string `json:"email"`
}

func readEmail(r *http.Request) (string, error) {
	var b emailBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&b); err != nil || b.Email == "" {
		return "", proto.Errorf(proto.CodeBadRequest, "expected {\"email\": …}")
	}
	return b.Email, nil
}

func (s *Server) email(fn func(context.Context, string) error) func(http.ResponseWriter, *http.Request) (any, error) {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		e, err := readEmail(r)
		if err != nil {
			return nil, err
		}
		return map[string]string{"status": "ok"}, fn(r.Context(), e)
	}
}

func (s *Server) link(fn func(context.Context, string) (string, error)) func(http.ResponseWriter, *http.Request) (any, error) {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		e, err := readEmail(r)
		if err != nil {
			return nil, err
		}
		l, err := fn(r.Context(), e)
		return map[string]string{"link": l}, err
	}
}

// UserInfo is a line of `relais admin users list`.
type UserInfo struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	State string `json:"state"`
	// Unproven says that nothing proved the registrant reads the address:
	// a registration waiting for approval (no relay) or for its mail.
	// Anyone can register any address of an allowed domain; approve only
	// after checking with the person.
	Unproven bool      `json:"unproven,omitempty"`
	External bool      `json:"external,omitempty"`
	Admin    bool      `json:"admin,omitempty"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"`
}

func (s *Server) users(w http.ResponseWriter, r *http.Request) (any, error) {
	users, err := s.acc.Users()
	out := make([]UserInfo, 0, len(users))
	for _, u := range users {
		out = append(out, UserInfo{ID: u.ID, Email: u.Email, Name: u.Name, State: string(u.State),
			Unproven: u.State == store.UserPending || u.State == store.UserUnverified, External: u.External, Admin: u.Admin, Created: u.Created, Expires: u.Expires})
	}
	return out, err
}

func (s *Server) domains(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.acc.Domains(), nil
}

func (s *Server) changeDomains(fn func(context.Context, ...string) error) func(http.ResponseWriter, *http.Request) (any, error) {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		var b struct {
			Domains []string `json:"domains"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&b); err != nil || len(b.Domains) == 0 {
			return nil, proto.Errorf(proto.CodeBadRequest, "expected {\"domains\": […]}")
		}
		if err := fn(r.Context(), b.Domains...); err != nil {
			return nil, err
		}
		return s.acc.Domains(), nil
	}
}

func (s *Server) invitations(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.acc.Invitations()
}

func (s *Server) setupLink(w http.ResponseWriter, r *http.Request) (any, error) {
	l, err := s.acc.SetupLink(r.Context())
	if err == nil && l == "" {
		return nil, proto.Errorf(proto.CodeSetupDone, "the node already has an administrator")
	}
	return map[string]string{"link": l}, err
}

// backup streams a consistent snapshot of the store.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	n, err := s.db.Backup(w)
	if err != nil {
		s.log.Error("backup failed", "err", err, "bytes", n)
		return
	}
	s.log.Info("backup taken", "bytes", n)
}

// Client talks to a node's admin socket.
type Client struct {
	http *http.Client
}

// Dial returns a client for the node whose data directory is dataDir.
func Dial(dataDir string) *Client {
	path := filepath.Join(dataDir, SocketName)
	return &Client{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

// ErrNotRunning is returned when no node answers on the socket.
var ErrNotRunning = errors.New("no running node answers on the admin socket of this data directory (start it with `relais serve`)")

// Do calls an admin endpoint with a JSON body (nil for GET) and decodes the
// JSON answer into out.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://relais"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return ErrNotRunning
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s (%s)", e.Error.Message, e.Error.Code)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Backup writes a snapshot of the running node's store to w.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://relais/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, ErrNotRunning
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("backup refused: %s", resp.Status)
	}
	return io.Copy(w, resp.Body)
}
