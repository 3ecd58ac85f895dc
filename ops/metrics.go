package ops

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/sealpost/sealpost/queue"
)

// maxSeries bounds the label combinations of one metric: past it, new combinations are counted
// under label values "other", so no input can make the registry grow without limit.
const maxSeries = 500

// overflow is the label value of combinations past maxSeries.
const overflow = "other"

// Metrics are sealpost's Prometheus metrics (github.com/prometheus/client_golang), in a registry
// of their own with the Go runtime's and the process's collectors. It is the gateway's Observer
// (outbound.Observer), and QueueObserver gives each spool's. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	accepted, acceptedRcpts, refused, protected *boundedCounter
	protectSeconds                              *boundedHistogram
	delivered, deferred, bounced                *boundedCounter
	deliverySeconds                             *boundedHistogram
	inbound                                     *boundedCounter
	otp                                         *boundedCounter
	keysChosen, revocationUnchecked, wkdLookups *boundedCounter
	wkdPending                                  prometheus.Counter
	evidenceRecords, evidenceCheckpoints        prometheus.Counter
	evidenceCheckpointFailures                  prometheus.Counter
	evidencePruned                              prometheus.Counter
	evidenceSize                                prometheus.Gauge
	evidenceLast                                atomic.Int64 // the newest checkpoint's time, Unix ns
	tsaSeconds                                  prometheus.Histogram
	tsaErrors                                   prometheus.Counter
	certExpiry                                  *prometheus.GaugeVec
	devIdentities                               prometheus.Gauge
	mailboxExpired                              prometheus.Counter

	mu      sync.Mutex
	watched map[string]bool
}

// Histogram bounds, in seconds.
var (
	// protectBuckets: an RSA-2048 signature takes about a millisecond, an external TSA tens to
	// hundreds of milliseconds, a timeout seconds.
	protectBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// deliveryBuckets run from an immediate delivery to the five days of a statement's lifetime;
	// the first ones resolve an OTP's, whose target is 20 ms from the API call to the next hop.
	deliveryBuckets = []float64{.005, .01, .02, .05, .1, .25, .5, 1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 2 * 24 * 3600, 5 * 24 * 3600}
)

// NewMetrics returns the metrics, every counter at zero.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, labels ...string) *boundedCounter {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return &boundedCounter{v: v, seen: newSeries(len(labels))}
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *boundedHistogram {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		reg.MustRegister(v)
		return &boundedHistogram{v: v, seen: newSeries(len(labels))}
	}
	m := &Metrics{
		reg: reg,
		accepted: counter("sealpost_messages_accepted_total",
			"Protected copies queued by the outbound gateway, by class and protection method (smime, pgp, signed).", "class", "method"),
		acceptedRcpts: counter("sealpost_recipients_accepted_total",
			"Recipients of the protected copies queued by the outbound gateway, by class and method.", "class", "method"),
		refused: counter("sealpost_messages_refused_total",
			"MAIL, RCPT and DATA commands the outbound gateway refused, by class (empty before MAIL) and reason.", "class", "reason"),
		protected: counter("sealpost_messages_protected_total",
			"Copies signed, timestamped and (except signed) encrypted, by method.", "method"),
		protectSeconds: histogram("sealpost_protect_duration_seconds",
			"Time to protect one copy (sign, timestamp, encrypt), by method.", protectBuckets, "method"),
		delivered: counter("sealpost_queue_delivered_total",
			"Recipients the next hop accepted, by queue and class.", "queue", "class"),
		deferred: counter("sealpost_queue_deferred_total",
			"Delivery attempts that failed temporarily, per recipient, by queue, class and RFC 3463 status.", "queue", "class", "reason"),
		bounced: counter("sealpost_queue_bounced_total",
			"Recipients that failed for good (permanent failure or expiry), by queue and class.", "queue", "class"),
		deliverySeconds: histogram("sealpost_delivery_duration_seconds",
			"Time from queueing to delivery, per delivered recipient, by queue and class; for the otp class, a code's latency from its API call (which signs and queues it) to the next hop's acceptance, less the signing.", deliveryBuckets, "queue", "class"),
		otp: counter("sealpost_otp_events_total",
			"One-time passcodes and call verifications by event (issued, verified, wrong-code, expired, locked, mismatch, used, rate-limited, no-key) and purpose (call for call verifications). Never a code.", "event", "purpose"),
		keysChosen: counter("sealpost_recipient_keys_chosen_total",
			"Recipients accepted with a key, by class and the key's source (registered, learned, discovered).", "class", "source"),
		revocationUnchecked: counter("sealpost_revocation_unchecked_total",
			"Recipient certificates used although their revocation status could not be checked (soft-fail), by class.", "class"),
		wkdLookups: counter("sealpost_wkd_lookups_total",
			"WKD lookups of customers' keys by outcome: found, not-published, refused (an answer not used; the log says why) or unreachable.", "outcome"),
		wkdPending: prometheus.NewCounter(prometheus.CounterOpts{Name: "sealpost_wkd_pending_total",
			Help: "RCPTs whose WKD lookup outlasted discovery.wkd.budget (451 4.4.3 where encryption is required; the answer is cached for the retry)."}),
		evidenceRecords: prometheus.NewCounter(prometheus.CounterOpts{Name: "sealpost_evidence_records_total",
			Help: "Records appended to this node's evidence log (protected copies, delivery outcomes)."}),
		evidenceCheckpoints: prometheus.NewCounter(prometheus.CounterOpts{Name: "sealpost_evidence_checkpoints_total",
			Help: "Signed, timestamped checkpoints of the evidence log."}),
		evidenceCheckpointFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "sealpost_evidence_checkpoint_failures_total",
			Help: "Checkpoints that could not be made (the TSA down, the disk); each is tried again."}),
		evidencePruned: prometheus.NewCounter(prometheus.CounterOpts{Name: "sealpost_evidence_pruned_records_total",
			Help: "Evidence records removed past evidence.retention, in whole checkpointed segments (their checkpoints are kept)."}),
		evidenceSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sealpost_evidence_checkpoint_records",
			Help: "Records the newest checkpoint covers."}),
		inbound: counter("sealpost_inbound_messages_total",
			"Customers' replies by verdict status (verified, unregistered, failed, unsigned; empty when refused), method and action (deliver, quarantine, refused).", "status", "method", "action"),
		tsaSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sealpost_tsa_request_duration_seconds",
			Help: "Time to obtain one RFC 3161 timestamp token, successful or not.", Buckets: protectBuckets}),
		tsaErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sealpost_tsa_errors_total",
			Help: "Timestamp requests that returned no token."}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sealpost_certificate_expiry_timestamp_seconds",
			Help: "When the certificate of one of the bank's identities expires (notAfter), in Unix seconds."}, []string{"identity"}),
		devIdentities: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sealpost_development_identities",
			Help: "1 when the gateway signs or decrypts with development identities (sealpost's own CA, not the bank's), else 0."}),
		mailboxExpired: prometheus.NewCounter(prometheus.CounterOpts{Name: "sealpost_mailbox_expired_total",
			Help: "Messages removed from the secure mailbox when their class's mailbox expiry passed."}),
		watched: map[string]bool{},
	}
	reg.MustRegister(m.tsaSeconds, m.tsaErrors, m.certExpiry, m.devIdentities, m.mailboxExpired, m.wkdPending,
		m.evidenceRecords, m.evidenceCheckpoints, m.evidenceCheckpointFailures, m.evidenceSize, m.evidencePruned,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sealpost_evidence_checkpoint_age_seconds",
			Help: "Seconds since the newest evidence checkpoint (0 before the first): alert when it keeps growing past checkpoint_interval."},
			func() float64 {
				if t := m.evidenceLast.Load(); t != 0 {
					return time.Since(time.Unix(0, t)).Seconds()
				}
				return 0
			}))
	return m
}

// series remembers the label combinations of one metric and folds those past maxSeries into
// "other".
type series struct {
	mu   sync.Mutex
	seen map[string]bool
	n    int
}

func newSeries(n int) *series { return &series{seen: map[string]bool{}, n: n} }

func (s *series) bound(values []string) []string {
	key := ""
	for _, v := range values {
		key += v + "\x00"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[key] {
		return values
	}
	if len(s.seen) >= maxSeries {
		out := make([]string, len(values))
		for i := range out {
			out[i] = overflow
		}
		return out
	}
	s.seen[key] = true
	return values
}

type boundedCounter struct {
	v    *prometheus.CounterVec
	seen *series
}

func (c *boundedCounter) add(v float64, labels ...string) {
	if v > 0 {
		c.v.WithLabelValues(c.seen.bound(labels)...).Add(v)
	}
}

type boundedHistogram struct {
	v    *prometheus.HistogramVec
	seen *series
}

func (h *boundedHistogram) observe(v float64, labels ...string) {
	h.v.WithLabelValues(h.seen.bound(labels)...).Observe(v)
}

// Accepted implements outbound.Observer.
func (m *Metrics) Accepted(class, method string, recipients int) {
	m.accepted.add(1, class, method)
	m.acceptedRcpts.add(float64(recipients), class, method)
}

// Refused implements outbound.Observer.
func (m *Metrics) Refused(class, reason string) { m.refused.add(1, class, reason) }

// Protected implements outbound.Observer.
func (m *Metrics) Protected(method string, d time.Duration) {
	m.protected.add(1, method)
	m.protectSeconds.observe(d.Seconds(), method)
}

// KeyChosen implements outbound.Observer.
func (m *Metrics) KeyChosen(class, source string) { m.keysChosen.add(1, class, source) }

// RevocationUnchecked implements outbound.Observer.
func (m *Metrics) RevocationUnchecked(class string) { m.revocationUnchecked.add(1, class) }

// EvidenceAppended implements evidence.Observer.
func (m *Metrics) EvidenceAppended(n int) { m.evidenceRecords.Add(float64(n)) }

// EvidenceCheckpoint implements evidence.Observer.
func (m *Metrics) EvidenceCheckpoint(size uint64, at time.Time) {
	m.evidenceCheckpoints.Inc()
	m.evidenceSize.Set(float64(size))
	m.evidenceLast.Store(at.UnixNano())
}

// EvidenceCheckpointFailed implements evidence.Observer.
func (m *Metrics) EvidenceCheckpointFailed() { m.evidenceCheckpointFailures.Inc() }

// EvidencePruned implements evidence.Observer.
func (m *Metrics) EvidencePruned(_ int, records uint64) { m.evidencePruned.Add(float64(records)) }

// WKDLookup implements discovery.CacheObserver.
func (m *Metrics) WKDLookup(outcome string) { m.wkdLookups.add(1, outcome) }

// WKDPending implements discovery.CacheObserver.
func (m *Metrics) WKDPending() { m.wkdPending.Inc() }

// OTPEvent implements api.Observer: one code issued, checked or refused.
func (m *Metrics) OTPEvent(event, purpose string) { m.otp.add(1, event, purpose) }

// Inbound implements inbound.Observer.
func (m *Metrics) Inbound(status, method, action string) { m.inbound.add(1, status, method, action) }

// QueueObserver returns the queue.Observer of the spool named name ("outbound", "desk"), for
// queue.WithObserver.
func (m *Metrics) QueueObserver(name string) queue.Observer {
	return queueObserver{m: m, queue: name}
}

type queueObserver struct {
	m     *Metrics
	queue string
}

func (o queueObserver) Delivered(class string, d time.Duration) {
	o.m.delivered.add(1, o.queue, class)
	o.m.deliverySeconds.observe(d.Seconds(), o.queue, class)
}

func (o queueObserver) Deferred(class, reason string) { o.m.deferred.add(1, o.queue, class, reason) }

func (o queueObserver) Bounced(class string) { o.m.bounced.add(1, o.queue, class) }

// SpoolStats is what the spool gauges read at scrape time; *queue.Spool implements it.
type SpoolStats interface {
	Stats() (depth int, oldest time.Time)
	CorruptCount() (int, error)
}

// WatchSpool exports the depth, the oldest entry's age and the entries set aside as corrupt of
// the spool named name, read at each scrape. A name can be watched once.
func (m *Metrics) WatchSpool(name string, s SpoolStats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watched[name] {
		return
	}
	m.watched[name] = true
	labels := prometheus.Labels{"queue": name}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sealpost_queue_depth",
			Help: "Entries in the spool (messages, not recipients), by queue.", ConstLabels: labels},
			func() float64 { n, _ := s.Stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sealpost_queue_oldest_age_seconds",
			Help: "Age of the oldest entry in the spool (0 when empty), by queue.", ConstLabels: labels},
			func() float64 {
				_, oldest := s.Stats()
				if oldest.IsZero() {
					return 0
				}
				return max(time.Since(oldest).Seconds(), 0)
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sealpost_queue_corrupt_entries",
			Help:        "Entries the spool set aside in its corrupt directory because they failed their checks (neither delivered nor deleted; -1 when the directory cannot be read), by queue.",
			ConstLabels: labels},
			func() float64 {
				n, err := s.CorruptCount()
				if err != nil {
					return -1
				}
				return float64(n)
			}),
	)
	if c, ok := s.(ConcurrencyStats); ok {
		for i, l := range c.DeliveryConcurrency() { // the lanes are fixed when the spool opens
			lane := l.Lane
			if lane == "" {
				lane = "default"
			}
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sealpost_queue_delivery_concurrency",
				Help:        "How many of a lane's workers may deliver at once now: its workers while the next hop takes mail, fewer (halved per pushback, down to 1) while it pushes back, by queue and lane.",
				ConstLabels: prometheus.Labels{"queue": name, "lane": lane}},
				func() float64 { return float64(c.DeliveryConcurrency()[i].Limit) }))
		}
	}
}

// ConcurrencyStats is what the delivery-concurrency gauge reads; *queue.Spool implements it.
type ConcurrencyStats interface {
	DeliveryConcurrency() []queue.LaneConcurrency
}

// WatchStore exports sealpost_store_up: 1 when the shared store answers ping within
// StorePingTimeout at scrape time, else 0, so an alert fires while PostgreSQL is down or
// unreachable. It can be called once.
func (m *Metrics) WatchStore(ping Check) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watched[storeWatch] {
		return
	}
	m.watched[storeWatch] = true
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sealpost_store_up",
		Help: "1 when the shared store (SQLite or PostgreSQL) answered a ping at this scrape, else 0."},
		func() float64 {
			if pingStore(context.Background(), ping) != nil {
				return 0
			}
			return 1
		}))
}

// MailboxCounts says how many messages wait in the secure mailbox unread, and how many online
// banking has fetched (read).
type MailboxCounts func(ctx context.Context) (waiting, read int, err error)

// WatchMailbox exports sealpost_mailbox_messages{state="waiting"|"read"} from counts at scrape
// time (nothing while the store does not answer). It can be called once.
func (m *Metrics) WatchMailbox(counts MailboxCounts) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watched[mailboxWatch] {
		return
	}
	m.watched[mailboxWatch] = true
	m.reg.MustRegister(&mailboxCollector{counts: counts, desc: prometheus.NewDesc("sealpost_mailbox_messages",
		"Messages in the secure mailbox of keyless customers, by state: waiting (not fetched yet) or read.", []string{"state"}, nil)})
}

// MailboxExpired counts messages removed from the secure mailbox at expiry.
func (m *Metrics) MailboxExpired(n int) { m.mailboxExpired.Add(float64(n)) }

// mailboxCollector reads the mailbox's counts once per scrape for both states.
type mailboxCollector struct {
	counts MailboxCounts
	desc   *prometheus.Desc
}

func (c *mailboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *mailboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), StorePingTimeout)
	defer cancel()
	waiting, read, err := c.counts(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(waiting), "waiting")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(read), "read")
}

// mailboxWatch is the mailbox's key in Metrics.watched.
const mailboxWatch = "\x00mailbox"

// storeWatch is the store's key in Metrics.watched, apart from the spools' names (which are
// queue names, never this).
const storeWatch = "\x00store"

// SetCertificateExpiry exports when the certificate of the bank's identity (e.g. "signer",
// "tsa") expires, so an alert can fire weeks before mail stops being signed.
func (m *Metrics) SetCertificateExpiry(identity string, cert *x509.Certificate) {
	if cert == nil {
		return
	}
	m.certExpiry.WithLabelValues(identity).Set(float64(cert.NotAfter.Unix()))
}

// SetDevelopmentIdentities exports whether the gateway runs on development identities: an alert on
// it catches a production node that was started on them.
func (m *Metrics) SetDevelopmentIdentities(on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.devIdentities.Set(v)
}

// WriteTo writes every metric in the Prometheus text format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	fams, err := m.reg.Gather()
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: w}
	enc := expfmt.NewEncoder(cw, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

// ServeHTTP serves the metrics (GET /metrics) with promhttp.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Snapshot reads every metric now: for each family its sum over all series under its name, and
// each series under name{label="value",…} (labels sorted); histograms by their sample count. The
// console samples it for its charts.
func (m *Metrics) Snapshot() (map[string]float64, error) {
	fams, err := m.reg.Gather()
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, 4*len(fams))
	for _, f := range fams {
		name := f.GetName()
		for _, s := range f.GetMetric() {
			var v float64
			switch {
			case s.Counter != nil:
				v = s.Counter.GetValue()
			case s.Gauge != nil:
				v = s.Gauge.GetValue()
			case s.Histogram != nil:
				v = float64(s.Histogram.GetSampleCount())
			case s.Untyped != nil:
				v = s.Untyped.GetValue()
			default:
				continue
			}
			out[name] += v
			if len(s.GetLabel()) > 0 {
				var b strings.Builder
				b.WriteString(name + "{")
				for i, l := range s.GetLabel() {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%s=%q", l.GetName(), l.GetValue())
				}
				b.WriteByte('}')
				out[b.String()] = v
			}
		}
	}
	return out, nil
}
