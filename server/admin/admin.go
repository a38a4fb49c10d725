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
	"strconv"
	"sync/atomic"
	"time"

	"relais/server/adminops"
	"relais/server/fed"
	"relais/server/httpx"
	"relais/server/proto"
	"relais/server/store"
)

// SocketName is the socket's file name in the data directory.
const SocketName = "admin.sock"

// Server serves the admin API on the socket.
type Server struct {
	ops  *adminops.Service
	db   *store.DB
	log  *slog.Logger
	srv  *http.Server
	path string
	// backupH answers GET /backup; nil until ServeBackup.
	backupH atomic.Pointer[http.Handler]
	// fed serves /federation; nil until ServeFederation.
	fed atomic.Pointer[fed.Service]
}

type peerKey struct{}

// Listen creates the socket in dataDir and serves it until Close. Every
// action goes through ops, which audits it as the system account that
// connected.
func Listen(dataDir string, ops *adminops.Service, db *store.DB, log *slog.Logger) (*Server, error) {
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
	s := &Server{ops: ops, db: db, log: log.With("component", "admin"), path: path}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", s.handle(s.users))
	mux.HandleFunc("POST /users/approve", s.handle(s.email(ops.Approve)))
	mux.HandleFunc("POST /users/deactivate", s.handle(s.email(ops.Deactivate)))
	mux.HandleFunc("POST /users/reactivate", s.handle(s.email(ops.Reactivate)))
	mux.HandleFunc("POST /users/promote", s.handle(s.email(ops.Promote)))
	mux.HandleFunc("POST /users/reset-password", s.handle(s.link(ops.ResetPassword)))
	mux.HandleFunc("GET /domains", s.handle(s.domains))
	mux.HandleFunc("POST /domains/add", s.handle(s.changeDomains(ops.AddDomains)))
	mux.HandleFunc("POST /domains/remove", s.handle(s.changeDomains(ops.RemoveDomains)))
	mux.HandleFunc("GET /invitations", s.handle(s.invitations))
	mux.HandleFunc("POST /invitations/approve", s.handle(s.link(ops.ApproveInvitation)))
	mux.HandleFunc("POST /setup-link", s.handle(s.setupLink))
	mux.HandleFunc("GET /audit", s.handle(s.audit))
	mux.HandleFunc("GET /backup", s.backup)
	mux.HandleFunc("GET /health", s.handle(s.healthDetails))
	s.federationRoutes(mux)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerUser(c))
		}}
	go s.srv.Serve(l)
	return s, nil
}

// actor is the audit log's actor of a request on the socket.
func actor(r *http.Request) adminops.Actor {
	u, _ := r.Context().Value(peerKey{}).(string)
	return adminops.CLI(u)
}

// ServeBackup makes GET /backup answer with h: the node's backup archive
// (package backup), which needs more of the node than the store.
func (s *Server) ServeBackup(h http.Handler) { s.backupH.Store(&h) }

func (s *Server) healthDetails(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.ops.Overview(r.Context()).Health, nil
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
			// The same table as the HTTP API: a script that calls the
			// socket can tell "no such user" from "already done".
			w.WriteHeader(httpx.StatusOf(pe.Code))
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

func (s *Server) email(fn func(context.Context, adminops.Actor, string) error) func(http.ResponseWriter, *http.Request) (any, error) {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		e, err := readEmail(r)
		if err != nil {
			return nil, err
		}
		return map[string]string{"status": "ok"}, fn(r.Context(), actor(r), e)
	}
}

func (s *Server) link(fn func(context.Context, adminops.Actor, string) (string, error)) func(http.ResponseWriter, *http.Request) (any, error) {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		e, err := readEmail(r)
		if err != nil {
			return nil, err
		}
		l, err := fn(r.Context(), actor(r), e)
		return map[string]string{"link": l}, err
	}
}

// UserInfo is a line of `relais admin users list`.
type UserInfo = adminops.UserInfo

func (s *Server) users(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.ops.Users(r.URL.Query().Get("q"))
}

func (s *Server) domains(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.ops.Domains(), nil
}

func (s *Server) changeDomains(fn func(context.Context, adminops.Actor, []string) ([]string, error)) func(http.ResponseWriter, *http.Request) (any, error) {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		var b struct {
			Domains []string `json:"domains"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&b); err != nil || len(b.Domains) == 0 {
			return nil, proto.Errorf(proto.CodeBadRequest, "expected {\"domains\": […]}")
		}
		return fn(r.Context(), actor(r), b.Domains)
	}
}

func (s *Server) invitations(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.ops.Invitations()
}

func (s *Server) setupLink(w http.ResponseWriter, r *http.Request) (any, error) {
	l, err := s.ops.SetupLink(r.Context(), actor(r))
	return map[string]string{"link": l}, err
}

// audit answers the audit log's entries, newest first, with the page's
// filters (adminops.ParseFilter).
func (s *Server) audit(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := adminops.ParseFilter(r.URL.Query())
	if err != nil {
		return nil, err
	}
	return s.ops.Audit(f)
}

// backup streams the node's backup payload (ServeBackup).
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	h := s.backupH.Load()
	if h == nil {
		http.Error(w, "backups are not served by this node", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

// Headers of GET /backup: the expected size, sent before the body, and
// the error that cut the body short, sent as a trailer; and the payload's
// content type.
const (
	BackupContentType = "application/x-tar"
	BackupSizeHeader  = "Relais-Backup-Size"
	BackupErrorHeader = "Relais-Backup-Error"
)

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
// Error is a refusal of the admin socket: the HTTP status, the stable code
// (server/proto) and the node's message.
type Error struct {
	Status        int
	Code, Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%s)", e.Message, e.Code) }

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
		return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Backup writes the running node's backup payload to w. size, if not
// nil, is called with the size the node expects before the first byte.
// An error the node met while streaming is returned.
func (c *Client) Backup(ctx context.Context, w io.Writer, size func(int64)) (int64, error) {
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
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("backup refused: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if ct := resp.Header.Get("Content-Type"); ct != BackupContentType {
		// Nodes before archives answered with their bare store.
		return 0, fmt.Errorf("the node answers with %q, not a backup archive: it runs an older relais; upgrade it first", ct)
	}
	if size != nil {
		if n, err := strconv.ParseInt(resp.Header.Get(BackupSizeHeader), 10, 64); err == nil {
			size(n)
		}
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup: read from the node: %w", err)
	}
	if e := resp.Trailer.Get(BackupErrorHeader); e != "" {
		return n, fmt.Errorf("the node failed the backup: %s", e)
	}
	return n, nil
}
