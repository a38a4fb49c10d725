package api

import (
	"net/http"
	"time"

	"relais/server/account"
	"relais/server/httpx"
	"relais/server/proto"
)

func (h *Handler) register(w http.ResponseWriter, r *http.Request) error {
	var req proto.RegisterRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	status, err := h.cfg.Accounts.Register(r.Context(), req, h.clientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": status})
	return nil
}

func (h *Handler) verify(w http.ResponseWriter, r *http.Request) error {
	var req proto.VerifyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := h.cfg.Accounts.Verify(r.Context(), req, h.clientIP(r)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "verified"})
	return nil
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) error {
	var req proto.LoginRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Device == "" {
		req.Device = r.UserAgent()
	}
	l, err := h.cfg.Accounts.Login(r.Context(), req, h.clientIP(r))
	if err != nil {
		return err
	}
	h.signedIn(w, l, req.Bearer)
	return nil
}

func (h *Handler) signedIn(w http.ResponseWriter, l account.Login, bearer bool) {
	ans := proto.LoginAnswer{Me: meOf(l.User, l.Session.DeviceID)}
	if bearer {
		ans.Token = l.Token
	} else {
		h.setCookie(w, l.Token, h.cfg.Accounts.SessionLifetime())
	}
	writeJSON(w, http.StatusOK, ans)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	token, _ := httpx.TokenFrom(r)
	err := h.cfg.Accounts.Logout(r.Context(), token)
	h.setCookie(w, "", -time.Second)
	if err != nil && err != account.ErrUnauthorized {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) me(w http.ResponseWriter, r *http.Request, id account.Identity) error {
	writeJSON(w, http.StatusOK, meOf(id.User, id.Session.DeviceID))
	return nil
}

func (h *Handler) updateMe(w http.ResponseWriter, r *http.Request, id account.Identity) error {
	var req proto.DisplayNameRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := h.cfg.Accounts.SetDisplayName(r.Context(), id.User.ID, req.DisplayName); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deviceInfo is one entry of GET /api/v1/devices.
type deviceInfo struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Current  bool      `json:"current"`
}

func (h *Handler) devices(w http.ResponseWriter, r *http.Request, id account.Identity) error {
	devices, err := h.cfg.Accounts.Devices(id.User.ID)
	if err != nil {
		return err
	}
	out := make([]deviceInfo, 0, len(devices))
	for _, d := range devices {
		out = append(out, deviceInfo{ID: d.DeviceID, Name: d.Name, Created: d.Created, LastSeen: d.LastSeen, Current: d.DeviceID == id.Session.DeviceID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
	return nil
}

func (h *Handler) revokeDevice(w http.ResponseWriter, r *http.Request, id account.Identity) error {
	if err := h.cfg.Accounts.RevokeDevice(r.Context(), id.User.ID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) renameDevice(w http.ResponseWriter, r *http.Request, id account.Identity) error {
	var req proto.DeviceRename
	if err := decode(w, r, &req); err != nil {
		return err
	}
	name, err := h.cfg.Accounts.RenameDevice(r.Context(), id.User.ID, r.PathValue("id"), req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, proto.DeviceRename{Name: name})
	return nil
}

func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request, id account.Identity) error {
	var req proto.PasswordChange
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := h.cfg.Accounts.ChangePassword(r.Context(), id, req.Current, req.New, h.clientIP(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) requestReset(w http.ResponseWriter, r *http.Request) error {
	var req proto.ResetRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := h.cfg.Accounts.RequestReset(r.Context(), req.Email, h.clientIP(r)); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "sent_if_known"})
	return nil
}

func (h *Handler) confirmReset(w http.ResponseWriter, r *http.Request) error {
	var req proto.ResetConfirm
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := h.cfg.Accounts.ConfirmReset(r.Context(), req.Token, req.Password, h.clientIP(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) renew(w http.ResponseWriter, r *http.Request) error {
	var req proto.RenewRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := h.cfg.Accounts.Renew(r.Context(), req.Token, h.clientIP(r)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "renewed"})
	return nil
}

func (h *Handler) setupStatus(w http.ResponseWriter, r *http.Request) error {
	needed, err := h.cfg.Accounts.SetupNeeded()
	if err != nil {
		return err
	}
	ans := map[string]any{"needed": needed, "domains": h.cfg.Accounts.Domains()}
	if needed && h.cfg.Health != nil {
		if fp, ok := h.cfg.Health()["ca_fingerprint"]; ok {
			ans["ca_fingerprint"] = fp
		}
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

func (h *Handler) setup(w http.ResponseWriter, r *http.Request) error {
	var req proto.SetupRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := h.cfg.Accounts.Setup(r.Context(), req, h.clientIP(r)); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"status": "created"})
	return nil
}

func (h *Handler) peekInvitation(w http.ResponseWriter, r *http.Request) error {
	info, err := h.cfg.Accounts.PeekInvitation(r.URL.Query().Get("token"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (h *Handler) acceptInvitation(w http.ResponseWriter, r *http.Request) error {
	var req proto.AcceptRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	l, err := h.cfg.Accounts.AcceptInvitation(r.Context(), req, r.UserAgent(), h.clientIP(r))
	if err != nil {
		return err
	}
	h.signedIn(w, l, false)
	return nil
}

func (h *Handler) publicConfig(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"name":    h.cfg.Name,
		"domains": h.cfg.Accounts.Domains(),
		"mail":    h.cfg.Accounts.HasMailer(),
	})
	return nil
}

// health answers whether the node is up. The details (version, node id,
// sizes, certificate state) help an attacker choose an exploit, so only an
// administrator's session gets them; operators also read them on the admin
// socket.
func (h *Handler) health(w http.ResponseWriter, r *http.Request) error {
	ans := map[string]any{"status": "ok"}
	if h.cfg.Health != nil {
		if token, _ := httpx.TokenFrom(r); token != "" {
			if ident, err := h.cfg.Accounts.Resolve(token); err == nil && ident.User.Admin {
				ans = h.cfg.Health()
			}
		}
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}
