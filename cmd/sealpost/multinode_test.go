package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/pgserver"
	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/mime"
)

// Two nodes, one bank (issue 13, "How it is tested: Two nodes"): two `sealpost serve` processes
// with their own spools on one PostgreSQL, set up as README's "Running several nodes" says
// (multinode_cluster_test.go).

// statement is a statement to alice with Message-ID id, which the protected message keeps in its
// outer header.
func statement(id string) string {
	return "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Statement\r\nMessage-ID: " + id +
		"\r\n\r\nYour balance is 1 234,56 EUR.\r\n"
}

// acks records which Message-IDs got a 250 and from which node.
type acks struct {
	mu  sync.Mutex
	ids map[string]string // Message-ID -> node
}

func (a *acks) add(id, node string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ids == nil {
		a.ids = map[string]string{}
	}
	a.ids[id] = node
}

func (a *acks) count(node string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, from := range a.ids {
		if from == node {
			n++
		}
	}
	return n
}

// waitDelivered waits until the sink holds every acknowledged message, each known by the key
// that keyOf gives its header, and fails the test naming what is missing after limit. It returns
// how often the sink got each key.
func (c *cluster) waitDelivered(a *acks, keyOf func(mail.Header) string, limit time.Duration) map[string]int {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := sinkKeys(c.sink.snapshot(), keyOf)
		a.mu.Lock()
		var missing []string
		for id, node := range a.ids {
			if got[id] == 0 {
				missing = append(missing, id+" (node "+node+")")
			}
		}
		a.mu.Unlock()
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d acknowledged messages never reached the smarthost after %v, e.g. %v\nnode A:\n%s\nnode B:\n%s",
				len(missing), limit, missing[:min(len(missing), 5)], c.nodes[0].log(), c.nodes[1].log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// messageID keys a message by its Message-ID, which a protected statement keeps outside.
func messageID(h mail.Header) string { return strings.TrimSpace(h.Get("Message-ID")) }

// subjectOrMessageID keys a message by its Subject and, failing that, its Message-ID: support
// mail gets a Message-ID of its thread, and keeps its Subject outside (no header protection).
func subjectOrMessageID(h mail.Header) string {
	if s := h.Get("Subject"); strings.HasPrefix(s, "Case ") {
		return s
	}
	return messageID(h)
}

// TestTwoNodesOneKilledUnderLoadLosesNothing: clients submit statements to both nodes at once;
// node A is SIGKILLed mid-run and node B keeps accepting (every submission to B gets its 250);
// A restarted on its data directory delivers its spool, and every message either node
// acknowledged reaches the smarthost. What A never acknowledged may or may not arrive. A cannot
// reach the smarthost until it has restarted, so what it acknowledged is all in its spool when
// it dies, and only the restarted process can deliver it.
func TestTwoNodesOneKilledUnderLoadLosesNothing(t *testing.T) {
	pg := pgtest.Start(t)
	c := newCluster(t, pg.PasswordDSN(pg.NewDatabase(t), pgtest.Password))
	a, b := c.nodes[0], c.nodes[1]
	aHop := gate{addr: freeAddr(t), target: c.sink.addr}
	a.smarthost = aHop.addr
	c.writeConfig(a)
	c.startAll()

	var acked acks
	var mu sync.Mutex
	attempted := map[string]bool{}
	var failures []string // what a node answered other than 250, but A once it is being killed
	var aKilled atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := func(n *clusterNode, g int) {
		defer wg.Done()
		conn, err := dialSMTP(n.smtp)
		if err != nil {
			mu.Lock()
			failures = append(failures, fmt.Sprintf("node %s: %v", n.name, err))
			mu.Unlock()
			return
		}
		defer conn.Close()
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("<kill-%s-%d-%d@bank.example>", n.name, g, seq)
			mu.Lock()
			attempted[id] = true
			mu.Unlock()
			res := send(conn, "statements@bank.example", []string{demoAlice}, []byte(statement(id)))
			switch {
			case res.Err == nil:
				acked.add(id, n.name)
			case n == a && aKilled.Load():
				return // A died under this client: no 250, the bank's MTA would send it elsewhere
			default:
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: %s", id, res.Reply))
				mu.Unlock()
				return
			}
		}
	}
	for g := range 3 {
		wg.Add(2)
		go client(a, g)
		go client(b, g)
	}
	waitFor(t, "both nodes to acknowledge load", func() bool { return acked.count("A") >= 10 && acked.count("B") >= 10 })
	aKilled.Store(true)
	a.kill()
	bAtKill := acked.count("B")
	waitFor(t, "node B to go on acknowledging after A died", func() bool {
		mu.Lock()
		failed := len(failures) > 0
		mu.Unlock()
		return failed || acked.count("B") >= bAtKill+20
	})
	close(stop)
	wg.Wait()
	if len(failures) != 0 {
		t.Fatalf("submissions without a 250 (node B's while A was dead among them): %v\nnode A:\n%s\nnode B:\n%s", failures, a.log(), b.log())
	}

	early := sinkKeys(c.sink.snapshot(), messageID)
	for id := range attempted {
		if early[id] > 0 && strings.HasPrefix(id, "<kill-A-") {
			t.Fatalf("the smarthost got %s from node A before its restart: the test does not test the restart", id)
		}
	}
	c.start(a)
	aHop.open(t)
	got := c.waitDelivered(&acked, messageID, 60*time.Second)
	dups := 0
	for id, n := range got {
		if !attempted[id] {
			t.Fatalf("the smarthost got %s, which was never submitted", id)
		}
		dups += n - 1
	}
	t.Logf("node A acknowledged %d before its SIGKILL, node B %d (%d after A died); %d delivered (%d without a 250), %d duplicates, none lost",
		acked.count("A"), acked.count("B"), acked.count("B")-bAtKill, len(got), len(got)-len(acked.ids), dups)
}

// supportMail is a message of the desk to alice: it opens a thread in the store, so it needs the
// store; tag makes each one recognisable in the smarthost's copy (the Subject stays outside).
func supportMail(tag string) string {
	return "From: support@bank.example\r\nTo: alice@example.com\r\nSubject: Case " + tag +
		"\r\nMessage-ID: <" + tag + "@bank.example>\r\n\r\nPlease confirm the payee.\r\n"
}

// isTempFail451 tells whether res is the 451 4.3.0 of a store that does not answer.
func isTempFail451(res sendResult) bool {
	var se *smtp.SMTPError
	return errors.As(res.Err, &se) && se.Code == 451 && se.EnhancedCode == (smtp.EnhancedCode{4, 3, 0})
}

// privatePostgres starts a PostgreSQL of the test's own (one it may halt), skipping without
// PostgreSQL as pgtest.Start does.
func privatePostgres(t *testing.T) *pgserver.Server {
	t.Helper()
	srv, err := pgserver.StartWith(pgserver.Options{})
	switch {
	case errors.Is(err, pgserver.ErrNotInstalled) && interop.Required():
		t.Fatalf("%v and SEALPOST_INTEROP=require", err)
	case errors.Is(err, pgserver.ErrNotInstalled):
		t.Skipf("%v; set SEALPOST_INTEROP=require to fail instead", err)
	case err != nil:
		t.Fatalf("private PostgreSQL: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

// TestTwoNodesPostgresStoppedAndRestarted: PostgreSQL stops under two running nodes. While it is
// down, support mail (which needs the store for its thread) and statements (whose evidence record
// is in the store: no 250 without it) get 451 4.3.0 on both — the bank's MTA keeps them — /readyz
// is 503 and sealpost_store_up 0. Once it runs again,
// without a restart of either node, both are ready and accept support mail again, and every
// message that got a 250, before, during or after, reaches the smarthost.
func TestTwoNodesPostgresStoppedAndRestarted(t *testing.T) {
	srv := privatePostgres(t)
	db, err := srv.CreateDatabase("nodes")
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, srv.PasswordDSN(db, pgserver.Password)+" connect_timeout=2")
	c.startAll()
	var acked acks
	mustAccept := func(n *clusterNode, from, key, msg string) {
		t.Helper()
		if res := submitSMTP(n.smtp, from, []string{demoAlice}, msg); res.Err != nil {
			t.Fatalf("node %s refused %s: %s\n%s", n.name, key, res.Reply, n.log())
		}
		acked.add(key, n.name)
	}
	for _, n := range c.nodes {
		c.waitReady(n, 200, "1")
		mustAccept(n, "support@bank.example", "Case before-"+n.name, supportMail("before-"+n.name))
	}

	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		c.waitReady(n, 503, "0")
		if res := submitSMTP(n.smtp, "support@bank.example", []string{demoAlice}, supportMail("down-"+n.name)); !isTempFail451(res) {
			t.Fatalf("node %s: support mail with PostgreSQL down: %q, want 451 4.3.0", n.name, res.Reply)
		}
		id := "<down-" + n.name + "@bank.example>"
		if res := submitSMTP(n.smtp, "statements@bank.example", []string{demoAlice}, statement(id)); !isTempFail451(res) {
			t.Fatalf("node %s: a statement with PostgreSQL (and so the evidence log) down: %q, want 451 4.3.0", n.name, res.Reply)
		}
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		c.waitReady(n, 200, "1")
		tag := "after-" + n.name
		var res sendResult
		start, tries := time.Now(), 0
		for res = (sendResult{Err: errors.New("not sent")}); res.Err != nil && time.Since(start) < 15*time.Second; tries++ {
			if tries > 0 {
				time.Sleep(200 * time.Millisecond)
			}
			res = submitSMTP(n.smtp, "support@bank.example", []string{demoAlice}, supportMail(tag))
		}
		if res.Err != nil {
			t.Fatalf("node %s: support mail 15s after PostgreSQL came back: %s\n%s", n.name, res.Reply, n.log())
		}
		acked.add("Case "+tag, n.name)
		t.Logf("node %s: ready again, support mail accepted at try %d", n.name, tries)
	}
	got := c.waitDelivered(&acked, subjectOrMessageID, 30*time.Second)
	for _, n := range c.nodes {
		if got["Case down-"+n.name] != 0 || got["<down-"+n.name+"@bank.example>"] != 0 {
			t.Fatalf("node %s delivered mail it answered 451 while PostgreSQL was down", n.name)
		}
	}
}

// retry calls try until it reports done or limit passes; it returns how long that took, whether
// it was done, and try's last result.
func retry(limit time.Duration, try func() (done bool, res sendResult)) (time.Duration, bool, sendResult) {
	start := time.Now()
	for {
		done, res := try()
		if done || time.Since(start) > limit {
			return time.Since(start), done, res
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noKey tells whether res is addr refused at RCPT for want of a key (550 5.7.1: statements must
// be encrypted).
func noKey(res sendResult, addr string) bool {
	return strings.HasPrefix(res.Refused[addr], "SMTP error 550")
}

// TestTwoNodesCustomerRegisteredOnAGetsEncryptedMailFromB: a customer's certificate imported with
// node A's CLI while both nodes run is in effect on node B without a restart: a statement to him
// submitted to B is accepted and reaches the smarthost as S/MIME enveloped data that his key opens
// (openssl cms). Removed with node B's CLI, node A refuses mail to him again. The issue wants each
// change in effect within 2 s; the test allows 15 and logs how long it took.
func TestTwoNodesCustomerRegisteredOnAGetsEncryptedMailFromB(t *testing.T) {
	pg := pgtest.Start(t)
	c := newCluster(t, pg.PasswordDSN(pg.NewDatabase(t), pgtest.Password))
	c.startAll()
	a, b := c.nodes[0], c.nodes[1]
	const dave, msgID = "dave@example.com", "<dave-1@bank.example>"
	daveID := c.customer(dave)
	cert, _ := writeIdentity(t, c.files, "dave", daveID)
	msg := "From: statements@bank.example\r\nTo: dave@example.com\r\nSubject: Statement\r\nMessage-ID: " + msgID +
		"\r\n\r\nYour balance is 9 876,54 EUR.\r\n"
	toDave := func(n *clusterNode) sendResult {
		return submitSMTP(n.smtp, "statements@bank.example", []string{dave}, msg)
	}
	if res := toDave(b); !noKey(res, dave) {
		t.Fatalf("node B before dave has a key: %+v, want 550 at RCPT", res)
	}

	c.mustCLI("keys", "import", "-config", a.config, cert)
	took, ok, res := retry(15*time.Second, func() (bool, sendResult) {
		res := toDave(b)
		return res.Err == nil || !noKey(res, dave), res
	})
	if !ok || res.Err != nil {
		t.Fatalf("node B %v after dave's certificate was imported on node A: %+v", took, res)
	}
	t.Logf("node B accepted mail to dave %v after keys import on node A (the issue wants at most 2s)", took.Round(time.Millisecond))
	var acked acks
	acked.add(msgID, b.name)
	c.waitDelivered(&acked, messageID, 30*time.Second)
	var sent []byte
	for _, m := range c.sink.snapshot() {
		if h, err := mail.ReadMessage(bytes.NewReader(m.data)); err == nil && messageID(h.Header) == msgID {
			if ct := h.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/pkcs7-mime") || !strings.Contains(ct, "enveloped-data") {
				t.Fatalf("node B sent dave's statement as %q, want S/MIME enveloped data", ct)
			}
			sent = m.data
		}
	}

	c.mustCLI("keys", "remove", "-config", b.config, dave)
	took, ok, res = retry(15*time.Second, func() (bool, sendResult) {
		res := toDave(a)
		return noKey(res, dave), res
	})
	if !ok {
		t.Fatalf("node A %v after dave was removed on node B: %+v, want 550 at RCPT", took, res)
	}
	t.Logf("node A refused mail to dave %v after keys remove on node B (the issue wants at most 2s)", took.Round(time.Millisecond))

	// Last, as it needs openssl: dave's key opens what B sent, signed by the bank.
	interop.Tool(t, "openssl")
	if content := opensslOpen(t, Config{Data: a.data}, daveID, sent); !bytes.Contains(content, []byte("9 876,54 EUR")) {
		t.Fatalf("what dave's key opens:\n%s", content)
	}
}

// TestTwoNodesReplyHeldOnAReleasedOnBReachesDeskOnce: an unsigned customer reply that node A holds
// is listed and released with node B's CLI, and the desk gets it once, marked released, though
// both nodes run their release loops: after the held bytes are gone from the database, the test
// waits for each node's loop to run twice more and the desk still has one copy.
func TestTwoNodesReplyHeldOnAReleasedOnBReachesDeskOnce(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.NewDatabase(t)
	c := newCluster(t, pg.PasswordDSN(db, pgtest.Password))
	c.startAll()
	a, b := c.nodes[0], c.nodes[1]
	if res := submitSMTP(a.inbound, demoAlice, []string{"support@bank.example"}, heldReply); res.Err != nil || !strings.Contains(res.Reply, "queued as") {
		t.Fatalf("node A's inbound listener: %q", res.Reply)
	}
	list := c.mustCLI("quarantine", "list", "-config", b.config)
	ids := regexp.MustCompile(`(?m)^([A-Z2-7]{16}) `).FindStringSubmatch(list)
	if ids == nil {
		t.Fatalf("node B's quarantine list does not show what node A held:\n%s\nnode A:\n%s", list, a.log())
	}
	id := ids[1]
	if n := len(c.desk.snapshot()); n != 0 {
		t.Fatalf("the desk got %d messages before the release", n)
	}

	c.mustCLI("quarantine", "release", "-config", b.config, "-reason", "checked", id)
	msgs, err := c.desk.wait(1, 3*releaseInterval)
	if err != nil {
		t.Fatalf("%v\nnode A:\n%s\nnode B:\n%s", err, a.log(), b.log())
	}
	d := mime.ToCRLF(msgs[0].data)
	if !bytes.HasPrefix(d, []byte("Sealpost-Released:")) || !bytes.Contains(d, []byte(heldPhrase)) {
		t.Fatalf("the desk got:\n%s", d)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	waitFor(t, "the held bytes to leave the database once delivered", func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM held_blobs WHERE id = $1`, []byte(id)).Scan(&n)
		return err == nil && n == 0
	})
	time.Sleep(2*releaseInterval + time.Second)
	if msgs := c.desk.snapshot(); len(msgs) != 1 {
		t.Fatalf("the desk got the released reply %d times", len(msgs))
	}
}
