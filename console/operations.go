package console

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Metrics reads the gateway's metrics now (ops.Metrics.Snapshot): each family's sum under its
// name, each series under name{label="value",…}.
type Metrics func() (map[string]float64, error)

// history keeps a sample of the metrics every step for the last keep steps, for the charts.
type history struct {
	mu      sync.Mutex
	step    time.Duration
	keep    int
	samples []sample
}

type sample struct {
	at time.Time
	v  map[string]float64
}

// historyStep and historyKeep: a sample a minute, six hours of them.
const (
	historyStep = time.Minute
	historyKeep = 360
)

func (h *history) add(at time.Time, v map[string]float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, sample{at, v})
	if len(h.samples) > h.keep {
		h.samples = h.samples[len(h.samples)-h.keep:]
	}
}

// run samples m every step until ctx ends.
func (h *history) run(ctx context.Context, m Metrics, now func() time.Time) {
	t := time.NewTicker(h.step)
	defer t.Stop()
	for {
		if v, err := m(); err == nil {
			h.add(now(), v)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *history) all() []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sample(nil), h.samples...)
}

type queueRow struct {
	Name    string
	Depth   int
	Oldest  string
	Corrupt int
	Stuck   bool // the oldest entry waits longer than an hour
	Link    bool // the console can list its entries
}

// laneRow is one class's entries in a queue (each class has its lane: OTPs never wait behind
// statements).
type laneRow struct {
	Queue, Class string
	Depth        int
	Oldest       string
	Stuck        bool
}

type identityRow struct {
	Role     string
	Expires  string
	DaysLeft int
	Soon     bool // within 30 days
}

type chart struct {
	Title string
	Note  string
	SVG   template.HTML // drawn here, from numbers only
}

type opsData struct {
	Queues       []queueRow
	Lanes        []laneRow
	Identities   []identityRow
	Development  bool
	TSAErrors    int
	CheckpointAt string // the evidence log's newest checkpoint's age
	Charts       []chart
	Available    bool
}

func (s *Server) operations(w http.ResponseWriter, r *http.Request, rq *request) {
	d := opsData{}
	if s.d.Metrics != nil {
		now, err := s.d.Metrics()
		if err != nil {
			s.problem(w, r, rq, http.StatusServiceUnavailable, "Try again", "The metrics cannot be read now.")
			return
		}
		d = opsView(now, s.hist.all(), s.d.Now())
		for i := range d.Queues {
			_, d.Queues[i].Link = s.d.Queues[d.Queues[i].Name]
		}
	}
	d.Lanes = s.lanes()
	s.render(w, r, rq, http.StatusOK, "operations.html", "Operations", d, "")
}

// seriesOf returns the label value and value of every series of family name with label key.
func seriesOf(v map[string]float64, name, key string) map[string]float64 {
	out := map[string]float64{}
	prefix := name + "{"
	for k, x := range v {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		for _, l := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			if lk, lv, ok := strings.Cut(l, "="); ok && lk == key {
				if uq, err := strconv.Unquote(lv); err == nil {
					out[uq] = x
				}
			}
		}
	}
	return out
}

func opsView(v map[string]float64, hist []sample, now time.Time) opsData {
	d := opsData{Available: true, Development: v["sealpost_development_identities"] > 0, TSAErrors: int(v["sealpost_tsa_errors_total"])}
	depth := seriesOf(v, "sealpost_queue_depth", "queue")
	oldest := seriesOf(v, "sealpost_queue_oldest_age_seconds", "queue")
	corrupt := seriesOf(v, "sealpost_queue_corrupt_entries", "queue")
	for name, n := range depth {
		age := time.Duration(oldest[name] * float64(time.Second))
		row := queueRow{Name: cleanLine(name, 40), Depth: int(n), Corrupt: int(corrupt[name]), Oldest: "—", Stuck: age > time.Hour}
		if n > 0 {
			row.Oldest = ageText(age)
		}
		d.Queues = append(d.Queues, row)
	}
	sort.Slice(d.Queues, func(i, j int) bool { return d.Queues[i].Name < d.Queues[j].Name })
	for role, at := range seriesOf(v, "sealpost_certificate_expiry_timestamp_seconds", "identity") {
		exp := time.Unix(int64(at), 0)
		left := int(exp.Sub(now).Hours() / 24)
		d.Identities = append(d.Identities, identityRow{Role: cleanLine(role, 40), Expires: exp.UTC().Format("2006-01-02"), DaysLeft: left, Soon: left < 30})
	}
	sort.Slice(d.Identities, func(i, j int) bool { return d.Identities[i].Role < d.Identities[j].Role })
	if a, ok := v["sealpost_evidence_checkpoint_age_seconds"]; ok {
		d.CheckpointAt = ageText(time.Duration(a * float64(time.Second)))
	}
	for _, c := range []struct{ title, metric string }{
		{"Accepted", "sealpost_messages_accepted_total"},
		{"Delivered", "sealpost_queue_delivered_total"},
		{"Deferred", "sealpost_queue_deferred_total"},
		{"Refused", "sealpost_messages_refused_total"},
	} {
		d.Charts = append(d.Charts, rateChart(c.title+" per minute", c.metric, hist))
	}
	for _, name := range sortedKeys(depth) {
		d.Charts = append(d.Charts, levelChart("Queue depth: "+cleanLine(name, 40), `sealpost_queue_depth{queue=`+strconv.Quote(name)+`}`, hist))
	}
	return d
}

func sortedKeys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// rateChart charts the per-minute increase of counter metric over the samples.
func rateChart(title, metric string, hist []sample) chart {
	var pts []float64
	for i := 1; i < len(hist); i++ {
		dt := hist[i].at.Sub(hist[i-1].at).Minutes()
		if dt <= 0 {
			continue
		}
		pts = append(pts, math.Max(0, hist[i].v[metric]-hist[i-1].v[metric])/dt)
	}
	return chart{Title: title, SVG: drawChart(title, pts), Note: spanNote(hist)}
}

// levelChart charts gauge metric over the samples.
func levelChart(title, metric string, hist []sample) chart {
	pts := make([]float64, 0, len(hist))
	for _, s := range hist {
		pts = append(pts, s.v[metric])
	}
	return chart{Title: title, SVG: drawChart(title, pts), Note: spanNote(hist)}
}

func spanNote(hist []sample) string {
	if len(hist) < 2 {
		return "Collecting: a sample a minute, the last six hours are shown."
	}
	return "From " + hist[0].at.UTC().Format("15:04") + " to " + hist[len(hist)-1].at.UTC().Format("15:04 MST") + "."
}

// drawChart draws pts as an SVG line chart with its maximum labelled. Only numbers go into it.
func drawChart(title string, pts []float64) template.HTML {
	const w, h, pad = 600.0, 120.0, 20.0
	top := 0.0
	for _, p := range pts {
		top = math.Max(top, p)
	}
	scale := 1.0
	if top > 0 {
		scale = (h - 2*pad) / top
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#d0d7de"/>`, pad, h-pad, w-pad, h-pad)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" fill="#57606a">max %s</text>`, pad, pad-6, strconv.FormatFloat(top, 'f', -1, 64))
	if len(pts) > 1 {
		b.WriteString(`<polyline fill="none" stroke="#0b5394" stroke-width="2" points="`)
		for i, p := range pts {
			x := pad + float64(i)*(w-2*pad)/float64(len(pts)-1)
			fmt.Fprintf(&b, "%.1f,%.1f ", x, h-pad-p*scale)
		}
		b.WriteString(`"/>`)
	} else {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="12" fill="#57606a">not enough samples yet</text>`, pad, h/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// ageText is how long ago, as people say it.
func ageText(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d/time.Second))
	}
	return age(d)
}

// lanes are the queues' entries by class: how many, and how long the oldest has waited.
func (s *Server) lanes() []laneRow {
	now := s.d.Now()
	var out []laneRow
	for _, name := range sortedQueueNames(s.d.Queues) {
		infos, err := s.d.Queues[name].List()
		if err != nil {
			continue
		}
		by := map[string]*laneRow{}
		oldest := map[string]time.Time{}
		for _, in := range infos {
			r := by[in.Class]
			if r == nil {
				r = &laneRow{Queue: name, Class: cleanLine(in.Class, 40)}
				by[in.Class] = r
			}
			r.Depth++
			if o, ok := oldest[in.Class]; !ok || in.Created.Before(o) {
				oldest[in.Class] = in.Created
			}
		}
		classes := make([]string, 0, len(by))
		for c := range by {
			classes = append(classes, c)
		}
		sort.Strings(classes)
		for _, c := range classes {
			r := by[c]
			waited := now.Sub(oldest[c])
			r.Oldest, r.Stuck = ageText(waited), waited > time.Hour
			out = append(out, *r)
		}
	}
	return out
}

func sortedQueueNames(qs map[string]Queue) []string {
	out := make([]string, 0, len(qs))
	for n := range qs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
