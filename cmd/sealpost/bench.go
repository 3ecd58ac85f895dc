package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
// runs again with the shared state on PostgreSQL and gives the ratio to the embedded SQLite; with
// -nodes N as well, it runs N gateways on that one database and gives the ratio to one. With -otp
// it measures one-time passcodes from the API call to the sink, with no load and while a statement
// run loads the relay, next to the targets.
func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stdout)
	n := fs.Int("n", 3000, "messages for the throughput run")
	conc := fs.Int("c", 16, "concurrent SMTP clients (connections are reused)")
	rate := fs.Int("rate", 200, "messages/s offered in the latency run (0: skip it)")
	seconds := fs.Int("seconds", 10, "length of the latency run")
	size := fs.Int("size", 2048, "message size in bytes")
	support := fs.Int("support", 0, "percent of the messages sent as support replies, which write a thread in the store (default 50 with -postgres)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the runs (not of the RSA yardstick) to this file")
	softhsm := fs.Bool("softhsm", false, "run again with the signer and TSA keys in a throw-away SoftHSM2 token, and compare")
	noEvidence := fs.Bool("evidence", false, "run again with the evidence log off, and compare (its cost: the target is at most 5% fewer messages/s)")
	pairs := fs.Int("pairs", 1, "with -evidence: how many times to run off then on again (a busy machine drifts: the median of each off run's ratio to the on runs beside it is printed)")
	postgres := fs.Bool("postgres", false, "run again with the shared state on PostgreSQL (a private server, or -dsn-file), and compare")
	dsnFile := fs.String("dsn-file", "", "with -postgres: a file holding the connection string of an empty database to use instead of a private server")
	otp := fs.Bool("otp", false, "run again with the API on and measure one-time passcodes' latency from the API call to the sink: with no load, then while -otp-load statements saturate the relay")
	otpLoad := fs.Int("otp-load", 20000, "with -otp: statements sent through SMTP, as fast as the relay takes them, while codes are measured")
	otpSeconds := fs.Int("otp-seconds", 3, "with -otp: length of each OTP run")
	process := fs.Bool("process", false, "run serve as its own process (this executable), driven from outside over SMTP: the figures then include serve's own CPU per message and its peak memory, read from /proc (Linux)")
	statements := fs.String("statements", "", "with -process: comma-separated statement sizes in MB (e.g. 10,25): each sent once to a fresh serve, whose peak memory is printed")
	withOpenSSL := fs.Bool("openssl", false, "measure the openssl cms -sign | openssl cms -encrypt pipeline on every core over 3 s, and compare")
	nodes := fs.Int("nodes", 1, "with -postgres: when above 1, run again with this many gateways on the one PostgreSQL database (each its own data directory and spool, the messages dealt round-robin over the same clients), and compare with one")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *postgres && !flagSet(fs, "support") {
		*support = 50
	}
	if *n < 1 || *conc < 1 || *conc > 20 || *size < 512 || *support < 0 || *support > 100 {
		return fmt.Errorf("%w: need n ≥ 1, 1 ≤ c ≤ 20 (the listener's per-client limit), size ≥ 512, 0 ≤ support ≤ 100", errUsage)
	}
	// Every node gets a client of its own, and several nodes only share state on PostgreSQL.
	if *nodes < 1 || *nodes > *conc || (*nodes > 1 && !*postgres) {
		return fmt.Errorf("%w: need 1 ≤ nodes ≤ c, and -postgres for nodes > 1", errUsage)
	}
	if *pairs < 1 || *pairs > 50 {
		return fmt.Errorf("%w: need 1 ≤ pairs ≤ 50", errUsage)
	}
	if *otp && (*otpLoad < 1 || *otpSeconds < 1) {
		return fmt.Errorf("%w: need otp-load ≥ 1 and otp-seconds ≥ 1", errUsage)
	}
	sizes, err := parseSizes(*statements)
	if err != nil || (len(sizes) > 0 && !*process) {
		return fmt.Errorf("%w: -statements needs -process and sizes of 1 to 25 MB (e.g. 10,25)", errUsage)
	}
	b := &bench{n: *n, conc: *conc, rate: *rate, seconds: *seconds, mix: benchMix{size: *size, support: *support}, process: *process, stdout: stdout, stderr: stderr}
	b.sigs = rsaSignaturesPerSecond(rsaProbe)
	b.w("RSA-2048 signatures/s on this machine (all %d cores, over %v): %.0f", runtime.GOMAXPROCS(0), rsaProbe, b.sigs)
	// The profile is of the runs, not of the yardstick.
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
	if b.sink, err = newSink(); err != nil {
		return err
	}
	defer b.sink.close()
	file, err := b.run("file keys", benchOptions{}, 1)
	if err != nil {
		return err
	}
	if *withOpenSSL {
		_, msg := b.mix.message(0, "<bench-openssl@bank.example>")
		ps, err := opensslPipelinePerSecond(msg, rsaProbe)
		if err != nil {
			return err
		}
		b.w("openssl cms -sign | openssl cms -encrypt (all %d cores, over %v): %.0f messages/s; sealpost ÷ openssl pipeline: %.1f (target ≥ 10)", runtime.GOMAXPROCS(0), rsaProbe, ps, file.perSecond/ps)
	}
	if len(sizes) > 0 {
		if err := b.statementMemory(sizes); err != nil {
			return err
		}
	}
	if *noEvidence {
		if err := b.evidenceCost(file, *pairs); err != nil {
			return err
		}
	}
	if *softhsm {
		hsm, err := b.run("SoftHSM2 keys", benchOptions{hsm: true}, 1)
		if err != nil {
			return err
		}
		b.w("SoftHSM2 ÷ file keys: %.2f", hsm.perSecond/file.perSecond)
	}
	if *otp {
		if err := b.otp(*otpLoad, *otpSeconds); err != nil {
			return fmt.Errorf("OTP runs: %w", err)
		}
	}
	if *postgres {
		return b.postgres(*dsnFile, *nodes, file)
	}
	return nil
}

// evidenceCost runs the gateway with the evidence log off and then on again, pairs times after the
// run on, and prints each off run's ratio to the mean of the on runs before and after it, and
// their median: interleaved, so that a machine whose speed drifts during the runs weighs on both.
func (b *bench) evidenceCost(on benchFigures, pairs int) error {
	ratios, cpus := make([]float64, 0, pairs), make([]float64, 0, pairs)
	for i := range pairs {
		off, err := b.run(fmt.Sprintf("evidence off, %d", i+1), benchOptions{noEvidence: true}, 1)
		if err != nil {
			return err
		}
		again, err := b.run(fmt.Sprintf("evidence on, %d", i+2), benchOptions{}, 1)
		if err != nil {
			return err
		}
		r := (on.perSecond + again.perSecond) / 2 / off.perSecond
		c := float64(on.cpu+again.cpu) / 2 / float64(off.cpu)
		b.w("evidence on ÷ off, pair %d: %.3f (%.1f%% fewer messages/s; on is the mean of the runs before and after off); CPU per message on ÷ off %.3f", i+1, r, 100*(1-r), c)
		ratios, cpus = append(ratios, r), append(cpus, c)
		on = again
	}
	if pairs > 1 {
		m := median(ratios)
		b.w("evidence on ÷ off, median of %d pairs: %.3f (%.1f%% fewer messages/s; the target is at most 5%%); CPU per message on ÷ off %.3f", pairs, m, 100*(1-m), median(cpus))
	}
	return nil
}

// median is the middle of xs (the mean of the two middle ones when even); xs is sorted in place.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// bench is one sealpost bench: what it sends, to which sink, and where it prints.
type bench struct {
	n, conc, rate, seconds int
	process                bool // serve as its own process in every run
	mix                    benchMix
	sigs                   float64 // RSA-2048 signatures/s, the yardstick
	sink                   *sink
	stdout, stderr         io.Writer
}

// w prints one line of the bench's output.
func (b *bench) w(format string, a ...any) { fmt.Fprintf(b.stdout, format+"\n", a...) }

// benchFigures are what one run measured: its throughput run's delivered messages/s and latency,
// and the store operations per message.
type benchFigures struct {
	perSecond float64
	p50, p99  time.Duration
	ops       float64
	cpu       time.Duration // CPU per message of the whole process (gateway, clients, sink)
}

// run measures the gateway under opt, on nodes instances: the throughput run, then (with a rate)
// the latency run, each line named name.
func (b *bench) run(name string, opt benchOptions, nodes int) (benchFigures, error) {
	opt.process = opt.process || b.process
	cluster, done, err := benchNodes(b.sink, opt, nodes, b.stderr)
	if err != nil {
		return benchFigures{}, err
	}
	defer done()
	before := cluster.snapshots()
	cpu0, writes0, served0 := processCPU(), cluster.evidenceWrites(), cluster.serveCPU()
	res, err := load(cluster, b.sink, b.n, b.conc, 0, b.mix, name)
	if err != nil {
		return benchFigures{}, err
	}
	cpu := (processCPU() - cpu0) / time.Duration(b.n)
	if opt.process {
		// The gateway's CPU alone; one signature's share is what the yardstick says a core takes.
		served := float64(cluster.serveCPU()-served0) / float64(b.n) / 1e6
		sig := 1e3 * float64(runtime.GOMAXPROCS(0)) / b.sigs
		b.w("serve (%s, its own process): CPU %.2f ms/message; one RSA-2048 signature is %.2f ms of a core here, the rest %.2f ms (target ≤ 0.5); peak RSS %.1f MB",
			name, served, sig, served-sig, mib(cluster.peakRSS()))
	}
	ops, each := cluster.storeOps(before, b.n)
	b.w("throughput (%s): %d messages of %d bytes (%d%% support), %d clients: %.0f messages/s delivered (%.2f × RSA-2048 signatures/s), %.0f/s accepted; latency p50 %v, p99 %v; CPU %.2f ms/message (this process: clients and sink too)",
		name, b.n, b.mix.size, b.mix.support, b.conc, res.perSecond, res.perSecond/b.sigs, res.accepted, res.p50, res.p99, float64(cpu)/1e6)
	if !opt.process { // a process's store calls and log writes are its own
		b.w("store (%s): %.2f operations/message (%s)", name, ops, each)
	}
	if w := cluster.evidenceWrites() - writes0; !opt.noEvidence && !opt.process {
		b.w("evidence log (%s): %.2f writes/message, each with its sync (concurrent appends share one)", name, float64(w)/float64(b.n))
	}
	if nodes > 1 {
		b.w("delivered (%s): %d of %d messages (%s)", name, b.n, b.n, perNode(res.delivered))
	}
	if b.rate > 0 {
		m := b.rate * b.seconds
		lat, err := load(cluster, b.sink, m, b.conc, b.rate, b.mix, name+"r")
		if err != nil {
			return benchFigures{}, err
		}
		b.w("latency (%s) at %d messages/s offered (%d messages): p50 %v, p99 %v, accepted %.0f/s (%.1f%% of the offered rate), delivered %.0f messages/s",
			name, b.rate, m, lat.p50, lat.p99, lat.accepted, 100*lat.accepted/float64(b.rate), lat.perSecond)
	}
	return benchFigures{perSecond: res.perSecond, p50: res.p50, p99: res.p99, ops: ops, cpu: cpu}, nil
}

// processCPU is the CPU time (user and system) this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// benchOptions are what one run of the bench changes: the signer's keys in SoftHSM2, the shared
// state on PostgreSQL, the API on with that many OTP customers registered (otpAddress).
type benchOptions struct {
	process      bool // serve as its own process (-process)
	hsm          bool
	noEvidence   bool // the evidence log off (-evidence compares)
	postgres     *PostgresConfig
	otpCustomers int
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

// rsaSignaturesPerSecond is RSA-2048 PKCS#1 v1.5 SHA-256 signatures a second on every core, over
// d after a warm-up (the signatures begun in d, over the time until the last ended).
func rsaSignaturesPerSecond(d time.Duration) float64 {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0
	}
	digest := sha256.Sum256([]byte("sealpost"))
	var count atomic.Int64
	// A warm-up first (caches, the CPU's clock), not counted; then d on every core.
	begin := time.Now().Add(rsaWarmUp)
	deadline := begin.Add(d)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for now := time.Now(); now.Before(deadline); now = time.Now() {
				if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err == nil && !now.Before(begin) {
					count.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(count.Load()) / time.Since(begin).Seconds()
}

// rsaProbe is how long the yardstick signs on every core (a 1-second probe read 368–1,350/s
// where the steady rate was 1,200–2,400/s); rsaWarmUp is signed first and not counted.
const (
	rsaProbe  = 3 * time.Second
	rsaWarmUp = 300 * time.Millisecond
)

type loadResult struct {
	perSecond float64 // delivered at the sink
	accepted  float64 // 250s received by the clients
	p50, p99  time.Duration
	delivered []int // by node, each what that node accepted
}

// load submits m messages over conc reused connections (at rate/s if rate > 0) and waits for all
// of them at the sink. Message i goes to node i mod the cluster's size, client j connects to node
// j mod that size, and each node must deliver, on its own port of the sink, as many messages as it
// accepted.
func load(cluster benchCluster, sink *sink, m, conc, rate int, mix benchMix, tag string) (loadResult, error) {
	jobs := dealJobs(len(cluster), conc, m, rate)
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var firstErr error
	base := sink.total()
	sinkBase := cluster.deliveries(sink)
	start := time.Now()
	var wg sync.WaitGroup
	for j := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := j % len(cluster)
			c, err := dialSMTP(cluster[node].addr)
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				for range jobs[node] {
				}
				return
			}
			defer c.Close()
			for i := range jobs[node] {
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
	delivered, err := cluster.checkDeliveries(sink, sinkBase, m)
	if err != nil {
		return loadResult{}, err
	}
	res := loadResult{
		perSecond: float64(m) / last.Sub(start).Seconds(),
		accepted:  float64(m) / acceptedIn.Seconds(),
		delivered: delivered,
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		res.p50, res.p99 = lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)*99/100].Round(100*time.Microsecond)
	}
	return res, nil
}

// dealJobs deals the message numbers 0…m-1 round-robin to nodes channels (at rate/s if rate > 0),
// closing them after the last. Each channel holds up to conc numbers, so that a node whose
// clients are all busy does not hold up the next node's, as a bank MTA's connections to the
// nodes do not wait for each other.
func dealJobs(nodes, conc, m, rate int) []chan int {
	jobs := make([]chan int, nodes)
	for k := range jobs {
		jobs[k] = make(chan int, conc)
	}
	go func() {
		defer func() {
			for _, ch := range jobs {
				close(ch)
			}
		}()
		// Message i is due at start + i/rate: a moment lost waiting for a busy client is made up
		// by the next ones (a ticker drops the ticks it missed, and offered 160–184/s for 200).
		start := time.Now()
		for i := range m {
			if rate > 0 {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
					time.Sleep(d)
				}
			}
			jobs[i%nodes] <- i
		}
	}()
	return jobs
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

// sink is an SMTP server that records when each Message-ID and each recipient's latest message
// arrived, and how many messages arrived on each of its listeners (one per gateway node).
type sink struct {
	srv     *smtp.Server
	addr    string // the first listener's
	mu      sync.Mutex
	arrived map[string]time.Time // by Message-ID (in angle brackets) and by recipient
	times   []time.Time          // every arrival, in order
	byAddr  map[string]int       // arrivals by the listener's address
	changed chan struct{}
	// slow is how long, in nanoseconds, the sink takes over each message to a recipient that is
	// not an OTP customer (otpAddress): a slow next hop, so that statements wait in the queue.
	slow atomic.Int64
}

func newSink() (*sink, error) {
	s := &sink{arrived: map[string]time.Time{}, byAddr: map[string]int{}, changed: make(chan struct{})}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "sink.localhost"
	s.srv.MaxMessageBytes = 64 << 20
	s.srv.MaxRecipients = 1000
	s.srv.AllowInsecureAuth = true
	addr, err := s.listen()
	if err != nil {
		return nil, err
	}
	s.addr = addr
	return s, nil
}

// listen adds a loopback listener to the sink and returns its address, so that a node delivering
// there has its arrivals counted apart (deliveredTo) in the one record of every arrival.
func (s *sink) listen() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go s.srv.Serve(l)
	return l.Addr().String(), nil
}

func (s *sink) close() { s.srv.Close() }

// NewSession implements smtp.Backend.
func (s *sink) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &sinkSession{s: s, at: c.Conn().LocalAddr().String()}, nil
}

func (s *sink) record(id, at string, rcpts []string) {
	s.mu.Lock()
	now := time.Now()
	if id != "" {
		s.arrived[id] = now
	}
	for _, r := range rcpts {
		s.arrived[r] = now
	}
	s.times = append(s.times, now)
	s.byAddr[at]++
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// deliveredTo is how many messages arrived so far on the listener at addr.
func (s *sink) deliveredTo(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byAddr[addr]
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

type sinkSession struct {
	s     *sink
	at    string // the listener's address
	rcpts []string
}

func (*sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.rcpts = append(ss.rcpts, to)
	return nil
}
func (ss *sinkSession) Reset()     { ss.rcpts = nil }
func (*sinkSession) Logout() error { return nil }
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
	if d := ss.s.slow.Load(); d > 0 && slices.ContainsFunc(ss.rcpts, func(r string) bool { return !strings.HasPrefix(r, "otp-") }) {
		time.Sleep(time.Duration(d))
	}
	ss.s.record(id, ss.at, ss.rcpts)
	ss.rcpts = nil
	return nil
}
