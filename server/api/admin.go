package api

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"relais/server/account"
	"relais/server/adminops"
	"relais/server/proto"
)

// The admin page's endpoints. Each is checked here, for every request:
// a session (401 unauthorized), an account with the administrator role
// (403 forbidden, detail admin_only). What they do is adminops's, the same
// functions as the admin socket's, which audit every action.

// AdminRoute is one endpoint of the admin page.
type AdminRoute struct {
	Method, Path string
	handle       func(h *Handler, w http.ResponseWriter, r *http.Request, a adminops.Actor) error
}

// emailBody reads the {"email": …} of an action on an account.
func emailBody(w http.ResponseWriter, r *http.Request) (string, error) {
	var req struct {
		Email string `json:"email"`
	}
	err := decode(w, r, &req)
	return req.Email, err
}

// emailAction adapts an action on the account of an address.
func emailAction(fn func(*adminops.Service, context.Context, adminops.Actor, string) error) func(*Handler, http.ResponseWriter, *http.Request, adminops.Actor) error {
	return func(h *Handler, w http.ResponseWriter, r *http.Request, a adminops.Actor) error {
		email, err := emailBody(w, r)
		if err != nil {
			return err
		}
		if err := fn(h.cfg.Admin, r.Context(), a, email); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}
}

func domainsAction(fn func(*adminops.Service, context.Context, adminops.Actor, []string) ([]string, error)) func(*Handler, http.ResponseWriter, *http.Request, adminops.Actor) error {
	return func(h *Handler, w http.ResponseWriter, r *http.Request, a adminops.Actor) error {
		var req struct {
			Domains []string `json:"domains"`
		}
		if err := decode(w, r, &req); err != nil {
			return err
		}
		d, err := fn(h.cfg.Admin, r.Context(), a, req.Domains)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"domains": d})
		return nil
	}
}

// adminRoutes are every endpoint of the admin page.
var adminRoutes = []AdminRoute{
	{"GET", "/api/v1/admin/overview", func(h *Handler, w http.ResponseWriter, r *http.Request, _ adminops.Actor) error {
		writeJSON(w, http.StatusOK, h.cfg.Admin.Overview(r.Context()))
		return nil
	}},
	{"GET", "/api/v1/admin/series", (*Handler).adminSeries},
	{"GET", "/api/v1/admin/users", func(h *Handler, w http.ResponseWriter, r *http.Request, _ adminops.Actor) error {
		users, err := h.cfg.Admin.Users(r.URL.Query().Get("q"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"users": users})
		return nil
	}},
	{"POST", "/api/v1/admin/users/approve", emailAction((*adminops.Service).Approve)},
	{"POST", "/api/v1/admin/users/deactivate", emailAction((*adminops.Service).Deactivate)},
	{"POST", "/api/v1/admin/users/reactivate", emailAction((*adminops.Service).Reactivate)},
	{"POST", "/api/v1/admin/users/promote", emailAction((*adminops.Service).Promote)},
	{"POST", "/api/v1/admin/users/reset-password", (*Handler).adminReset},
	{"GET", "/api/v1/admin/domains", func(h *Handler, w http.ResponseWriter, r *http.Request, _ adminops.Actor) error {
		writeJSON(w, http.StatusOK, map[string]any{"domains": h.cfg.Admin.Domains()})
		return nil
	}},
	{"POST", "/api/v1/admin/domains/add", domainsAction((*adminops.Service).AddDomains)},
	{"POST", "/api/v1/admin/domains/remove", domainsAction((*adminops.Service).RemoveDomains)},
	{"GET", "/api/v1/admin/invitations", func(h *Handler, w http.ResponseWriter, r *http.Request, _ adminops.Actor) error {
		inv, err := h.cfg.Admin.Invitations()
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"invitations": inv})
		return nil
	}},
	{"POST", "/api/v1/admin/invitations/approve", (*Handler).adminApproveInvitation},
	{"GET", "/api/v1/admin/rooms", func(h *Handler, w http.ResponseWriter, r *http.Request, _ adminops.Actor) error {
		rooms, total, err := h.cfg.Admin.Rooms()
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"rooms": rooms, "total": total})
		return nil
	}},
	{"GET", "/api/v1/admin/audit", func(h *Handler, w http.ResponseWriter, r *http.Request, _ adminops.Actor) error {
		entries, err := h.auditEntries(r)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "actions": adminops.Actions})
		return nil
	}},
	{"GET", "/api/v1/admin/audit.csv", (*Handler).adminAuditCSV},
}

// AdminRoutes lists the admin page's endpoints as "METHOD path".
func AdminRoutes() []string {
	out := make([]string, len(adminRoutes))
	for i, rt := range adminRoutes {
		out[i] = rt.Method + " " + rt.Path
	}
	return out
}

func (h *Handler) mountAdmin(m *http.ServeMux) {
	for _, rt := range adminRoutes {
		m.HandleFunc(rt.Method+" "+rt.Path, h.adminOnly(rt.handle))
	}
}

// adminOnly adapts an admin page handler: a session of an administrator,
// or nothing.
func (h *Handler) adminOnly(fn func(*Handler, http.ResponseWriter, *http.Request, adminops.Actor) error) http.HandlerFunc {
	return h.authed(func(w http.ResponseWriter, r *http.Request, ident account.Identity) error {
		if !ident.User.Admin || ident.User.External {
			e := proto.Errorf(proto.CodeForbidden, "administrators only")
			e.Detail = "admin_only"
			return e
		}
		if h.cfg.Admin == nil {
			return proto.Errorf(proto.CodeUnavailable, "the admin page is not available on this node")
		}
		return fn(h, w, r, adminops.Actor{User: ident.User.ID, Addr: h.clientIP(r)})
	})
}

func (h *Handler) adminSeries(w http.ResponseWriter, r *http.Request, _ adminops.Actor) error {
	minutes := 60
	if v := r.URL.Query().Get("minutes"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 24*60 {
			return proto.Errorf(proto.CodeBadRequest, "minutes: a number from 1 to 1440")
		}
		minutes = n
	}
	s, err := h.cfg.Admin.Series(minutes)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

// adminReset signs an account out and makes a reset link: mailed when
// the node has a relay (the page then never sees it), shown otherwise.
func (h *Handler) adminReset(w http.ResponseWriter, r *http.Request, a adminops.Actor) error {
	email, err := emailBody(w, r)
	if err != nil {
		return err
	}
	link, err := h.cfg.Admin.ResetPassword(r.Context(), a, email)
	if err != nil {
		return err
	}
	if h.cfg.Admin.HasMailer() {
		writeJSON(w, http.StatusOK, map[string]any{"mailed": true})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"link": link})
	return nil
}

func (h *Handler) adminApproveInvitation(w http.ResponseWriter, r *http.Request, a adminops.Actor) error {
	email, err := emailBody(w, r)
	if err != nil {
		return err
	}
	link, err := h.cfg.Admin.ApproveInvitation(r.Context(), a, email)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"link": link})
	return nil
}

func (h *Handler) auditEntries(r *http.Request) ([]adminops.Entry, error) {
	f, err := adminops.ParseFilter(r.URL.Query())
	if err != nil {
		return nil, err
	}
	return h.cfg.Admin.Audit(f)
}

// adminAuditCSV downloads the selected entries as a CSV file.
func (h *Handler) adminAuditCSV(w http.ResponseWriter, r *http.Request, _ adminops.Actor) error {
	entries, err := h.auditEntries(r)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := adminops.WriteCSV(&b, entries); err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/csv; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Disposition", `attachment; filename="relais-audit-`+time.Now().UTC().Format("2006-01-02")+`.csv"`)
	w.Write(b.Bytes())
	return nil
}
