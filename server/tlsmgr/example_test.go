package tlsmgr_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"relais/server/tlsmgr"
)

// Example shows how a node wires a Manager: listeners bound first, the
// port-80 handler, the HTTPS server with HSTS, Status on the health
// endpoint, Reload on SIGHUP, and the off mode's plain HTTP.
func Example() {
	ctx := context.Background()
	log := slog.Default()
	cfg := tlsmgr.Config{
		Domains: []string{"chat.mairie-exemple.fr"}, // --domain; none: local CA
		DataDir: "/var/lib/relais",
		Logger:  log,
	}
	const httpsAddr, httpAddr = ":443", ":80"

	// Bind before New: in acme mode certmagic would otherwise bind the
	// challenge ports itself.
	httpsLn, err := net.Listen("tcp", httpsAddr)
	if err != nil {
		return
	}
	var httpLn net.Listener
	if cfg.Mode != tlsmgr.ModeOff {
		if httpLn, err = net.Listen("tcp", httpAddr); err != nil {
			return
		}
	}
	m, err := tlsmgr.New(ctx, cfg)
	if err != nil {
		return
	}
	defer m.Close()

	app := http.NewServeMux()
	app.HandleFunc("GET /healthz/tls", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(m.Status())
	})

	srv := &http.Server{Handler: m.HSTS(app), TLSConfig: m.TLSConfig(), ReadHeaderTimeout: 10 * time.Second}
	if srv.TLSConfig == nil { // off mode: plain HTTP behind a proxy
		if !tlsmgr.LoopbackOnly(httpsAddr) {
			log.Warn("TLS is OFF and the node listens beyond loopback: traffic is readable on the network", "addr", httpsAddr)
		}
		go srv.Serve(httpsLn)
	} else {
		go srv.ServeTLS(httpsLn, "", "") // certificates come from TLSConfig
		go (&http.Server{Handler: m.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}).Serve(httpLn)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			m.Reload() // files mode: re-read the pair; errors are logged and in Status
		}
	}()
}
