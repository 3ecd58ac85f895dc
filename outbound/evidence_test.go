package outbound

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"testing"

	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
)

// evidenceLog is a file evidence log in a temporary directory, signed by the fixture's signer and
// timestamped by its TSA.
func evidenceLog(t testing.TB) (*evidence.Log, *evidence.FileBackend) {
	t.Helper()
	f := pipelinetest.Get(t)
	fb, err := evidence.OpenFileBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fb.Close() })
	l, err := evidence.Open(fb, "node-a", f.Signer, f.TSA, evidence.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return l, fb
}

// records are the log's records, decoded.
func records(t *testing.T, fb *evidence.FileBackend) []*evidence.Record {
	t.Helper()
	var out []*evidence.Record
	err := fb.Scan(0, func(_ evidence.Position, _ uint64, line []byte) error {
		r, err := evidence.Decode(line)
		out = append(out, r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEvidenceRecordedBeforeQueue: a statement to an S/MIME and an OpenPGP customer is recorded
// once per copy before it is queued: the queue ID, the digest of the exact bytes queued (after
// the finishing step), of the signature value, the token and the recipients' keys; the log
// verifies.
func TestEvidenceRecordedBeforeQueue(t *testing.T) {
	f := pipelinetest.Get(t)
	log, fb := evidenceLog(t)
	sp := &pipelinetest.MemSpool{}
	finish := func(b []byte) ([]byte, error) { return append([]byte("DKIM-Signature: v=1; test\r\n"), b...), nil }
	g, err := New(testConfig(), f.Direct, f.SMIME, sp, WithPGP(f.PGP), WithLogger(slog.New(slog.DiscardHandler)), WithEvidence(log), WithFinish(finish))
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: statements@bank.example\r\nTo: alice@example.com, carol@example.org\r\nSubject: Statement\r\n\r\nBalance: 1 234,56 EUR\r\n"
	if _, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"alice@example.com", "carol@example.org"}, msg); err != nil {
		t.Fatal(err)
	}
	recs := records(t, fb)
	if len(recs) != 2 {
		t.Fatalf("%d records; want one per copy", len(recs))
	}
	for _, r := range recs {
		o := r.Outbound
		m := sp.Msgs[o.QueueID]
		if m == nil {
			t.Fatalf("record names %s, which was not queued", o.QueueID)
		}
		d := sha256.Sum256(m.Data)
		if o.SentSHA256 != hex.EncodeToString(d[:]) || !bytes.HasPrefix(m.Data, []byte("DKIM-Signature")) {
			t.Errorf("%s: sent_sha256 is not of the bytes queued", o.Method)
		}
		if o.Class != ClassStatement || o.From != "statements@bank.example" || len(o.To) != 1 || len(o.KeyFingerprints) != 1 ||
			len(o.SignatureSHA256) != 64 || o.TokenTime.IsZero() || o.TokenSerial == "" || o.TSA == "" || o.KeySources[0] != "registered" {
			t.Errorf("record %+v", o)
		}
		switch o.Method {
		case "smime":
			if o.To[0] != "alice@example.com" || o.KeyFingerprints[0] != keys.CertFingerprint(f.Alice.Certificate()) {
				t.Errorf("smime record %+v", o)
			}
		case "pgp":
			if o.To[0] != "carol@example.org" || o.KeyFingerprints[0] != keys.PGPFingerprint(f.Carol) {
				t.Errorf("pgp record %+v", o)
			}
		default:
			t.Errorf("method %q", o.Method)
		}
	}
	if recs[0].Outbound.SignatureSHA256 == recs[1].Outbound.SignatureSHA256 {
		t.Error("both copies name the same signature")
	}
	if _, err := log.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(f.CA.Certificate())
	if rep, err := evidence.Verify(fb, evidence.Trust{Roots: roots, TSARoots: roots}); err != nil || rep.Problem != nil || rep.Verified != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// failingEvidence refuses every append (a full disk under the log).
type failingEvidence struct{}

func (failingEvidence) Append(context.Context, ...*evidence.Record) error {
	return errors.New("no space left on device")
}

// TestNoEvidenceNo250: when the record cannot be made durable the message gets 451 and nothing
// is queued (invariant 13).
func TestNoEvidenceNo250(t *testing.T) {
	f := pipelinetest.Get(t)
	sp := &pipelinetest.MemSpool{}
	g, err := New(testConfig(), f.Direct, f.SMIME, sp, WithPGP(f.PGP), WithLogger(slog.New(slog.DiscardHandler)), WithEvidence(failingEvidence{}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"alice@example.com"}, statementMsg)
	if code := replyCode(err); code != 451 || sp.Puts() != 0 {
		t.Fatalf("with the evidence log failing: %v (%d), %d queued; want 451 and nothing queued", err, code, sp.Puts())
	}
}

// TestQueueFailureRecorded: a copy recorded but then refused by the spool is recorded as not
// queued, and the client gets 451.
func TestQueueFailureRecorded(t *testing.T) {
	f := pipelinetest.Get(t)
	log, fb := evidenceLog(t)
	sp := &pipelinetest.MemSpool{FailAt: 1}
	g, err := New(testConfig(), f.Direct, f.SMIME, sp, WithPGP(f.PGP), WithLogger(slog.New(slog.DiscardHandler)), WithEvidence(log))
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"alice@example.com"}, statementMsg)
	if code := replyCode(err); code != 451 {
		t.Fatalf("spool failing: %v; want 451", err)
	}
	recs := records(t, fb)
	if len(recs) != 2 || recs[1].Delivery == nil || recs[1].Delivery.Outcome != "not-queued" || recs[1].Delivery.QueueID != recs[0].Outbound.QueueID {
		t.Fatalf("records %+v; want the copy, then not-queued", recs)
	}
}

// replyCode is the SMTP code err answers with (0 for none).
func replyCode(err error) int {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}
