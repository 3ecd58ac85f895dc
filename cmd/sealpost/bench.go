package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/internal/softhsm"
	"github.com/sealpost/sealpost/keys"
)

// cmdBench measures the whole relay on this machine: N concurrent SMTP clients submit 2 KB
// statements (and, with -support, support replies, which write a thread in the store) to a gateway
// (S/MIME sign + embedded timestamp + encrypt, durable queue) that delivers over SMTP to a local
// sink, all in this process. It prints messages/s, the latency from the end of DATA to delivery at
// the sink (p50/p99), the store operations per message, and the RSA-2048 signatures/s of the same
// machine measured in the same run, so the figures can be compared as ratios. With -postgres it
// runs again with the shared state on PostgreSQL and gives the ratio to the embedded SQLite.
func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stdout)
	n := fs.Int("n", 3000, "messages for the throughput run")
	conc := fs.Int("c", 16, "concurrent SMTP clients (connections are reused)")
	rate := fs.Int("rate", 200, "messages/s offered in the latency run (0: skip it)")
	seconds := fs.Int("seconds", 10, "length of the latency run")
	size := fs.Int("size", 2048, "message size in bytes")
	support := fs.Int("support", 0, "percent of the messages sent as support replies, which write a thread in the store (default 50 with -postgres)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the runs to this file")
	softhsm := fs.Bool("softhsm", false, "run again with the signer and TSA keys in a throw-away SoftHSM2 token, and compare")
	postgres := fs.Bool("postgres", false, "run again with the shared state on PostgreSQL (a private server, or -dsn-file), and compare")
	dsnFile := fs.String("dsn-file", "", "with -postgres: a file holding the connection string of an empty database to use instead of a private server")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *postgres && !flagSet(fs, "support") {
		*support = 50
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *n < 1 || *conc < 1 || *conc > 20 || *size < 512 || *support < 0 || *support > 100 {
		return fmt.Errorf("%w: need n ≥ 1, 1 ≤ c ≤ 20 (the listener's per-client limit), size ≥ 512, 0 ≤ support ≤ 100", errUsage)
	}
	w := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }

	sigs := rsaSignaturesPerSecond()
	w("RSA-2048 signatures/s on this machine (all %d cores): %.0f", runtime.GOMAXPROCS(0), sigs)

	sink, err := newSink()
	if err != nil {
		return err
	}
	defer sink.close()
	mix := benchMix{size: *size, support: *support}
	run := func(name string, opt benchOptions) (float64, error) {
		inst, counter, done, err := benchInstance(sink, opt, stderr)
		if err != nil {
			return 0, err
		}
		defer done()
		before := counter.snapshot()
		res, err := load(inst.Addr().String(), sink, *n, *conc, 0, mix, name)
		if err != nil {
			return 0, err
		}
		ops, each := storeOps(before, counter.snapshot(), *n)
		w("throughput (%s): %d messages of %d bytes (%d%% support), %d clients: %.0f messages/s delivered (%.2f × RSA-2048 signatures/s), %.0f/s accepted; latency p50 %v, p99 %v",
			name, *n, *size, *support, *conc, res.perSecond, res.perSecond/sigs, res.accepted, res.p50, res.p99)
		w("store (%s): %.2f operations/message (%s)", name, ops, each)
		if *rate > 0 {
			m := *rate * *seconds
			res, err := load(inst.Addr().String(), sink, m, *conc, *rate, mix, name+"r")
			if err != nil {
				return 0, err
			}
			w("latency (%s) at %d messages/s offered (%d messages): p50 %v, p99 %v, delivered %.0f messages/s", name, *rate, m, res.p50, res.p99, res.perSecond)
		}
		return res.perSecond, nil
	}
	file, err := run("file keys", benchOptions{})
	if err != nil {
		return err
	}
	if *softhsm {
		hsm, err := run("SoftHSM2 keys", benchOptions{hsm: true})
		if err != nil {
			return err
		}
		w("SoftHSM2 ÷ file keys: %.2f", hsm/file)
	}
	if *postgres {
		tmp, err := os.MkdirTemp("", "sealpost-bench-pg-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		pg, what, stop, err := benchPostgres(*dsnFile, tmp)
		if err != nil {
			return err
		}
		defer stop()
		w("PostgreSQL store: %s, max_conns %d", what, pg.MaxConns)
		pgRate, err := run("file keys, PostgreSQL store", benchOptions{postgres: pg})
		if err != nil {
			return err
		}
		w("PostgreSQL ÷ SQLite store: %.2f (target ≥ 0.90)", pgRate/file)
	}
	return nil
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// benchOptions are what one run of the bench changes: the signer's keys in SoftHSM2, the shared
// state on PostgreSQL.
type benchOptions struct {
	hsm      bool
	postgres *PostgresConfig
}

// benchInstance starts a gateway on a throw-away data directory delivering to sink, its store's
// calls counted; with opt.hsm, the bank's signer and TSA keys are moved into a throw-away SoftHSM2
// token first; with opt.postgres, the shared state is there.
func benchInstance(sink *sink, opt benchOptions, stderr io.Writer) (*instance, *countingStore, func(), error) {
	tmp, err := os.MkdirTemp("", "sealpost-bench-")
	if err != nil {
		return nil, nil, nil, err
	}
	fail := func(err error) (*instance, *countingStore, func(), error) {
		os.RemoveAll(tmp)
		return nil, nil, nil, err
	}
	cfg := defaultConfig()
	cfg.Data, cfg.SMTP.Addr, cfg.Inbound.Enabled, cfg.Ops.Enabled = filepath.Join(tmp, "data"), "127.0.0.1:0", false, false
	hop := defaultSmarthost()
	hop.Addr, hop.TLS = sink.addr, "none"
	cfg.Delivery.Smarthost = &hop
	cfg.Queue.Workers = 16
	cfg.Store.Postgres = opt.postgres
	var counter *countingStore
	cfg.wrapStore = func(b backend) backend { counter = newCountingStore(b); return counter }
	cfg.resolvePaths()
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	dir := keys.DataDir(cfg.Data)
	if err := dir.Init(cfg.Senders); err != nil {
		return fail(err)
	}
	if _, _, err := demoCustomers(dir); err != nil {
		return fail(err)
	}
	if opt.hsm {
		if cfg.HSM.Signer, cfg.HSM.TSA, err = softHSMToken(filepath.Join(tmp, "hsm"), dir); err != nil {
			return fail(fmt.Errorf("SoftHSM2: %w", err))
		}
	}
	inst, err := startInstance(context.Background(), cfg, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return fail(err)
	}
	return inst, counter, func() { inst.Close(); os.RemoveAll(tmp) }, nil
}

// softHSMToken makes a SoftHSM2 token in dir (SOFTHSM2_CONF points there for this process),
// imports the data directory's signer and TSA keys, and removes the key files, so that only the
// token can sign.
func softHSMToken(dir string, data keys.DataDir) (signer, tsaKey *keys.PKCS11Config, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	tok, err := softhsm.Create(dir, "sealpost-bench")
	if err != nil {
		return nil, nil, err
	}
	os.Setenv("SOFTHSM2_CONF", tok.Conf)
	var cfgs [2]*keys.PKCS11Config
	for i, name := range []string{"signer", "tsa"} {
		id, err := data.Identity(name)
		if err != nil {
			return nil, nil, err
		}
		cfg, err := tok.ImportIdentity(id, name, []byte{byte(i + 1)})
		if err != nil {
			return nil, nil, err
		}
		if err := os.Remove(filepath.Join(string(data), name+".key")); err != nil {
			return nil, nil, err
		}
		cfgs[i] = &cfg
	}
	return cfgs[0], cfgs[1], nil
}

// rsaSignaturesPerSecond signs on every core for a second.
func rsaSignaturesPerSecond() float64 {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0
	}
	digest := sha256.Sum256([]byte("sealpost"))
	var count atomic.Int64
	deadline := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err == nil {
					count.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(count.Load()) / time.Since(start).Seconds()
}

type loadResult struct {
	perSecond float64 // delivered at the sink
	accepted  float64 // 250s received by the clients
	p50, p99  time.Duration
}

// load submits m messages over conc reused connections (at rate/s if rate > 0) and waits for all
// of them at the sink.
func load(addr string, sink *sink, m, conc, rate int, mix benchMix, tag string) (loadResult, error) {
	jobs := make(chan int)
	go func() {
		defer close(jobs)
		var tick *time.Ticker
		if rate > 0 {
			tick = time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
		}
		for i := range m {
			if tick != nil {
				<-tick.C
			}
			jobs <- i
		}
	}()
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var firstErr error
	base := sink.total()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialSMTP(addr)
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				for range jobs {
				}
				return
			}
			defer c.Close()
			for i := range jobs {
				id := fmt.Sprintf("<bench-%s-%d@bank.example>", tag, i)
				from, msg := mix.message(i, id)
				t0, err := submitTimed(c, from, msg)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("message %d: %w", i, err)
				}
				if err == nil && from == benchStatements {
					sent[id] = t0
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	acceptedIn := time.Since(start)
	if firstErr != nil {
		return loadResult{}, firstErr
	}
	// Support replies get a thread's Message-ID on the way: they are counted, not matched.
	lat := make([]time.Duration, 0, len(sent))
	for id, t0 := range sent {
		at, err := sink.wait(id, 60*time.Second)
		if err != nil {
			return loadResult{}, err
		}
		lat = append(lat, at.Sub(t0))
	}
	last, err := sink.waitTotal(base+m, 60*time.Second)
	if err != nil {
		return loadResult{}, err
	}
	res := loadResult{
		perSecond: float64(m) / last.Sub(start).Seconds(),
		accepted:  float64(m) / acceptedIn.Seconds(),
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		res.p50, res.p99 = lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)*99/100].Round(100*time.Microsecond)
	}
	return res, nil
}

// submitTimed sends one message and returns when its final dot was sent.
func submitTimed(c *smtp.Client, from string, msg []byte) (time.Time, error) {
	if err := c.Mail(from, nil); err != nil {
		return time.Time{}, err
	}
	if err := c.Rcpt(demoAlice, nil); err != nil {
		return time.Time{}, err
	}
	w, err := c.Data()
	if err != nil {
		return time.Time{}, err
	}
	if _, err := w.Write(msg); err != nil {
		return time.Time{}, err
	}
	t0 := time.Now()
	return t0, w.Close()
}

// The bench's senders: statements, and support, whose mail starts a thread in the store.
const (
	benchStatements = "statements@bank.example"
	benchSupport    = "support@bank.example"
)

// benchMix is what the bench sends: messages of size bytes to alice (S/MIME), support percent of
// them support replies.
type benchMix struct {
	size, support int
}

// message is the i-th message's sender and bytes.
func (m benchMix) message(i int, id string) (string, []byte) {
	// Spread evenly: message i is a support reply when the running count of support% steps up.
	if (i+1)*m.support/100 > i*m.support/100 {
		return benchSupport, benchMessage(benchSupport, "Re: your question", id, m.size)
	}
	return benchStatements, benchMessage(benchStatements, "Your statement", id, m.size)
}

func benchMessage(from, subject, id string, size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: Example Bank <" + from + ">\r\nTo: alice@example.com\r\nSubject: " + subject + "\r\nMessage-ID: " + id + "\r\n\r\n")
	line := "Account 12345678, balance 1 234,56 EUR, thank you for banking with us.\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

// sink is an SMTP server that records when each Message-ID arrived.
type sink struct {
	srv     *smtp.Server
	addr    string
	mu      sync.Mutex
	arrived map[string]time.Time
	times   []time.Time // every arrival, in order
	changed chan struct{}
}

func newSink() (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{addr: l.Addr().String(), arrived: map[string]time.Time{}, changed: make(chan struct{})}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "sink.localhost"
	s.srv.MaxMessageBytes = 64 << 20
	s.srv.MaxRecipients = 1000
	s.srv.AllowInsecureAuth = true
	go s.srv.Serve(l)
	return s, nil
}

func (s *sink) close() { s.srv.Close() }

// NewSession implements smtp.Backend.
func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

func (s *sink) record(id string) {
	s.mu.Lock()
	now := time.Now()
	if id != "" {
		s.arrived[id] = now
	}
	s.times = append(s.times, now)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *sink) wait(id string, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	for {
		s.mu.Lock()
		at, ok := s.arrived[id]
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-ch:
		case <-deadline:
			return time.Time{}, fmt.Errorf("%s never reached the sink", id)
		}
	}
}

// total is how many messages arrived so far.
func (s *sink) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.times)
}

// waitTotal waits until n messages arrived and returns when the n-th did.
func (s *sink) waitTotal(n int, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	for {
		s.mu.Lock()
		got, ch := len(s.times), s.changed
		var at time.Time
		if got >= n {
			at = s.times[n-1]
		}
		s.mu.Unlock()
		if got >= n {
			return at, nil
		}
		select {
		case <-ch:
		case <-deadline:
			return time.Time{}, fmt.Errorf("%d of %d messages reached the sink", got, n)
		}
	}
}

type sinkSession struct{ s *sink }

func (*sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*sinkSession) Reset()                               {}
func (*sinkSession) Logout() error                        { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	h := b
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		h = b[:i]
	}
	id := ""
	for _, line := range strings.Split(string(h), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Message-ID: "); ok {
			id = strings.TrimSpace(v)
		}
	}
	ss.s.record(id)
	return nil
}
