package inbound

import (
	"context"
	"errors"
	stdmime "mime"
	"strings"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/quarantine"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/store"
)

// NewSession implements Handler for the inbound listener. Any client may connect (it is the bank's
// MX side); only the support addresses are accepted as recipients.
func (ib *Pipeline) NewSession(c gateway.Client) (gateway.Session, error) {
	if ib.d.Desk == nil || ib.d.Quarantine == nil {
		return nil, errors.New("inbound: inbound sessions need the desk queue and the quarantine")
	}
	return &inboundSession{ib: ib, client: c}, nil
}

type inboundSession struct {
	ib     *Pipeline
	client gateway.Client
	from   string
	rcpts  []string
	inTx   bool
}

func (s *inboundSession) Mail(_ context.Context, from string, size int64) error {
	// smtpd checks envelope addresses for every listener; the same rule here keeps any other caller
	// of the pipeline from passing a control character on (8-bit is smtpd's to judge per session).
	if err := gateway.CheckSender(from, true); err != nil {
		return err
	}
	s.Reset()
	s.from, s.inTx = from, true
	return nil
}

func (s *inboundSession) Rcpt(_ context.Context, to string) error {
	if !s.inTx {
		return gateway.Refuse(503, [3]int{5, 5, 1}, "MAIL first", nil)
	}
	if err := gateway.CheckRecipient(to, true); err != nil {
		return err
	}
	n, err := address.Key(to)
	if err != nil {
		return gateway.Refuse(501, [3]int{5, 1, 3}, "bad recipient address", err)
	}
	if !s.ib.support[n] {
		return gateway.Refuse(550, [3]int{5, 1, 1}, "no such support address here", gateway.ErrRelayDenied)
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *inboundSession) Reset() { s.from, s.rcpts, s.inTx = "", nil, false }

func (s *inboundSession) Close() {}

func (s *inboundSession) Data(ctx context.Context, msg []byte) (string, error) {
	if !s.inTx || len(s.rcpts) == 0 {
		return "", gateway.Refuse(503, [3]int{5, 5, 1}, "RCPT first", nil)
	}
	defer s.Reset()
	arrival := s.ib.now()
	res, err := s.ib.Evaluate(ctx, msg, arrival)
	if err != nil {
		s.ib.log.Info("inbound refused", "reason", gateway.ReasonCode(err), "reply", gateway.ReplyFor(err).Status())
		s.ib.observe("", "", "refused")
		return "", err
	}
	var id string
	if res.Action == ActionQuarantine {
		id, err = s.ib.hold(ctx, msg, s.from, s.rcpts, arrival, res)
	} else {
		id, err = s.ib.deliver(ctx, s.from, s.rcpts, arrival, res, nil)
	}
	if err == nil {
		s.ib.observe(res.Verdict.Status, res.Verdict.Method, res.Action)
		s.ib.recordEvidence(ctx, msg, id, res.Action, arrival, res)
	}
	return id, err
}

func (ib *Pipeline) observe(status, method, action string) {
	if ib.d.Observer != nil {
		ib.d.Observer.Inbound(status, method, action)
	}
}

// hold keeps the message as received in the quarantine; the reply is the same 250 as a delivery,
// so a sender cannot probe the policy.
func (ib *Pipeline) hold(ctx context.Context, msg []byte, from string, to []string, arrival time.Time, res *Result) (string, error) {
	entry := store.Held{Received: arrival, From: heldFrom(msg), Reason: res.Reason, Verdict: res.Verdict.Header()}
	id, err := ib.d.Quarantine.Hold(ctx, quarantine.Message{From: from, To: to, Data: msg}, entry)
	if err != nil {
		return "", gateway.TempFail("cannot store the message now, try again later", errors.Join(gateway.ErrQueueUnavailable, err))
	}
	ib.log.Info("inbound held", "held_id", id, "status", res.Verdict.Status, "failed", strings.Join(res.Verdict.Failures, ","), "method", res.Verdict.Method)
	return id, nil
}

// heldFrom is the From field as received, bounded, for the operator's list.
func heldFrom(msg []byte) string {
	v := mime.HeaderValue(mime.ToCRLF(msg), "From")
	if len(v) > 200 {
		v = v[:200]
	}
	return v
}

// deliver queues the desk's message, then records the thread message and the capabilities.
func (ib *Pipeline) deliver(ctx context.Context, from string, to []string, arrival time.Time, res *Result, release *store.Held) (string, error) {
	data := res.Message
	released := release != nil
	if released {
		data = append(releasedField(release), data...)
	}
	id, err := ib.d.Desk.Put(ctx, &queue.Message{From: from, Recipients: to, Data: data, Class: Class,
		Expires: ib.now().Add(time.Duration(ib.cfg.Lifetime))})
	if err != nil {
		return "", gateway.TempFail("cannot queue the message now, try again later", errors.Join(gateway.ErrQueueUnavailable, err))
	}
	v := res.Verdict
	ib.log.Info("inbound queued", "queue_id", id, "status", v.Status, "failed", strings.Join(v.Failures, ","), "method", v.Method, "thread", v.Thread != "", "released", released)
	ib.record(ctx, res, arrival)
	return id, nil
}

// releasedField is the Sealpost-Released field of a released message's desk copy: who released
// it, when and why (made safe to show, bounded, RFC 2047 words where not ASCII, folded), and that
// its verdict is unchanged. The whole reason is in the entry and the evidence log.
func releasedField(h *store.Held) []byte {
	by := cleanText(h.DecidedBy, 100)
	if by == "" {
		by = "an operator"
	}
	v := "held message released by " + stdmime.QEncoding.Encode("utf-8", by)
	if !h.DecidedAt.IsZero() {
		v += " at " + h.DecidedAt.UTC().Format(time.RFC3339)
	}
	if why := cleanText(h.DecidedWhy, 300); why != "" {
		v += "; reason: " + stdmime.QEncoding.Encode("utf-8", why)
	}
	return foldedField("Sealpost-Released", v+"; verdict unchanged").Raw
}

// record links the reply to its thread and remembers what a verified client supports. Failures
// are logged: the message is already queued, and losing a thread link loses no mail.
func (ib *Pipeline) record(ctx context.Context, res *Result, arrival time.Time) {
	v := res.Verdict
	if v.Thread != "" && res.MessageID != "" {
		err := ib.d.Store.AddMessage(ctx, store.ThreadMessage{Token: v.Thread, MessageID: res.MessageID, Inbound: true, Verdict: v.Status, At: arrival})
		if err != nil {
			ib.log.Warn("thread link not recorded", "error", err)
		}
	}
	if res.capabilities != nil {
		if err := ib.d.Store.SetCapabilities(ctx, *res.capabilities); err != nil {
			ib.log.Warn("capabilities not recorded", "error", err)
		}
	}
	if l, ok := ib.d.Store.(Learner); ok && res.learned != nil {
		leaf := res.learned[0]
		err := l.PutRecipientKey(ctx, store.RecipientKey{Method: store.MethodSMIME, Fingerprint: keys.CertFingerprint(leaf),
			Data: keys.EncodeCertificates(res.learned...), Source: store.SourceLearned})
		if err != nil {
			ib.log.Warn("certificate not learned", "error", err)
		} else {
			ib.log.Info("certificate learned", "domain", address.Domain(res.Verdict.From), "fingerprint", keys.CertFingerprint(leaf))
		}
	}
}

// ReleaseReleased delivers every held message an operator released (sealpost quarantine release)
// whose bytes are still held, with its verdict unchanged (quarantine.DeliverReleased).
func (ib *Pipeline) ReleaseReleased(ctx context.Context) (int, error) {
	return ib.d.Quarantine.DeliverReleased(ctx, ib.DeliverReleased)
}

// DeliverReleased judges one released message again, as of its arrival, and queues it for the
// desk marked as released: the quarantine.Deliver of this pipeline.
func (ib *Pipeline) DeliverReleased(ctx context.Context, h store.Held, m *quarantine.Message) error {
	res, err := ib.Evaluate(ctx, m.Data, h.Received)
	if err != nil {
		return err
	}
	_, err = ib.deliver(ctx, m.From, m.To, h.Received, res, &h)
	return err
}
