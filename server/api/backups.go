package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"relais/server/account"
	"relais/server/chat"
	"relais/server/proto"
)

// Encrypted key backups (chat/backup.go): opaque ciphertext per user, too
// big for websocket frames, so plain HTTP with raw bodies.
//
//	GET    /api/v1/backups          {"backups":[{"name","size","updated"}]}
//	PUT    /api/v1/backups/{name}   application/octet-stream body → 204
//	GET    /api/v1/backups/{name}   application/octet-stream
//	DELETE /api/v1/backups/{name}   204

func (h *Handler) listBackups(w http.ResponseWriter, r *http.Request, id account.Identity) error {
	list, err := h.cfg.Chat.Backups(id.User.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"backups": list})
	return nil
}

func (h *Handler) putBackup(w http.ResponseWriter, r *http.Request, id account.Identity) error {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/octet-stream" {
		return proto.Errorf(proto.CodeUnsupportedMedia, "send application/octet-stream")
	}
	if !chat.ValidBackupName(r.PathValue("name")) {
		return proto.Errorf(proto.CodeBadRequest, "invalid backup name")
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, chat.MaxBackupSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return proto.Errorf(proto.CodeTooLarge, "a backup is at most %d bytes", chat.MaxBackupSize)
		}
		if pe := proto.AsError(err); pe != nil {
			return pe // request_timeout
		}
		return proto.Errorf(proto.CodeBadRequest, "reading the body: %v", err)
	}
	if err := h.cfg.Chat.PutBackup(r.Context(), id.User.ID, r.PathValue("name"), data); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) getBackup(w http.ResponseWriter, r *http.Request, id account.Identity) error {
	data, err := h.cfg.Chat.Backup(id.User.ID, r.PathValue("name"))
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Length", strconv.Itoa(len(data)))
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(data) // the status is sent: a failed write is the client's drop
	return nil
}

func (h *Handler) deleteBackup(w http.ResponseWriter, r *http.Request, id account.Identity) error {
	if err := h.cfg.Chat.DeleteBackup(r.Context(), id.User.ID, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
