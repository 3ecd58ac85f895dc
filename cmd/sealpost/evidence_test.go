package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/keys"
)

// evidenceRecords reads the instance's evidence log as it is on disk.
func evidenceRecords(t *testing.T, data string) []*evidence.Record {
	t.Helper()
	fb, err := evidence.OpenFileBackendReadOnly(evidenceDir(data))
	if err != nil {
		t.Fatal(err)
	}
	var out []*evidence.Record
	if err := scanRecords(fb, func(r *evidence.Record) { out = append(out, r) }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestServeEvidenceEndToEnd: a statement over SMTP is recorded before its 250 with the digest of
// the very bytes the next hop received, and its delivery when it happens; evidence find and show
// read them, evidence verify accepts the log with its checkpoint, and names the record an edit
// changed.
func TestServeEvidenceEndToEnd(t *testing.T) {
	interop.Tool(t, "openssl")
	interop.Tool(t, "sha256sum")
	inst, cfg, alice, _ := testInstance(t, nil)
	statement := "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Statement\r\n\r\nYour balance is 3,00 EUR.\r\n"
	res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, statement)
	if res.Err != nil {
		t.Fatalf("submit: %+v", res)
	}
	msgs, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*evidence.Record
	waitFor(t, "the delivery's record", func() bool {
		recs = evidenceRecords(t, cfg.Data)
		return len(recs) == 2
	})
	out, del := recs[0].Outbound, recs[1].Delivery
	sum := sha256.Sum256(msgs[0])
	if out == nil || del == nil || out.SentSHA256 != hex.EncodeToString(sum[:]) || out.Method != "smime" ||
		out.KeyFingerprints[0] != keys.CertFingerprint(alice.Certificate()) || out.TokenTime.IsZero() || len(out.SignatureSHA256) != 64 {
		t.Fatalf("records %+v %+v; want the copy with the digest of the bytes delivered", out, del)
	}
	if del.QueueID != out.QueueID || del.Recipient != "alice@example.com" || del.Outcome != "delivered" || !strings.Contains(res.Reply, out.QueueID) {
		t.Fatalf("delivery record %+v for %s (reply %q)", del, out.QueueID, res.Reply)
	}
	code, found, errOut := runCLI(t, "", "evidence", "find", "-data", cfg.Data, "-to", "Alice@Example.com", "-since", time.Now().Add(-time.Hour).Format(time.DateOnly))
	if code != 0 || !strings.Contains(found, "outbound") || !strings.Contains(found, "delivered") || !strings.Contains(found, out.QueueID) {
		t.Fatalf("evidence find: %d\n%s%s", code, found, errOut)
	}
	if code, shown, errOut := runCLI(t, "", "evidence", "show", "-data", cfg.Data, out.QueueID); code != 0 || strings.Count(shown, out.QueueID) != 2 {
		t.Fatalf("evidence show: %d\n%s%s", code, shown, errOut)
	}
	if _, err := inst.evidence.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, verified, errOut := runCLI(t, "", "evidence", "verify", "-data", cfg.Data)
	if code != 0 || !strings.Contains(verified, "2 records") || !strings.Contains(verified, "1 checkpoints verified") {
		t.Fatalf("evidence verify: %d\n%s%s", code, verified, errOut)
	}

	// The customer's copy, with a trace field their server added, is found and proven; the exported
	// bundle verifies with openssl and sha256sum alone.
	received := filepath.Join(t.TempDir(), "statement.eml")
	if err := os.WriteFile(received, append([]byte("Return-Path: <statements@bank.example>\r\n"), msgs[0]...), 0o600); err != nil {
		t.Fatal(err)
	}
	code, proven, errOut := runCLI(t, "", "evidence", "prove", "-data", cfg.Data, received)
	if code != 0 || !strings.Contains(proven, "record 0:") || !strings.Contains(proven, "verified: the record is in the log") {
		t.Fatalf("evidence prove: %d\n%s%s", code, proven, errOut)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	if code, _, errOut := runCLI(t, "", "evidence", "export", "-data", cfg.Data, "-out", bundle, "-message", received, out.QueueID); code != 0 {
		t.Fatalf("evidence export: %d\n%s", code, errOut)
	}
	check := exec.Command("sh", "verify.sh")
	check.Dir = bundle
	if b, err := check.CombinedOutput(); err != nil || !strings.Contains(string(b), "as recorded") || !strings.Contains(string(b), "inclusion proven") {
		t.Fatalf("the bundle's verify.sh: %v\n%s", err, b)
	}

	// Before the TSA's certificate ages out, an operator has the gateway renew the checkpoint; the
	// request and the renewal are recorded, verify checks it, and the bundle carries it.
	code, renewed, errOut := runCLI(t, "", "evidence", "renew", "-data", cfg.Data, "-by", "ops-lead", "-reason", "the TSA certificate expires in March")
	if code != 0 || !strings.Contains(renewed, "renewed: ") || !strings.Contains(renewed, "checkpoint of 2 records") {
		t.Fatalf("evidence renew: %d\n%s%s", code, renewed, errOut)
	}
	var asked, done *evidence.Action
	for _, r := range evidenceRecords(t, cfg.Data) {
		if a := r.Action; a != nil && a.Action == actionRenewRequested {
			asked = a
		} else if a != nil && a.Action == actionRenewed {
			done = a
		}
	}
	if asked == nil || asked.Actor != "ops-lead" || asked.Reason != "the TSA certificate expires in March" ||
		done == nil || done.Reason != "requested by ops-lead" || !strings.Contains(done.Detail, "checkpoint of 2 records") {
		t.Fatalf("the renewal's records: %+v %+v", asked, done)
	}
	if code, verified, errOut := runCLI(t, "", "evidence", "verify", "-data", cfg.Data); code != 0 || !strings.Contains(verified, "1 renewals verified, the newest of the checkpoint of 2 records") {
		t.Fatalf("evidence verify after a renewal: %d\n%s%s", code, verified, errOut)
	}
	renewedBundle := filepath.Join(t.TempDir(), "renewed")
	if code, _, errOut := runCLI(t, "", "evidence", "export", "-data", cfg.Data, "-out", renewedBundle, out.QueueID); code != 0 {
		t.Fatalf("evidence export after a renewal: %d\n%s", code, errOut)
	}
	check = exec.Command("sh", "verify.sh")
	check.Dir = renewedBundle
	if b, err := check.CombinedOutput(); err != nil || strings.Count(string(b), "Verification: OK") != 2 || !strings.Contains(string(b), "inclusion proven") {
		t.Fatalf("the renewed bundle's verify.sh: %v\n%s", err, b)
	}
	if code, _, errOut := runCLI(t, "", "evidence", "renew", "-data", cfg.Data, "-node", "someone-else", "-wait", "0"); code != 1 || !strings.Contains(errOut, "not someone-else's") {
		t.Fatalf("evidence renew of another node's chain on a file log: %d %s", code, errOut)
	}

	// Someone edits the recipient of the first record.
	seg := filepath.Join(evidenceDir(cfg.Data), "records-00000000000000000000.log")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seg, bytes.Replace(b, []byte(`"to":["alice@example.com"]`), []byte(`"to":["alice@example.org"]`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "", "evidence", "verify", "-data", cfg.Data); code != 1 || !strings.Contains(errOut, "record 0") || !strings.Contains(errOut, "changed") {
		t.Fatalf("evidence verify after an edit: %d\n%s", code, errOut)
	}
}

// TestServeEvidenceOnPostgres: two nodes on one PostgreSQL each keep their own chain there (named
// by DATA/evidence-node); each statement is in its node's chain, and evidence verify with either
// node's configuration checks that node's chain.
func TestServeEvidenceOnPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.PasswordDSN(pg.NewDatabase(t), pgtest.Password)
	a, cfgA, fileA, _ := pgNodeWith(t, dsn, nil)
	b, cfgB, fileB, _ := pgNodeWith(t, dsn, nil)
	for _, inst := range []*instance{a, b, a} {
		if res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, e2eStatement); res.Err != nil {
			t.Fatalf("submit: %+v", res)
		}
	}
	for inst, sent := range map[*instance]uint64{a: 2, b: 1} {
		// Each statement's record, then its delivery's (gathered by the outcome recorder).
		waitFor(t, "the deliveries' records", func() bool { return inst.evidence.Size() == 2*sent })
		if _, err := inst.evidence.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(evidenceDir(cfgA.Data)); err == nil {
		t.Error("with PostgreSQL the chain is in the store, yet the data directory has evidence files")
	}
	nodeA, _ := os.ReadFile(filepath.Join(cfgA.Data, "evidence-node"))
	nodeB, _ := os.ReadFile(filepath.Join(cfgB.Data, "evidence-node"))
	if len(nodeA) == 0 || bytes.Equal(nodeA, nodeB) {
		t.Fatalf("node names %q and %q; want two", nodeA, nodeB)
	}
	for file, sent := range map[string]int{fileA: 2, fileB: 1} {
		code, out, errOut := runCLI(t, "", "evidence", "verify", "-config", file)
		if code != 0 || !regexp.MustCompile(`[1-9] checkpoints verified`).MatchString(out) {
			t.Errorf("evidence verify -config %s: %d\n%s%s", file, code, out, errOut)
		}
		code, found, errOut := runCLI(t, "", "evidence", "find", "-config", file, "-to", "alice@example.com")
		if n := strings.Count(found, " outbound "); code != 0 || n != sent {
			t.Errorf("evidence find -config %s: %d, %d statements\n%s%s; want %d", file, code, n, found, errOut, sent)
		}
	}
	// An operator on node A asks node B's gateway to renew B's chain: B does, A's is left alone.
	name := strings.TrimSpace(string(nodeB))
	code, renewed, errOut := runCLI(t, "", "evidence", "renew", "-config", fileA, "-node", name)
	if code != 0 || !strings.Contains(renewed, "renewed: "+name+"'s checkpoint of 2 records") {
		t.Fatalf("evidence renew -node %s: %d\n%s%s", name, code, renewed, errOut)
	}
	if _, out, _ := runCLI(t, "", "evidence", "verify", "-config", fileB); !strings.Contains(out, "1 renewals verified") {
		t.Errorf("node B's chain after its renewal: %s", out)
	}
	// Read from node A with -node (these test nodes have development CAs of their own, so only
	// find, which needs no trust, reads across; the bank's nodes share its identities).
	if code, out, errOut := runCLI(t, "", "evidence", "find", "-config", fileA, "-node", name, "-to", "alice@example.com"); code != 0 || strings.Count(out, " outbound ") != 1 {
		t.Errorf("node B's chain read from node A with -node: %s%s; want B's one statement", out, errOut)
	}
	if code, out, _ := runCLI(t, "", "evidence", "find", "-config", fileA, "-node", name, "-subject", name); code != 0 || !strings.Contains(out, "evidence-renewed") {
		t.Errorf("evidence find -node %s -subject %s: %s", name, name, out)
	}
	if _, out, _ := runCLI(t, "", "evidence", "verify", "-config", fileA); strings.Contains(out, "renewals") {
		t.Errorf("node A's chain was renewed too: %s", out)
	}
}
