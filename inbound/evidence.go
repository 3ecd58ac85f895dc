package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/sealpost/sealpost/evidence"
)

// Evidence is the log customers' replies are recorded in with their verdicts (evidence.Log).
type Evidence interface {
	Append(ctx context.Context, recs ...*evidence.Record) error
}

// WithEvidence records each reply accepted — its sender, verdict, signer, the digest of the bytes
// received, the time and the thread — once it is queued for the desk or held (default: none).
func WithEvidence(e Evidence) Option { return func(d *deps) { d.Evidence = e } }

// recordEvidence appends the reply's record. The reply is already queued or held: a failure is
// logged and the 250 stands (a customer's reply is never refused for the bank's log).
func (ib *Pipeline) recordEvidence(ctx context.Context, msg []byte, id, action string, arrival time.Time, res *Result) {
	if ib.d.Evidence == nil {
		return
	}
	v := res.Verdict
	d := sha256.Sum256(msg)
	rec := &evidence.Inbound{QueueID: id, From: v.From, Verdict: v.Status, Reason: strings.Join(v.Failures, ","),
		Signer: v.Fingerprint, SignatureSHA256: v.SignatureSHA256, MessageSHA256: hex.EncodeToString(d[:]), Received: arrival.UTC(), Thread: v.Thread, Action: action}
	if v.Timestamped {
		rec.TokenTime = v.SignedAt.UTC()
	}
	if err := ib.d.Evidence.Append(context.WithoutCancel(ctx), &evidence.Record{Kind: evidence.KindInbound, Inbound: rec}); err != nil {
		ib.log.Error("evidence: cannot record a reply", "id", id, "err", err.Error())
	}
}
