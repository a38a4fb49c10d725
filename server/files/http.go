package files

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"relais/server/blob"
	"relais/server/chat"
	"relais/server/httpx"
	"relais/server/id"
	"relais/server/media"
	"relais/server/proto"
	"relais/server/store"
)

// handler serves /api/v1/media/. Every endpoint needs a session (cookie
// or bearer); the api package has already refused cross-site
// state-changing requests.
type handler struct {
	s   *Service
	log *slog.Logger
	mux *http.ServeMux
}

// Handler returns the HTTP endpoints of attachments, to mount at
// /api/v1/media/ (api.Config.Media). See PROTOCOL.md, "Files".
func (s *Service) Handler() http.Handler {
	h := &handler{s: s, log: s.log, mux: http.NewServeMux()}
	// Every endpoint needs a session: the table holds them all, and each
	// is mounted through authed.
	for pattern, fn := range map[string]func(http.ResponseWriter, *http.Request, chat.Actor) error{
		"POST /api/v1/media/uploads":             h.begin,
		"GET /api/v1/media/uploads/{id}":         h.status,
		"PUT /api/v1/media/uploads/{id}":         h.chunk,
		"DELETE /api/v1/media/uploads/{id}":      h.abort,
		"POST /api/v1/media/uploads/{id}/finish": h.finish,
		"GET /api/v1/media/files/{id}":           h.download,
		"GET /api/v1/media/files/{id}/thumb":     h.thumb,
		"GET /api/v1/media/files/{id}/state":     h.state,
		"GET /api/v1/media/scanner-key":          h.scannerKey,
		"/api/v1/media/": func(http.ResponseWriter, *http.Request, chat.Actor) error {
			return proto.Errorf(proto.CodeNotFound, "no such endpoint")
		},
	} {
		h.mux.HandleFunc(pattern, h.authed(fn))
	}
	return h
}

var _ http.Handler = (*handler)(nil)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// authed resolves the session and answers errors through the one mapper
// (httpx), with the errors of package media given their protocol code.
func (h *handler) authed(fn func(http.ResponseWriter, *http.Request, chat.Actor) error) http.HandlerFunc {
	return httpx.Authed(h.log, h.actor, func(w http.ResponseWriter, r *http.Request, a chat.Actor) error {
		return wireError(fn(w, r, a))
	})
}

// actor is the signed-in caller of token.
func (h *handler) actor(token string) (chat.Actor, error) {
	ident, err := h.s.accounts.Resolve(token)
	if err != nil {
		return chat.Actor{}, err
	}
	return chat.Actor{User: ident.User.ID, Device: ident.Session.DeviceID, External: ident.User.External}, nil
}

// wireError gives the errors of packages media and blob their protocol
// code.
func wireError(err error) error {
	if proto.AsError(err) != nil {
		return err
	}
	if code := media.ErrorCode(err); code != "" {
		return proto.Errorf(code, "%s", err.Error())
	}
	return err
}

// setOffset reports an upload's offset in the Upload-Offset header.
func setOffset(w http.ResponseWriter, offset int64) {
	w.Header().Set("Upload-Offset", strconv.FormatInt(offset, 10))
}

func (h *handler) begin(w http.ResponseWriter, r *http.Request, a chat.Actor) error {
	if err := httpx.RequireJSON(r); err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBeginBody+1))
	if err != nil {
		return proto.Errorf(proto.CodeBadRequest, "reading the request: %v", err)
	}
	req, err := parseBegin(body)
	if err != nil {
		return err
	}
	st, err := h.s.Begin(r.Context(), a, req)
	if err != nil {
		return err
	}
	setOffset(w, 0)
	httpx.WriteJSON(w, http.StatusCreated, st)
	return nil
}

func (h *handler) status(w http.ResponseWriter, r *http.Request, a chat.Actor) error {
	st, err := h.s.Status(a.User, r.PathValue("id"))
	if err != nil {
		return err
	}
	setOffset(w, st.Offset)
	httpx.WriteJSON(w, http.StatusOK, st)
	return nil
}

func (h *handler) chunk(w http.ResponseWriter, r *http.Request, a chat.Actor) error {
	offset, err := parseOffset(r.URL.Query().Get("offset"))
	if err != nil {
		return err
	}
	// The api package bounds the chunk's arrival: large chunks on slow
	// links are fine, a chunk that trickles or stops ends.
	id := r.PathValue("id")
	n, err := h.s.WriteChunk(r.Context(), a.User, id, offset, r.ContentLength, r.Body)
	var oe *blob.OffsetError
	switch {
	case errors.As(err, &oe):
		setOffset(w, oe.Offset)
		return proto.Errorf(proto.CodeOffsetMismatch, "this upload stands at offset %d: send from there", oe.Offset)
	case errors.Is(err, blob.ErrInterrupted), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		setOffset(w, n)
		return proto.Errorf(proto.CodeInterrupted, "the chunk ended early at offset %d: resume from there", n)
	case errors.Is(err, blob.ErrBusy):
		setOffset(w, n)
		return err
	case err != nil:
		return err
	}
	st, err := h.s.Status(a.User, id)
	if err != nil {
		return err
	}
	setOffset(w, n)
	httpx.WriteJSON(w, http.StatusOK, proto.UploadState{ID: id, Offset: n, Size: st.Size})
	return nil
}

func (h *handler) abort(w http.ResponseWriter, r *http.Request, a chat.Actor) error {
	if err := h.s.Abort(a.User, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) finish(w http.ResponseWriter, r *http.Request, a chat.Actor) error {
	f, err := h.s.Finish(r.Context(), a, r.PathValue("id"))
	if errors.Is(err, blob.ErrIncomplete) {
		if st, serr := h.s.blobs.Status(r.PathValue("id")); serr == nil {
			setOffset(w, st.Offset)
		}
	}
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"file": f})
	return nil
}

// readable loads a file the actor may see: a member of its room (joined),
// and, before the file is posted, only its uploader.
func (h *handler) readable(r *http.Request, a chat.Actor) (store.File, store.Blob, error) {
	fileID := r.PathValue("id")
	var f store.File
	var b store.Blob
	noFile := proto.Errorf(proto.CodeNotFound, "no such file")
	if !id.Valid(id.File, fileID) {
		return f, b, noFile
	}
	err := h.s.db.View(func(tx *store.Tx) error {
		var err error
		f, err = tx.File(fileID)
		if errors.Is(err, store.ErrNotFound) {
			return noFile
		}
		if err != nil {
			return err
		}
		if _, err := chat.Access(tx, a, f.Room, chat.ActRead); err != nil {
			return err
		}
		if f.Seq == 0 && f.Owner != a.User {
			return noFile
		}
		b, err = tx.Blob(f.Hash)
		return err
	})
	return f, b, err
}

// servable loads a readable file whose content the actor may download:
// not quarantined (410), and not pending its scan unless theirs (403).
func (h *handler) servable(r *http.Request, a chat.Actor) (store.File, store.Blob, error) {
	f, b, err := h.readable(r, a)
	switch {
	case err != nil:
		return f, b, err
	case b.State == store.BlobQuarantined:
		return f, b, quarantinedError(b)
	case b.State == store.BlobPending && f.Owner != a.User:
		return f, b, proto.Errorf(proto.CodeScanPending, "this file is waiting for the antivirus")
	}
	return f, b, nil
}

func (h *handler) download(w http.ResponseWriter, r *http.Request, a chat.Actor) error {
	f, b, err := h.servable(r, a)
	if err != nil {
		return err
	}
	return h.serve(w, r, f.Hash, f.Name, b.Mime, proto.Errorf(proto.CodeGone, "this file's content is gone"))
}

// serve sends the blob hash, or answers missing when its bytes are gone.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, hash, name, ctype string, missing error) error {
	err := media.ServeBlob(w, r, h.s.blobs, hash, name, ctype)
	if errors.Is(err, blob.ErrNotFound) {
		return missing
	}
	return err
}

func (h *handler) thumb(w http.ResponseWriter, r *http.Request, a chat.Actor) error {
	_, b, err := h.servable(r, a)
	if err != nil {
		return err
	}
	if b.Thumb == "" {
		return proto.Errorf(proto.CodeNotFound, "this file has no thumbnail")
	}
	name := "thumb.jpg"
	if b.ThumbMime == "image/png" {
		name = "thumb.png"
	}
	return h.serve(w, r, b.Thumb, name, b.ThumbMime, proto.Errorf(proto.CodeNotFound, "this file has no thumbnail"))
}

func (h *handler) state(w http.ResponseWriter, r *http.Request, a chat.Actor) error {
	f, b, err := h.readable(r, a)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, proto.FileInfo{Room: f.Room, Seq: f.Seq, File: fileMeta(f, b)})
	return nil
}

func (h *handler) scannerKey(w http.ResponseWriter, r *http.Request, _ chat.Actor) error {
	info := proto.ScannerKey{Enabled: h.s.scanEnc}
	if h.s.scanEnc {
		ms := h.s.scanKey.Suite()
		info.PublicKey, info.Info = h.s.scanKey.PublicKey(), "relais media scanner v1"
		info.Suite = &proto.HPKESuite{KEM: ms.KEM, KDF: ms.KDF, AEAD: ms.AEAD}
	}
	httpx.WriteJSON(w, http.StatusOK, info)
	return nil
}
