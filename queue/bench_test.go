package queue

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// message2K is a 2 KB protected-looking message.
func message2K() []byte {
	hdr := "From: Bank <noreply@bank.example>\r\nTo: c@a.example\r\nSubject: Statement\r\n" +
		"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n"
	line := bytes.Repeat([]byte("A"), 76)
	var b bytes.Buffer
	b.WriteString(hdr)
	for b.Len() < 2048-78 {
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// BenchmarkPut measures a durable Put: write, fsync file, rename, fsync
// directory.
func BenchmarkPut(b *testing.B) {
	s := openSpool(b, b.TempDir(), &recordingHop{})
	m := &Message{From: "s@bank.example", Recipients: []string{"c@a.example"}, Data: message2K(),
		Class: "statement", Expires: time.Now().Add(time.Hour)}
	b.SetBytes(int64(len(m.Data)))
	cpu := processCPU()
	for b.Loop() {
		if _, err := s.Put(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
}

// BenchmarkPutConcurrent: durable Puts from 16 goroutines, as 16 SMTP sessions make them. cpu-µs/op
// is the process's CPU time (user and system) per Put: what the spool costs the gateway beside the
// signature, which fsync's wall time hides.
func BenchmarkPutConcurrent(b *testing.B) {
	concurrentPuts(b, openSpool(b, b.TempDir(), &recordingHop{}))
}

// acceptHop takes every message and keeps none.
type acceptHop struct{}

func (acceptHop) Deliver(_ context.Context, _ string, to []string, _ []byte) []error {
	return make([]error, len(to))
}

// BenchmarkPutAndDeliver: an entry's whole life in the spool, from 16 goroutines: durable Put,
// delivery to a hop that takes it, removal. cpu-µs/op as in BenchmarkPutConcurrent; it is what the
// spool costs a message of the gateway's throughput.
func BenchmarkPutAndDeliver(b *testing.B) {
	s := openSpool(b, b.TempDir(), acceptHop{})
	start(b, s)
	concurrentPuts(b, s)
}

// concurrentPuts puts 2 KB messages into s from 16 goroutines, waits until the spool is empty
// when it delivers, and reports the process's CPU time per message as cpu-µs/op.
func concurrentPuts(b *testing.B, s *testSpool) {
	m := &Message{From: "s@bank.example", Recipients: []string{"c@a.example"}, Data: message2K(),
		Class: "statement", Expires: time.Now().Add(time.Hour)}
	b.SetBytes(int64(len(m.Data)))
	b.SetParallelism(8)
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Put(context.Background(), m); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if s.started {
		waitFor(b, "every entry delivered", func() bool { l, _ := s.List(); return len(l) == 0 })
	}
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
}

func BenchmarkDeliverMaildir(b *testing.B) {
	md := &Maildir{Dir: filepath.Join(b.TempDir(), "Maildir")}
	data := message2K()
	to := []string{"c@a.example"}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if errs := md.Deliver(context.Background(), "s@bank.example", to, data); errs[0] != nil {
			b.Fatal(errs[0])
		}
	}
}

// BenchmarkDeliverSMTP relays to a loopback go-smtp sink over one reused
// connection (RSET between messages).
func BenchmarkDeliverSMTP(b *testing.B) {
	cert, pool := selfSigned(b)
	for _, bc := range []struct {
		name string
		tls  *tls.Config
		cfg  SmarthostConfig
	}{
		{"plain", nil, SmarthostConfig{TLS: TLSNone}},
		{"starttls", &tls.Config{Certificates: []tls.Certificate{cert}},
			SmarthostConfig{TLS: TLSRequired, TLSConfig: &tls.Config{RootCAs: pool}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sk := newSink(b, bc.tls, func(sk *sink) {})
			cfg := bc.cfg
			cfg.Addr = sk.Addr
			h := newSmarthost(b, cfg)
			data := message2K()
			to := []string{"c@a.example"}
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if errs := h.Deliver(context.Background(), "s@bank.example", to, data); errs[0] != nil {
					b.Fatal(errs[0])
				}
			}
			b.StopTimer()
			if n := sk.conns.Load(); n != 1 {
				b.Fatalf("%d connections, want 1 (reuse)", n)
			}
			sk.mu.Lock()
			sk.msgs = nil
			sk.mu.Unlock()
		})
	}
}

// BenchmarkSpoolToMaildir measures Put through delivery by the workers:
// the clock stops when the spool is empty again.
func BenchmarkSpoolToMaildir(b *testing.B) {
	md := &Maildir{Dir: filepath.Join(b.TempDir(), "Maildir")}
	s := openSpool(b, b.TempDir(), md)
	start(b, s)
	m := &Message{From: "s@bank.example", Recipients: []string{"c@a.example"}, Data: message2K(),
		Class: "statement", Expires: time.Now().Add(time.Hour)}
	b.SetBytes(int64(len(m.Data)))
	b.ResetTimer()
	for range b.N {
		if _, err := s.Put(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, "spool drained", func() bool { l, _ := s.List(); return len(l) == 0 })
}

// Load of BenchmarkOTPUnderStatementLoad: statements queued ahead, each of which the relay takes
// benchStatementDelay to accept, so the default workers stay saturated while the OTPs go.
const (
	benchStatements     = 5000
	benchStatementDelay = 5 * time.Millisecond
	benchOTPs           = 100 // per phase and iteration
)

// slowStatementHop is a relay that is slow for statements and quick for everything else, and
// says when each OTP was accepted.
type slowStatementHop struct {
	inFlight, accepted atomic.Int32 // statements
	otp                chan time.Time
}

func (h *slowStatementHop) Deliver(_ context.Context, from string, to []string, _ []byte) []error {
	if from == statementSender {
		h.inFlight.Add(1)
		time.Sleep(benchStatementDelay)
		h.inFlight.Add(-1)
		h.accepted.Add(int32(len(to)))
	} else {
		h.otp <- time.Now()
	}
	return make([]error, len(to))
}

// BenchmarkOTPUnderStatementLoad measures an OTP's latency from Put to acceptance by the next hop,
// one OTP at a time, on an idle spool and then with benchStatements statements due and the default
// workers busy with them, in the same run. It reports p50 and p99 of both and the ratio of the
// p99s (1 would be: the statements cost an OTP nothing); it asserts no time.
func BenchmarkOTPUnderStatementLoad(b *testing.B) {
	var idle, loaded []time.Duration
	var left int
	for b.Loop() { // ns/op: both phases, the load's setup included
		idle = append(idle, otpLatencies(b, 0, &left)...)
		loaded = append(loaded, otpLatencies(b, benchStatements, &left)...)
	}
	pct := func(d []time.Duration, p float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(idle, 0.50), "idle-p50-ms")
	b.ReportMetric(pct(idle, 0.99), "idle-p99-ms")
	b.ReportMetric(pct(loaded, 0.50), "load-p50-ms")
	b.ReportMetric(pct(loaded, 0.99), "load-p99-ms")
	b.ReportMetric(pct(loaded, 0.99)/pct(idle, 0.99), "load/idle-p99")
	b.ReportMetric(float64(left), "statements-left")
}

// otpLatencies opens a spool with the default configuration and statements statements queued and
// due, waits until they occupy every default worker, and returns the latencies of benchOTPs OTPs
// put one after the other. left is how many statements were still queued after the last OTP, the
// proof that the load lasted.
func otpLatencies(b *testing.B, statements int, left *int) []time.Duration {
	dir := b.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := DefaultConfig()
	cfg.Dir = dir
	if statements > 0 {
		// Queued without fsyncs, which the load need not pay for; the spool that delivers them
		// reads them again at Open, as after a restart.
		fill, err := Open(cfg, &recordingHop{}, WithLogger(quiet), withFileOps(noSyncOps{}))
		if err != nil {
			b.Fatal(err)
		}
		putMany(b, &testSpool{Spool: fill}, statements, statementMessage())
		if err := fill.Close(); err != nil {
			b.Fatal(err)
		}
	}
	hop := &slowStatementHop{otp: make(chan time.Time, 1)}
	s, err := Open(cfg, hop, WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Start(ctx)
	if statements > 0 {
		waitFor(b, "the default workers busy", func() bool { return int(hop.inFlight.Load()) == cfg.Workers })
	}
	lat := make([]time.Duration, 0, benchOTPs)
	for range benchOTPs {
		t0 := time.Now()
		if _, err := s.Put(ctx, otpMessage()); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-hop.otp).Sub(t0))
	}
	if statements > 0 {
		*left, _ = s.Stats()
		if *left == 0 {
			b.Fatalf("the %d statements were all delivered before the OTPs were; the load did not last", statements)
		}
	}
	cancel()
	return lat
}
