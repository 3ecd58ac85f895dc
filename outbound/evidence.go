package outbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/queue"
)

// Evidence is the log each protected copy is recorded in before it is queued (evidence.Log).
type Evidence interface {
	Append(ctx context.Context, recs ...*evidence.Record) error
}

// WithEvidence records every protected copy in e — the digest of the exact bytes queued, of its
// signature value, its timestamp token and the recipients' keys — durably before the copy is
// queued, so that no message gets its 250 without its record (default: none).
func WithEvidence(e Evidence) Option { return func(g *Pipeline) { g.evidence = e } }

// WithFinish sets the last step each protected copy passes before it is recorded and queued
// (DKIM signing): what it returns is what is sent, and what the evidence's digest is of.
func WithFinish(f func(data []byte) ([]byte, error)) Option {
	return func(g *Pipeline) { g.finish = f }
}

// record is the evidence record of copy o, queued as id.
func (s *session) record(id, class string, o output) *evidence.Record {
	d := sha256.Sum256(o.data)
	r := &evidence.Outbound{QueueID: id, Class: class, From: s.from, To: o.to, Method: o.method, SentSHA256: hex.EncodeToString(d[:])}
	if len(o.seals) > 0 {
		seal := o.seals[len(o.seals)-1]
		r.SignatureSHA256, r.TokenTime, r.TokenSerial, r.TSA = seal.SignatureSHA256, seal.TokenTime, seal.TokenSerial, seal.TSA
	}
	for _, addr := range o.to {
		fp, source := "", ""
		for _, rc := range s.rcpts {
			if rc.Addr != addr || rc.Choice == nil {
				continue
			}
			source = string(rc.Choice.Source)
			switch {
			case o.method == "pgp" && rc.Choice.PGPKey != nil:
				fp = keys.PGPFingerprint(rc.Choice.PGPKey)
			case o.method == "smime" && rc.Choice.Certificate != nil:
				fp = keys.CertFingerprint(rc.Choice.Certificate)
			}
		}
		if fp != "" {
			r.KeyFingerprints = append(r.KeyFingerprints, fp)
			r.KeySources = append(r.KeySources, source)
		}
	}
	return &evidence.Record{Kind: evidence.KindOutbound, Outbound: r}
}

// finishAndRecord passes each copy through the finishing step, gives it its queue ID and records
// them all in the evidence log, durably. It returns the IDs, in outs' order.
func (s *session) finishAndRecord(ctx context.Context, outs []output, class string) ([]string, error) {
	ids := make([]string, len(outs))
	for i := range outs {
		ids[i] = queue.NewID()
		if s.g.finish != nil {
			data, err := s.g.finish(outs[i].data)
			if err != nil {
				return nil, fmt.Errorf("finish: %w", err)
			}
			outs[i].data = data
		}
	}
	if s.g.evidence == nil {
		return ids, nil
	}
	recs := make([]*evidence.Record, len(outs))
	for i, o := range outs {
		recs[i] = s.record(ids[i], class, o)
	}
	if err := s.g.evidence.Append(ctx, recs...); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	return ids, nil
}

// notQueued records that copies recorded as ids were not queued after all (the client was told
// 451), so that the log does not show them as sent.
func (s *session) notQueued(ctx context.Context, ids []string, outs []output, why error) {
	if s.g.evidence == nil {
		return
	}
	var recs []*evidence.Record
	for i, id := range ids {
		for _, to := range outs[i].to {
			recs = append(recs, &evidence.Record{Kind: evidence.KindDelivery, Delivery: &evidence.Delivery{
				QueueID: id, Recipient: to, Outcome: "not-queued", Reply: "the copy could not be queued; the client was told to try again: " + why.Error()}})
		}
	}
	if err := s.g.evidence.Append(context.WithoutCancel(ctx), recs...); err != nil {
		s.g.log.Error("evidence: cannot record copies that were not queued", "err", err.Error())
	}
}
