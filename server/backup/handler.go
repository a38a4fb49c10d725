package backup

import (
	"log/slog"
	"net/http"
	"strconv"

	"relais/server/admin"
)

// Handler serves GET /backup on the admin socket: the payload of an
// archive of src. The size it expects goes in a header before the body; an
// error met after the first byte goes in a trailer, since the status is
// sent by then.
func Handler(src Source, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", admin.BackupContentType)
		w.Header().Set("Trailer", admin.BackupErrorHeader)
		started := false
		st, err := WritePayload(r.Context(), w, src, func(expected int64) {
			w.Header().Set(admin.BackupSizeHeader, strconv.FormatInt(expected, 10))
			w.WriteHeader(http.StatusOK)
			started = true
		})
		if err != nil {
			log.Error("backup failed", "err", err)
			if !started {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set(admin.BackupErrorHeader, err.Error())
			return
		}
		if len(st.Missing) > 0 {
			log.Warn("backup: blobs named by the store were already missing from disk", "blobs", len(st.Missing))
		}
		log.Info("backup taken", "files", st.Files, "blobs", st.Blobs, "bytes", st.Bytes)
	})
}
