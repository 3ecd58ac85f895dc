package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/store"
)

// NewSession implements Handler for the inbound listener. Any client may connect (it is the bank's
// MX side); only the support addresses are accepted as recipients.
func (ib *Inbound) NewSession(c Client) (Session, error) {
	if ib.d.Desk == nil || ib.d.Held == nil {
		return nil, errors.New("gateway: inbound sessions need the desk queue and the quarantine")
	}
	return &inboundSession{ib: ib, client: c}, nil
}

type inboundSession struct {
	ib     *Inbound
	client Client
	from   string
	rcpts  []string
	inTx   bool
}

func (s *inboundSession) Mail(from string, size int64) error {
	// smtpd checks envelope addresses for every listener; the same rule here keeps any other caller
	// of the pipeline from passing a control character on (8-bit is smtpd's to judge per session).
	if err := CheckSender(from, true); err != nil {
		return err
	}
	s.Reset()
	s.from, s.inTx = from, true
	return nil
}

func (s *inboundSession) Rcpt(to string) error {
	if !s.inTx {
		return Refuse(503, [3]int{5, 5, 1}, "MAIL first", nil)
	}
	if err := CheckRecipient(to, true); err != nil {
		return err
	}
	n, err := keys.AddressKey(to)
	if err != nil {
		return Refuse(501, [3]int{5, 1, 3}, "bad recipient address", err)
	}
	if !s.ib.support[n] {
		return Refuse(550, [3]int{5, 1, 1}, "no such support address here", ErrRelayDenied)
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *inboundSession) Reset() { s.from, s.rcpts, s.inTx = "", nil, false }

func (s *inboundSession) Close() {}

func (s *inboundSession) Data(msg []byte) (string, error) {
	if !s.inTx || len(s.rcpts) == 0 {
		return "", Refuse(503, [3]int{5, 5, 1}, "RCPT first", nil)
	}
	defer s.Reset()
	ctx := context.Background()
	arrival := s.ib.now()
	res, err := s.ib.Evaluate(ctx, msg, arrival)
	if err != nil {
		s.ib.log.Info("inbound refused", "reason", ReasonCode(err), "reply", replyCode(err))
		s.ib.observe("", "", "refused")
		return "", err
	}
	var id string
	if res.Action == ActionQuarantine {
		id, err = s.ib.hold(ctx, msg, s.from, s.rcpts, arrival, res)
	} else {
		id, err = s.ib.deliver(ctx, s.from, s.rcpts, arrival, res, false)
	}
	if err == nil {
		s.ib.observe(res.Verdict.Status, res.Verdict.Method, res.Action)
	}
	return id, err
}

func (ib *Inbound) observe(status, method, action string) {
	if ib.d.Observer != nil {
		ib.d.Observer.Inbound(status, method, action)
	}
}

// hold stores the message as received and indexes it; the reply is the same 250 as a delivery, so
// a sender cannot probe the policy.
func (ib *Inbound) hold(ctx context.Context, msg []byte, from string, to []string, arrival time.Time, res *InboundResult) (string, error) {
	id := queue.NewHeldID()
	if err := ib.d.Held.Put(id, heldEnvelope(from, to, msg)); err != nil {
		return "", TempFail("cannot store the message now, try again later", errors.Join(ErrQueueUnavailable, err))
	}
	h := store.Held{ID: id, Received: arrival, From: heldFrom(msg), Reason: res.Reason, Verdict: res.Verdict.Header(), Ref: id}
	if err := ib.d.Store.Hold(ctx, h); err != nil {
		_ = ib.d.Held.Remove(id)
		return "", TempFail("cannot store the message now, try again later", errors.Join(ErrQueueUnavailable, err))
	}
	ib.log.Info("inbound held", "held_id", id, "status", res.Verdict.Status, "failed", strings.Join(res.Verdict.Failures, ","), "method", res.Verdict.Method)
	return id, nil
}

// heldMagic starts a held file: the envelope, then the message exactly as received.
const heldMagic = "sealpost-held-v1\r\n"

func heldEnvelope(from string, to []string, msg []byte) []byte {
	env := heldMagic + from + "\r\n" + strings.Join(to, " ") + "\r\n"
	return append([]byte(env), msg...)
}

// ParseHeld splits a held file into its envelope and the message as received.
func ParseHeld(b []byte) (from string, to []string, msg []byte, err error) {
	rest, ok := bytes.CutPrefix(b, []byte(heldMagic))
	if !ok {
		return "", nil, nil, errors.New("not a held message file")
	}
	f, rest, ok1 := bytes.Cut(rest, []byte("\r\n"))
	t, rest, ok2 := bytes.Cut(rest, []byte("\r\n"))
	to = strings.Fields(string(t))
	if !ok1 || !ok2 || len(to) == 0 {
		return "", nil, nil, errors.New("held message file without its envelope")
	}
	return string(f), to, rest, nil
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
func (ib *Inbound) deliver(ctx context.Context, from string, to []string, arrival time.Time, res *InboundResult, released bool) (string, error) {
	data := res.Message
	if released {
		data = append([]byte("Sealpost-Released: held message released by an operator; verdict unchanged\r\n"), data...)
	}
	id, err := ib.d.Desk.Put(ctx, &queue.Message{From: from, Recipients: to, Data: data, Class: ClassInbound,
		Expires: ib.now().Add(time.Duration(ib.cfg.Lifetime))})
	if err != nil {
		return "", TempFail("cannot queue the message now, try again later", errors.Join(ErrQueueUnavailable, err))
	}
	v := res.Verdict
	ib.log.Info("inbound queued", "queue_id", id, "status", v.Status, "failed", strings.Join(v.Failures, ","), "method", v.Method, "thread", v.Thread != "", "released", released)
	ib.record(ctx, res, arrival)
	return id, nil
}

// record links the reply to its thread and remembers what a verified client supports. Failures
// are logged: the message is already queued, and losing a thread link loses no mail.
func (ib *Inbound) record(ctx context.Context, res *InboundResult, arrival time.Time) {
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
}

// ReleaseReleased delivers every held message an operator released (sealpost quarantine release)
// whose bytes are still held, with its verdict unchanged, then removes the bytes. It is safe to
// run again after a crash: at worst a released message is delivered twice.
func (ib *Inbound) ReleaseReleased(ctx context.Context) (int, error) {
	list, err := ib.d.Store.HeldList(ctx, true)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, h := range list {
		if !h.Released {
			continue
		}
		raw, err := ib.d.Held.Get(h.ID)
		if errors.Is(err, os.ErrNotExist) {
			continue // already delivered
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sender, rcpts, msg, err := ParseHeld(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("held %s: %w", h.ID, err))
			continue
		}
		res, err := ib.Evaluate(ctx, msg, h.Received)
		if err != nil {
			errs = append(errs, fmt.Errorf("held %s: %w", h.ID, err))
			continue
		}
		if _, err := ib.deliver(ctx, sender, rcpts, h.Received, res, true); err != nil {
			errs = append(errs, fmt.Errorf("held %s: %w", h.ID, err))
			continue
		}
		if err := ib.d.Held.Remove(h.ID); err != nil {
			errs = append(errs, fmt.Errorf("held %s: %w", h.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// replyCode is the reply's code and enhanced code only (its text can name addresses).
func replyCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return fmt.Sprintf("%d %d.%d.%d", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2])
	}
	return "451 4.3.0"
}
