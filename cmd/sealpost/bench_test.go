package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/store"
)

// supportOps is the store's work for the bench's default mix with -postgres (every other message a
// support reply to alice): each message reads alice's capabilities; each support reply starts a
// thread and links two Message-IDs to it (the submitter's and the thread's).
const supportOps = "2.50 operations/message (AddMessage 1.00, Capabilities 1.00, NewThread 0.50)"

// TestBenchPostgres: sealpost bench -postgres measures the relay with the embedded SQLite and with
// a private PostgreSQL in one run, counts the same store operations per message on both, and
// prints the ratio.
func TestBenchPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run; skipped with -short")
	}
	pgtest.Start(t) // skips (or fails under SEALPOST_INTEROP=require) without PostgreSQL
	code, out, errOut := runCLI(t, "", "bench", "-n", "40", "-c", "4", "-rate", "0", "-postgres")
	for _, want := range []string{
		"throughput (file keys): 40 messages of 2048 bytes (50% support)",
		"store (file keys): " + supportOps,
		"PostgreSQL store: a private PostgreSQL on 127.0.0.1 (fsync on), max_conns 10",
		"throughput (file keys, PostgreSQL store): 40 messages",
		"store (file keys, PostgreSQL store): " + supportOps,
		"PostgreSQL ÷ SQLite store: ",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("bench -postgres: exit %d, want %q in\n%s\n%s", code, want, out, errOut)
		}
	}
}

// TestBenchPostgresNodes: sealpost bench -postgres -nodes 2 runs one gateway, then two on the same
// PostgreSQL database, in one run: the two nodes' figures are printed next to the one's, each node
// delivers (on its own port of the one sink) exactly the messages dealt to it, every message is
// delivered, and the store's work per message is the same as on one node.
func TestBenchPostgresNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run; skipped with -short")
	}
	pgtest.Start(t) // skips (or fails under SEALPOST_INTEROP=require) without PostgreSQL
	// 41 messages: 20 support replies (messages 1, 3, …, 39), dealt 21 to node 1 and 20 to node 2.
	const ops = "2.46 operations/message (AddMessage 0.98, Capabilities 1.00, NewThread 0.49)"
	code, out, errOut := runCLI(t, "", "bench", "-n", "41", "-c", "4", "-rate", "5", "-seconds", "2", "-postgres", "-nodes", "2")
	for _, want := range []string{
		"throughput (file keys, PostgreSQL store): 41 messages of 2048 bytes (50% support), 4 clients: ",
		"store (file keys, PostgreSQL store): " + ops,
		"PostgreSQL ÷ SQLite store: ",
		"throughput (file keys, PostgreSQL store, 2 nodes): 41 messages of 2048 bytes (50% support), 4 clients: ",
		"store (file keys, PostgreSQL store, 2 nodes): " + ops,
		"delivered (file keys, PostgreSQL store, 2 nodes): 41 of 41 messages (node 1: 21, node 2: 20)\n",
		"latency (file keys, PostgreSQL store, 2 nodes) at 5 messages/s offered (10 messages): p50 ",
		"2 nodes ÷ 1 node, PostgreSQL store: ",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("bench -postgres -nodes 2: exit %d, want %q in\n%s\n%s", code, want, out, errOut)
		}
	}
	if strings.Contains(out, "delivered (file keys, PostgreSQL store):") {
		t.Fatalf("bench prints per-node deliveries for the one-node run:\n%s", out)
	}
}

// TestBenchNodesUsage: -nodes needs -postgres (nodes on SQLite share nothing), at least one node,
// and a client for each node.
func TestBenchNodesUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-nodes", "2"},
		{"-postgres", "-nodes", "0"},
		{"-postgres", "-nodes", "3", "-c", "2"},
	} {
		code, out, errOut := runCLI(t, "", append([]string{"bench"}, args...)...)
		if code != 2 || !strings.Contains(errOut, "nodes") {
			t.Fatalf("bench %v: exit %d, want 2 and a usage error naming nodes\n%s\n%s", args, code, out, errOut)
		}
	}
}

// TestBenchOTPUsage: -otp needs statements to load the relay with and runs of at least a second.
func TestBenchOTPUsage(t *testing.T) {
	for _, args := range [][]string{{"-otp", "-otp-load", "0"}, {"-otp", "-otp-seconds", "0"}} {
		code, out, errOut := runCLI(t, "", append([]string{"bench"}, args...)...)
		if code != 2 || !strings.Contains(errOut, "otp-") {
			t.Fatalf("bench %v: exit %d, want 2 and a usage error naming the flag\n%s\n%s", args, code, out, errOut)
		}
	}
}

// TestBenchDSNFile: with -dsn-file the PostgreSQL run uses that database, and -support 0 (only
// statements) leaves one store operation per message, alice's capabilities.
func TestBenchDSNFile(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run; skipped with -short")
	}
	pg := pgtest.Start(t)
	dsn := filepath.Join(t.TempDir(), "pg.dsn")
	if err := os.WriteFile(dsn, []byte(pg.PasswordDSN(pg.NewDatabase(t), pgtest.Password)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "bench", "-n", "20", "-c", "2", "-rate", "0", "-postgres", "-dsn-file", dsn, "-support", "0")
	for _, want := range []string{"PostgreSQL store: PostgreSQL from " + dsn,
		"store (file keys, PostgreSQL store): 1.00 operations/message (Capabilities 1.00)"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("bench -dsn-file: exit %d, want %q in\n%s\n%s", code, want, out, errOut)
		}
	}
	if strings.Contains(out+errOut, pgtest.Password) {
		t.Fatalf("bench prints the password:\n%s%s", out, errOut)
	}
}

// BenchmarkSupportMessage: one support reply to alice (S/MIME) through a running gateway, over a
// reused SMTP connection, until it reaches the sink, against each store: the reply starts a thread
// in the store (storeops/op counts the calls).
func BenchmarkSupportMessage(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchSupportMessage(b, nil) })
	b.Run("postgres", func(b *testing.B) {
		pg := pgtest.Start(b)
		dsn := filepath.Join(b.TempDir(), "pg.dsn")
		if err := os.WriteFile(dsn, []byte(pg.PasswordDSN(pg.NewDatabase(b), pgtest.Password)), 0o600); err != nil {
			b.Fatal(err)
		}
		benchSupportMessage(b, &PostgresConfig{DSNFile: dsn, PostgresConfig: store.DefaultPostgresConfig()})
	})
}

func benchSupportMessage(b *testing.B, pg *PostgresConfig) {
	sink, err := newSink()
	if err != nil {
		b.Fatal(err)
	}
	defer sink.close()
	inst, counter, done, err := benchInstance(sink, benchOptions{postgres: pg}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer done()
	c, err := dialSMTP(inst.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	mix := benchMix{size: 2048, support: 100}
	before := counter.snapshot()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		from, msg := mix.message(i, "<bench-support@bank.example>")
		if _, err := submitTimed(c, from, msg); err != nil {
			b.Fatal(err)
		}
		i++
		if _, err := sink.waitTotal(i, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	ops, _ := storeOps(before, counter.snapshot(), i)
	b.ReportMetric(ops, "storeops/op")
}

// TestBenchOTP: sealpost bench -otp measures OTP latency in the same run, with no load and while
// statements load the relay, and while a slow next hop keeps statements waiting in the queue: each
// run's figures are printed next to the targets, every code's mail reaches the sink, and
// the statement runs' backlogs and rates are shown. No figure is
// asserted: this machine's speed is not the test's subject.
func TestBenchOTP(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run; skipped with -short")
	}
	code, out, errOut := runCLI(t, "", "bench", "-n", "10", "-c", "4", "-rate", "0", "-otp", "-otp-load", "200", "-otp-seconds", "1")
	for _, want := range []string{
		"OTP latency, no load, at 200 codes/s offered (200 codes, 200 delivered): p50 ",
		"(target p99 ≤ 20ms); API answered p50 ",
		"OTP latency, under load, at 20 codes/s offered (20 codes, 20 delivered) while 200 statements were sent: p50 ",
		"(target p99 ≤ 1s, aim ≤ 250ms); API answered p50 ",
		"; statements queued ahead of the codes: ",
		"OTP latency, under load, at 20 codes/s offered (20 codes, 20 delivered) while 200 statements were sent to a next hop that takes 50ms over each: p50 ",
		"OTP load: 200 statements delivered at ",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("bench -otp: exit %d, want %q in\n%s\n%s", code, want, out, errOut)
		}
	}
}

// TestBenchEvidencePairs: -evidence -pairs 2 runs evidence off and on again twice after the first
// run on, prints each pair's ratio of messages/s and of CPU per message, then their medians;
// -pairs out of range is a usage error.
func TestBenchEvidencePairs(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run; skipped with -short")
	}
	code, out, errOut := runCLI(t, "", "bench", "-n", "20", "-c", "4", "-rate", "0", "-evidence", "-pairs", "2")
	for _, want := range []string{
		"throughput (file keys): 20 messages",
		"throughput (evidence off, 1): 20 messages",
		"throughput (evidence on, 2): 20 messages",
		"throughput (evidence off, 2): 20 messages",
		"throughput (evidence on, 3): 20 messages",
		"evidence on ÷ off, pair 1: ",
		"evidence on ÷ off, pair 2: ",
		"evidence on ÷ off, median of 2 pairs: ",
		"; CPU per message on ÷ off ",
		" ms/message (this process",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("bench -evidence -pairs 2: exit %d, want %q in\n%s\n%s", code, want, out, errOut)
		}
	}
	for _, p := range []string{"0", "51"} {
		code, out, errOut := runCLI(t, "", "bench", "-evidence", "-pairs", p)
		if code != 2 || !strings.Contains(errOut, "pairs") {
			t.Fatalf("bench -pairs %s: exit %d, want 2 and a usage error naming pairs\n%s\n%s", p, code, out, errOut)
		}
	}
}

// TestBenchProcess: -process runs serve as its own process and prints its own CPU per message and
// peak memory; -statements sends a statement of each size to a fresh serve and prints its peak
// memory and the growth per MB; -openssl compares with the openssl pipeline. The figures are
// printed, never judged here (no timed assertions): only that each was measured (a zero would
// mean /proc or the pipeline was not read). -statements without -process is a usage error.
func TestBenchProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run; skipped with -short")
	}
	interop.Tool(t, "openssl")
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("-process reads /proc (Linux)")
	}
	out, err := exec.Command(testBinary(t), "bench", "-process", "-n", "20", "-c", "4", "-rate", "0", "-openssl", "-statements", "1,2").CombinedOutput()
	if err != nil {
		t.Fatalf("bench -process: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`serve \(file keys, its own process\): CPU [1-9][0-9.]* ms/message; one RSA-2048 signature is [0-9.]+ ms of a core here, the rest -?[0-9.]+ ms \(target ≤ 0.5\); peak RSS [1-9][0-9.]* MB`),
		regexp.MustCompile(`throughput \(file keys\): 20 messages`),
		regexp.MustCompile(`openssl cms -sign \| openssl cms -encrypt \(all \d+ cores, over 3s\): [1-9]\d* messages/s; sealpost ÷ openssl pipeline: [0-9.]+`),
		regexp.MustCompile(`memory: a 1 MB statement \(\d+ bytes\) through serve: peak RSS [1-9][0-9.]* MB \([1-9][0-9.]* MB before it`),
		regexp.MustCompile(`memory: a 2 MB statement \(\d+ bytes\) through serve: peak RSS`),
		regexp.MustCompile(`memory: growth per MB of message from \d+ to \d+ bytes: -?[0-9.]+ MB \(target ≤ 2.5\)`),
	} {
		if !want.Match(out) {
			t.Fatalf("bench -process: want %s in\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("store (file keys)")) {
		t.Errorf("bench -process printed the store calls, which it cannot count in another process:\n%s", out)
	}
	code, _, errOut := runCLI(t, "", "bench", "-statements", "10")
	if code != 2 || !strings.Contains(errOut, "-statements needs -process") {
		t.Errorf("bench -statements without -process: exit %d\n%s", code, errOut)
	}
}
