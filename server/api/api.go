// Package api serves the node's plain HTTP endpoints: the JSON API of
// accounts, health, the web client's files, and the mounting
// of the websocket endpoint. Handlers return errors; one mapper turns them
// into a status, a stable code and a log line.
package api

import (
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"relais/server/account"
	"relais/server/adminops"
	"relais/server/chat"
	"relais/server/httpx"
	"relais/server/proto"
	"relais/server/store"
)

// maxBody caps JSON request bodies.
const maxBody = 64 << 10

// Config configures the handler.
type Config struct {
	Accounts *account.Service
	Chat     *chat.Service
	// WS serves /api/v1/ws.
	WS http.Handler
	// Media, if set, serves /api/v1/media/.
	Media http.Handler
	// Web holds the built web client (index.html and assets/).
	Web fs.FS
	// Health fills the /healthz answer given to administrators; others
	// get {"status":"ok"}.
	Health func() map[string]any
	// SecureCookies sets the Secure attribute on cookies; only a plain
	// HTTP node on loopback may turn it off.
	SecureCookies bool
	// TrustProxy takes the client address from the last
	// X-Forwarded-For entry (a node behind a reverse proxy).
	TrustProxy bool
	// Bodies bound how long request bodies may take to arrive.
	Bodies BodyDeadlines
	// Admin serves the admin page's endpoints (admin.go).
	Admin *adminops.Service
	// Name is the node's name as shown to users.
	Name   string
	Logger *slog.Logger
}

// Handler is the node's HTTP handler.
type Handler struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// New builds the handler and its routes.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Bodies.defaults()
	h := &Handler{cfg: cfg, log: cfg.Logger.With("component", "api"), mux: http.NewServeMux()}
	m := h.mux
	m.HandleFunc("POST /api/v1/register", h.handle(h.register))
	m.HandleFunc("POST /api/v1/verify", h.handle(h.verify))
	m.HandleFunc("POST /api/v1/login", h.handle(h.login))
	m.HandleFunc("POST /api/v1/logout", h.handle(h.logout))
	m.HandleFunc("GET /api/v1/me", h.authed(h.me))
	m.HandleFunc("PATCH /api/v1/me", h.authed(h.updateMe))
	m.HandleFunc("GET /api/v1/devices", h.authed(h.devices))
	m.HandleFunc("DELETE /api/v1/devices/{id}", h.authed(h.revokeDevice))
	m.HandleFunc("PATCH /api/v1/devices/{id}", h.authed(h.renameDevice))
	m.HandleFunc("POST /api/v1/password", h.authed(h.changePassword))
	m.HandleFunc("POST /api/v1/password/reset", h.handle(h.requestReset))
	m.HandleFunc("POST /api/v1/password/reset/confirm", h.handle(h.confirmReset))
	m.HandleFunc("POST /api/v1/renew", h.handle(h.renew))
	m.HandleFunc("GET /api/v1/setup", h.handle(h.setupStatus))
	m.HandleFunc("POST /api/v1/setup", h.handle(h.setup))
	m.HandleFunc("GET /api/v1/invitation", h.handle(h.peekInvitation))
	m.HandleFunc("POST /api/v1/invitation/accept", h.handle(h.acceptInvitation))
	m.HandleFunc("GET /api/v1/config", h.handle(h.publicConfig))
	m.HandleFunc("GET /api/v1/backups", h.authed(h.listBackups))
	m.HandleFunc("PUT /api/v1/backups/{name}", h.authed(h.putBackup))
	m.HandleFunc("GET /api/v1/backups/{name}", h.authed(h.getBackup))
	m.HandleFunc("DELETE /api/v1/backups/{name}", h.authed(h.deleteBackup))
	m.HandleFunc("GET /healthz", h.handle(h.health))
	h.mountAdmin(m)
	if cfg.WS != nil {
		m.Handle("GET /api/v1/ws", cfg.WS)
	}
	if cfg.Media != nil {
		m.Handle("/api/v1/media/", cfg.Media)
	}
	m.HandleFunc("/api/", h.handle(func(http.ResponseWriter, *http.Request) error {
		return proto.Errorf(proto.CodeNotFound, "no such endpoint")
	}))
	if cfg.Web != nil {
		st := newStatic(cfg.Web)
		m.Handle("/", st)
		man, err := newManifest(cfg.Name, st.modTime)
		if err != nil {
			panic(err) // a name is a string: JSON always encodes it
		}
		m.Handle("GET /manifest.webmanifest", man)
	}
	return h
}

// ServeHTTP implements http.Handler: request id, security headers, the
// cross-site check of state-changing requests, then the routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := r.Header.Get("X-Request-Id")
	if rid == "" || len(rid) > 64 {
		var b [8]byte
		rand.Read(b[:])
		rid = hex.EncodeToString(b[:])
	}
	r = httpx.WithRequestID(r, rid)
	hd := w.Header()
	hd.Set("X-Request-Id", rid)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	if strings.HasPrefix(r.URL.Path, "/api/") {
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	}
	if !safeMethod(r.Method) && !sameOrigin(r) {
		httpx.WriteError(w, r, h.log, proto.Errorf(proto.CodeForbidden, "cross-site request refused"))
		return
	}
	h.withBodyDeadline(w, r)
	h.mux.ServeHTTP(w, r)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin refuses a state-changing request that a browser sent from
// another site. Non-browser clients send no Origin.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") != "cross-site"
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// handle adapts an error-returning handler.
func (h *Handler) handle(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return httpx.Handle(h.log, fn)
}

// authed adapts a handler that needs a signed-in user.
func (h *Handler) authed(fn func(http.ResponseWriter, *http.Request, account.Identity) error) http.HandlerFunc {
	return httpx.Authed(h.log, h.cfg.Accounts.Resolve, fn)
}

// decode reads a JSON request body strictly (httpx.Decode), of at most
// maxBody bytes.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return httpx.Decode(w, r, v, maxBody)
}

// writeJSON answers v (httpx.WriteJSON).
func writeJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

// clientIP is the address rate limits apply to.
func (h *Handler) clientIP(r *http.Request) string {
	if h.cfg.TrustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *Handler) setCookie(w http.ResponseWriter, token string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: httpx.CookieName, Value: token, Path: "/", MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
}

func meOf(u store.User, device string) proto.Me {
	return proto.Me{Profile: chat.ProfileOf(u), Email: u.Email, Admin: u.Admin, Device: device, Expires: u.Expires}
}
