package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/config"
	"relais/server/files"
	"relais/server/media/clamd/clamdtest"
	"relais/server/node"
	"relais/server/proto"
	"relais/server/tlsmgr"
)

// scrape is one reading of a node's /metrics, parsed with Prometheus's
// own text parser.
type scrape map[string]*dto.MetricFamily

func scrapeNode(t testing.TB, n *nodetest.Node) scrape {
	t.Helper()
	resp, err := http.Get("http://" + n.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the series name{label=value} (counter, gauge, or
// a histogram's count), and whether it exists.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func (s scrape) v(name string, labels ...string) float64 {
	v, _ := s.value(name, labels...)
	return v
}

// recorder keeps every frame a connection receives.
type recorder struct {
	mu sync.Mutex
	fs []client.Frame
}

func record(conn *client.Conn) *recorder {
	r := &recorder{}
	go func() {
		for f := range conn.Frames() {
			r.mu.Lock()
			r.fs = append(r.fs, f)
			r.mu.Unlock()
		}
	}()
	return r
}

// wait waits until count of the frames received satisfy pred.
func (r *recorder) wait(t testing.TB, what string, count int, pred func(client.Frame) bool) {
	t.Helper()
	nodetest.CheckFor(t, 20*time.Second, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		seen := 0
		for _, f := range r.fs {
			if pred(f) {
				seen++
			}
		}
		if seen < count {
			return fmt.Errorf("%s: %d of %d frames received", what, seen, count)
		}
		return nil
	})
}

// TestMetricsCountRealTraffic scrapes a real node's metrics listener
// before and after real traffic (messages, a bad frame, uploads scanned by
// a real clamd) and checks that each counter moved by what was done.
func TestMetricsCountRealTraffic(t *testing.T) {
	av := clamdtest.Start(t, clamdtest.Options{})
	n := nodetest.Start(t,
		nodetest.WithConfig(func(c *config.Config) { c.MetricsListen = "127.0.0.1:0"; c.Clamd = av.UnixURL() }),
		nodetest.WithOptions(func(o *node.Options) {
			o.Files = files.Tuning{RetryEvery: 100 * time.Millisecond, ClamdTimeout: 5 * time.Second}
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice, bob := n.NewUser("Alice Martin"), n.NewUser("Bob Durand")
	ac, bc := nodetest.Synced(t, ctx, alice), nodetest.Synced(t, ctx, bob)
	ar, br := record(ac), record(bc)
	room := nodetest.Forum(t, ctx, ac, "Conseil municipal")
	if err := bc.Call(ctx, proto.TJoin, map[string]any{"room": room}, nil); err != nil {
		t.Fatal(err)
	}
	// A first message, received by both: what the join sent before it is
	// delivered too, so the baseline below has nothing in flight.
	warm, err := ac.Send(ctx, ac.NextID(), room, "premier")
	if err != nil {
		t.Fatal(err)
	}
	isEv := func(seq uint64) func(client.Frame) bool {
		return func(f client.Frame) bool { return f.T == proto.TEvent && f.Room == room && f.Seq == seq }
	}
	ar.wait(t, "alice's first message", 1, isEv(warm.Seq))
	br.wait(t, "bob's first message", 1, isEv(warm.Seq))

	before := scrapeNode(t, n)
	const sends = 5
	var last uint64
	for i := range sends {
		ack, err := ac.Send(ctx, ac.NextID(), room, fmt.Sprintf("message %d", i))
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Seq
	}
	if err := ac.WriteRaw(ctx, []byte("not a frame")); err != nil {
		t.Fatal(err)
	}
	ar.wait(t, "the error frame", 1, func(f client.Frame) bool { return f.T == proto.TError })
	if _, err := alice.UploadFile(ctx, proto.UploadRequest{Room: room, Name: "ordre du jour.txt"}, []byte("Ordre du jour : budget, voirie.\n"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.UploadFile(ctx, proto.UploadRequest{Room: room, Name: "note.txt"}, clamdtest.EICAR(), 0); err != nil {
		t.Fatal(err)
	}
	ar.wait(t, "the last message (alice)", 1, isEv(last))
	br.wait(t, "the last message (bob)", 1, isEv(last))
	ar.wait(t, "both verdicts", 2, func(f client.Frame) bool { return f.T == proto.TFileState })
	after := scrapeNode(t, n)

	for _, tc := range []struct {
		name   string
		labels []string
		delta  float64
	}{
		{"relais_sends_total", []string{"outcome", "acked"}, sends},
		{"relais_send_ack_seconds", nil, sends},
		{"relais_frames_in_total", []string{"type", "send"}, sends},
		{"relais_frames_in_total", []string{"type", "invalid"}, 1},
		{"relais_frames_out_total", []string{"type", "ack"}, sends},
		{"relais_frames_out_total", []string{"type", "ev"}, 2 * sends}, // to alice and to bob
		{"relais_frames_out_total", []string{"type", "error"}, 1},
		{"relais_frames_out_total", []string{"type", "file_state"}, 2},
		{"relais_uploads_total", []string{"outcome", "stored"}, 2},
		{"relais_scans_total", []string{"result", "clean"}, 1},
		{"relais_scans_total", []string{"result", "quarantined"}, 1},
	} {
		got := after.v(tc.name, tc.labels...) - before.v(tc.name, tc.labels...)
		if got != tc.delta {
			t.Errorf("%s%v moved by %v, want %v", tc.name, tc.labels, got, tc.delta)
		}
	}
	// Each send is one write of the store's writer, and more writes
	// (uploads, scans) committed: the group commit's batches carry them.
	writes := func(s scrape) float64 {
		return s["relais_store_commit_batch_writes"].Metric[0].Histogram.GetSampleSum()
	}
	if d := writes(after) - writes(before); d < sends+4 {
		t.Errorf("the store's commits carried %v writes, want at least %d", d, sends+4)
	}
	if after.v("relais_store_commit_seconds") <= before.v("relais_store_commit_seconds") {
		t.Error("no commit counted in relais_store_commit_seconds")
	}
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"relais_sessions", 2},
		{"relais_sessions_opened_total", 2},
		{"relais_fanout_queued_frames", 0},
	} {
		if got := after.v(tc.name); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	if after.v("relais_store_bytes") != float64(n.DB.Size()) {
		t.Errorf("relais_store_bytes = %v, want %d", after.v("relais_store_bytes"), n.DB.Size())
	}
	// Every HTTP request of this test (registrations, uploads, scrapes
	// excluded: another listener) came on connections the listener counted.
	if after.v("relais_connections_accepted_total") < 2 {
		t.Errorf("connections accepted: %v", after.v("relais_connections_accepted_total"))
	}
	if _, ok := after.value("relais_tls_certificate_expiry_timestamp_seconds"); ok {
		t.Error("a certificate expiry is exported by a node without TLS")
	}
	if _, ok := after.value("relais_slow_consumer_closes_total"); ok {
		t.Error("relais_slow_consumer_closes_total exported while always zero")
	}
	for name, f := range after {
		if strings.HasPrefix(name, "relais_") && f.GetType() == dto.MetricType_COUNTER {
			for _, m := range f.Metric {
				if m.Counter.GetValue() == 0 {
					t.Errorf("%s%v is exported at zero", name, m.Label)
				}
			}
		}
	}
}

// TestMetricsCertificateExpiry: a node serving TLS exports when its
// certificate expires.
func TestMetricsCertificateExpiry(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) {
		c.MetricsListen = "127.0.0.1:0"
		c.TLS = tlsmgr.ModeLocal
	}))
	got := scrapeNode(t, n).v("relais_tls_certificate_expiry_timestamp_seconds", "mode", tlsmgr.ModeLocal)
	want := n.TLS.Status().NotAfter
	if want.IsZero() || got != float64(want.Unix()) {
		t.Fatalf("certificate expiry %v, want %v (%v)", got, want.Unix(), want)
	}
}

// TestMetricsHealthzAnswersOnlyStatus: with a metrics listener, the public
// listener still answers /healthz with the status alone and serves no
// metrics.
func TestMetricsHealthzAnswersOnlyStatus(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.MetricsListen = "127.0.0.1:0" }))
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/healthz", http.StatusOK, `{"status":"ok"}`},
		{"/metrics", http.StatusNotFound, ""},
	} {
		resp, err := http.Get(n.URL() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || tc.body != "" && strings.TrimSpace(string(b)) != tc.body || strings.Contains(string(b), "relais_") {
			t.Errorf("public %s: %s %q, want %d %q", tc.path, resp.Status, b, tc.status, tc.body)
		}
	}
}

// TestMetricsFederationPeers: a peered administration has its link state
// and last contact in /metrics, named by its administration id; a node
// without federation exports no such series.
func TestMetricsFederationPeers(t *testing.T) {
	metrics := nodetest.WithConfig(func(c *config.Config) { c.MetricsListen = "127.0.0.1:0" })
	a := nodetest.Start(t, nodetest.WithFederation("Ministère A", "a.gouv.fr", true), metrics)
	b := nodetest.Start(t, nodetest.WithFederation("Mairie B", "mairie-b.fr", false), metrics)
	if _, ok := scrapeNode(t, a).value("relais_federation_link_up"); ok {
		t.Fatal("a link state before any peering")
	}
	nodetest.Peer(t, a, b)
	bid := string(b.Fed.Identity().ID)
	nodetest.CheckFor(t, 10*time.Second, func() error {
		s := scrapeNode(t, a)
		if up, ok := s.value("relais_federation_link_up", "peer", bid); !ok || up != 1 {
			return fmt.Errorf("relais_federation_link_up{peer=%s} = %v (%v), want 1", bid, up, ok)
		}
		if at, ok := s.value("relais_federation_last_contact_timestamp_seconds", "peer", bid); !ok || at < float64(time.Now().Add(-time.Minute).Unix()) {
			return fmt.Errorf("last contact %v (%v)", at, ok)
		}
		return nil
	})
	plain := nodetest.Start(t, metrics)
	if _, ok := scrapeNode(t, plain).value("relais_federation_link_up"); ok {
		t.Fatal("a node without federation exports link states")
	}
}
