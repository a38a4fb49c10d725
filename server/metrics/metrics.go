// Package metrics exports the node's counters to Prometheus, on a
// registry of the node's own, and to the admin page (Snapshot).
//
// Each fact has one owner: the package that does the work counts it, with
// an atomic add and no allocation (ws: sessions and frames; chat: sends
// and their ack latency; files: uploads and scans; store: the writer's
// commits, through Options.ObserveCommit), and this package reads those
// counters when scraped. It owns only what the node itself measures: the
// connections of the public listener (ConnState) and the store's commit
// histograms.
package metrics

import (
	"net"
	"net/http"
	"relais/server/fed"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"relais/server/chat"
	"relais/server/files"
	"relais/server/stats"
	"relais/server/store"
	"relais/server/tlsmgr"
	"relais/server/ws"
)

// Sources are the running parts whose counters are exported. A nil part
// exports nothing.
type Sources struct {
	WS    *ws.Server
	Chat  *chat.Service
	DB    *store.DB
	Files *files.Service
	TLS   *tlsmgr.Manager
	// Fed is federation; nil when it is off.
	Fed *fed.Service
}

// Metrics is one node's set of metrics.
type Metrics struct {
	reg     *prometheus.Registry
	src     atomic.Pointer[Sources]
	started time.Time

	accepted, httpOpen atomic.Int64
	commitSeconds      *stats.Histogram
	commitWrites       *stats.Histogram
}

// New returns the metrics of a node starting now, registered on a
// registry of their own with the Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{
		reg:           prometheus.NewRegistry(),
		started:       time.Now(),
		commitSeconds: stats.NewHistogram(stats.ExpBounds(0.0001, 2, 16)...),
		commitWrites:  stats.NewHistogram(stats.ExpBounds(1, 2, 12)...),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), (*collector)(m))
	return m
}

// SetSources makes the collector read the given parts from now on.
func (m *Metrics) SetSources(s Sources) { m.src.Store(&s) }

// Registry is the node's registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveCommit records one commit of the store's writer
// (store.Options.ObserveCommit).
func (m *Metrics) ObserveCommit(writes int, took time.Duration) {
	m.commitSeconds.Observe(took.Seconds())
	m.commitWrites.Observe(float64(writes))
}

// ConnState follows the public listener's connections
// (http.Server.ConnState). A connection upgraded to a websocket leaves
// the HTTP count and becomes a session.
func (m *Metrics) ConnState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		m.accepted.Add(1)
		m.httpOpen.Add(1)
	case http.StateHijacked, http.StateClosed:
		m.httpOpen.Add(-1)
	}
}

// Snapshot is what the admin page reads: the counters since start and
// the gauges now.
type Snapshot struct {
	At time.Time
	// ConnectionsAccepted counts TCP connections of the public listener.
	ConnectionsAccepted uint64
	// Sessions is the number of websocket sessions open now.
	Sessions int
	// SessionsOpened counts websocket sessions since start.
	SessionsOpened uint64
	// MessagesSent counts acknowledged sends since start.
	MessagesSent uint64
	// FramesIn and FramesOut count websocket frames since start.
	FramesIn, FramesOut uint64
}

// Snapshot reads the counters now.
func (m *Metrics) Snapshot() Snapshot {
	s := Snapshot{At: time.Now(), ConnectionsAccepted: uint64(m.accepted.Load())}
	src := m.src.Load()
	if src == nil {
		return s
	}
	if src.WS != nil {
		st := src.WS.Stats()
		s.Sessions = src.WS.Sessions()
		s.SessionsOpened = st.Opened.Load()
		st.FramesIn.Each(func(_ string, n uint64) { s.FramesIn += n })
		st.FramesOut.Each(func(_ string, n uint64) { s.FramesOut += n })
	}
	if src.Chat != nil {
		s.MessagesSent = src.Chat.Stats().Sends.Get(chat.SendAcked)
	}
	return s
}

// The exported metrics. Counters end in _total; a labelled counter shows
// only the label values seen, so that no series is always zero.
var (
	dUptime      = desc("relais_uptime_seconds", "Time since the node started.")
	dAccepted    = desc("relais_connections_accepted_total", "TCP connections accepted by the public listener.")
	dHTTPOpen    = desc("relais_http_connections_open", "Connections of the public listener open now, websockets excluded (see relais_sessions).")
	dSessions    = desc("relais_sessions", "Websocket sessions connected now.")
	dOpened      = desc("relais_sessions_opened_total", "Websocket sessions opened.")
	dFramesIn    = desc("relais_frames_in_total", "Websocket frames received, by type (invalid: undecodable).", "type")
	dFramesOut   = desc("relais_frames_out_total", "Websocket frames sent, by type.", "type")
	dSends       = desc("relais_sends_total", "Sends (messages, edits, reactions, encrypted payloads), by outcome.", "outcome")
	dAckSeconds  = desc("relais_send_ack_seconds", "Time from a send's arrival to its ack, after the commit reached the disk.")
	dQueued      = desc("relais_fanout_queued_frames", "Frames waiting in all sessions' outgoing queues now.")
	dDeepest     = desc("relais_fanout_queue_max_frames", "Frames waiting in the longest session queue now.")
	dSlow        = desc("relais_slow_consumer_closes_total", "Sessions closed because their outgoing queue filled up.")
	dCommitSecs  = desc("relais_store_commit_seconds", "Duration of the store writer's commits, fsync included.")
	dCommitBatch = desc("relais_store_commit_batch_writes", "Writes carried by each commit of the store writer (group commit).")
	dStoreBytes  = desc("relais_store_bytes", "Size of the store file.")
	dUploads     = desc("relais_uploads_total", "Finished uploads, by outcome.", "outcome")
	dScans       = desc("relais_scans_total", "Antivirus scans, by result.", "result")
	dFedUp       = desc("relais_federation_link_up", "1 while the link to a peered administration is up, 0 otherwise.", "peer")
	dFedPending  = desc("relais_federation_pending_requests", "Requests to a peered administration waiting for its answer.", "peer")
	dFedContact  = desc("relais_federation_last_contact_timestamp_seconds", "When a peered administration was last heard from (Unix time).", "peer")
	dFedLag      = desc("relais_federation_lag_events", "Events of a peer's rooms this node's copies do not hold yet.", "peer")
	dCertExpiry  = desc("relais_tls_certificate_expiry_timestamp_seconds", "When the earliest-expiring served certificate expires (Unix time).", "mode")
)

var allDescs = []*prometheus.Desc{dUptime, dAccepted, dHTTPOpen, dSessions, dOpened, dFramesIn, dFramesOut, dSends,
	dAckSeconds, dQueued, dDeepest, dSlow, dCommitSecs, dCommitBatch, dStoreBytes, dUploads, dScans, dCertExpiry,
	dFedUp, dFedPending, dFedContact, dFedLag}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// collector reads the counters at each scrape.
type collector Metrics

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	byName := func(d *prometheus.Desc, n *stats.Names) {
		n.Each(func(name string, v uint64) { counter(d, v, name) })
	}
	histogram := func(d *prometheus.Desc, h *stats.Histogram) {
		s := h.Snapshot()
		ch <- prometheus.MustNewConstHistogram(d, s.Count, s.Sum, s.Buckets)
	}
	gauge(dUptime, time.Since(m.started).Seconds())
	counter(dAccepted, uint64(m.accepted.Load()))
	gauge(dHTTPOpen, float64(m.httpOpen.Load()))
	histogram(dCommitSecs, m.commitSeconds)
	histogram(dCommitBatch, m.commitWrites)
	src := m.src.Load()
	if src == nil {
		return
	}
	if src.WS != nil {
		st := src.WS.Stats()
		gauge(dSessions, float64(src.WS.Sessions()))
		counter(dOpened, st.Opened.Load())
		byName(dFramesIn, st.FramesIn)
		byName(dFramesOut, st.FramesOut)
		total, deepest := src.WS.QueueDepths()
		gauge(dQueued, float64(total))
		gauge(dDeepest, float64(deepest))
		if n := st.SlowConsumers.Load(); n > 0 {
			counter(dSlow, n)
		}
	}
	if src.Chat != nil {
		st := src.Chat.Stats()
		byName(dSends, st.Sends)
		histogram(dAckSeconds, st.AckLatency)
	}
	if src.DB != nil {
		gauge(dStoreBytes, float64(src.DB.Size()))
	}
	if src.Files != nil {
		st := src.Files.Stats()
		byName(dUploads, st.Uploads)
		byName(dScans, st.Scans)
	}
	if src.Fed != nil {
		// One series per peer: peers are few, and an operator adds each.
		if peers, err := src.Fed.List(); err == nil {
			for _, p := range peers {
				up := 0.0
				if p.State == fed.LinkUp {
					up = 1
				}
				gauge(dFedUp, up, string(p.ID))
				gauge(dFedPending, float64(p.Pending), string(p.ID))
				if !p.LastContact.IsZero() {
					gauge(dFedContact, float64(p.LastContact.Unix()), string(p.ID))
				}
				if p.Lag != nil {
					gauge(dFedLag, float64(*p.Lag), string(p.ID))
				}
			}
		}
	}
	if src.TLS != nil {
		if st := src.TLS.Status(); !st.NotAfter.IsZero() {
			gauge(dCertExpiry, float64(st.NotAfter.Unix()), st.Mode)
		}
	}
}
