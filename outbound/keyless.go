package outbound

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	stdmime "mime"
	"strings"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/store"
	"github.com/sealpost/sealpost/templates"
)

// MailboxMagic names the format of a sealed message in the secure mailbox (keys.Sealer).
const MailboxMagic = "sealpost-mailbox-v1\r\n"

// Mailbox is the secure mailbox in the shared store, where a keyless customer's message waits for
// online banking. It is declared here, where it is used; the store implements it.
type Mailbox interface {
	// PutMailboxItem stores an item; store.ErrConflict when its ID is taken.
	PutMailboxItem(ctx context.Context, m store.MailboxItem) error
}

// mailbox is where keyless customers' messages go, and how they are sealed.
type mailbox struct {
	store  Mailbox
	sealer *keys.Sealer
}

// WithMailbox lets classes whose policy is keyless: notify serve customers without a key: their
// message, signed and timestamped, waits in m sealed under key (keys.DataDir.MailboxKey: 32
// bytes, never in the store), and they get a signed notice. Without it, those customers are
// refused as under keyless: refuse.
func WithMailbox(m Mailbox, key []byte) Option {
	return func(g *Pipeline) {
		s, err := keys.NewSealer(key, MailboxMagic)
		if err != nil {
			g.optErr = errors.Join(g.optErr, fmt.Errorf("outbound: mailbox: %w", err))
			return
		}
		g.mailbox = &mailbox{store: m, sealer: s}
	}
}

// WithTemplates renders the messages sealpost writes (the keyless notice) from set, the bank's
// overrides under DATA/templates with the embedded defaults (default: templates.Default()).
func WithTemplates(set *templates.Set) Option { return func(g *Pipeline) { g.templates = set } }

// mailboxID names a keyless recipient's copy of a message: the same message to the same customer
// from the same sender has the same ID, so a client retrying after a failure (no 250) does not put
// it in the mailbox twice.
func mailboxID(from, to string, msg []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", from, strings.ToLower(to))
	h.Write(msg)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h.Sum(nil)[:20]))
}

// deposit puts the message, signed and timestamped, into the secure mailbox of each keyless
// recipient, sealed, and returns the notices to queue for them. The mailbox is written first: a
// notice is never sent for a message that is not waiting.
func (s *session) deposit(ctx context.Context, h mime.Header, body, msg []byte, class string, policy Policy) ([]output, error) {
	to := Split(s.rcpts).Notify
	if len(to) == 0 {
		return nil, nil
	}
	prepared, err := mime.PrepareEntity(h, body, mime.Options{HeaderProtection: policy.HeaderProtection})
	if err != nil {
		return nil, protectError(err)
	}
	start := time.Now()
	signed, err := s.g.smime.Sign(ctx, prepared)
	if err != nil {
		return nil, protectError(err)
	}
	s.g.obs.Protected("mailbox", time.Since(start))
	now := s.g.now()
	for _, addr := range to {
		if err := s.store(ctx, addr, class, policy, signed, msg, now); err != nil {
			return nil, err
		}
	}
	from, err := mime.SingleFrom(h)
	if err != nil {
		return nil, protectError(err)
	}
	var outs []output
	for _, addr := range to {
		n, err := s.notice(ctx, from, addr, class, now)
		if err != nil {
			return nil, err
		}
		outs = append(outs, n)
	}
	return outs, nil
}

// store seals signed for addr and puts it in addr's mailbox.
func (s *session) store(ctx context.Context, addr, class string, policy Policy, signed, msg []byte, now time.Time) error {
	id := mailboxID(s.from, addr, msg)
	sealed, err := s.g.mailbox.sealer.Seal(id, signed)
	if err != nil {
		return err
	}
	n, err := store.NormalizeAddress(addr)
	if err != nil {
		return gateway.Refuse(553, [3]int{5, 1, 3}, "recipient address cannot be used", err)
	}
	item := store.MailboxItem{ID: id, Address: n, Class: class, Received: now, Expires: now.Add(policy.mailboxExpiry()), Size: len(signed), Data: sealed}
	err = s.g.mailbox.store.PutMailboxItem(ctx, item)
	if errors.Is(err, store.ErrConflict) {
		return nil // put there by an earlier try of this message that got no 250
	}
	if err != nil {
		return gateway.TempFail("cannot store the message for online banking now, try again later", err)
	}
	s.g.log.Info("waiting in the secure mailbox", "mailbox_id", id, "class", class, "domain", address.Domain(addr), "bytes", len(signed))
	return nil
}

// notice renders, builds and signs the notice to addr: the bank, online banking, addr, nothing else.
func (s *session) notice(ctx context.Context, from, addr, class string, now time.Time) (output, error) {
	n := s.g.cfg.Notice
	// A statement's notice says a statement waits; any other class's, that a message does.
	var m templates.Message = templates.Notice{Bank: n.Bank, URL: n.URL, To: addr, Locale: n.Locale}
	if class == ClassStatement {
		m = templates.StatementMessage{Bank: n.Bank, URL: n.URL, To: addr, Locale: n.Locale}
	}
	r, err := s.g.templates.Render(m)
	if err != nil {
		return output{}, err
	}
	id, err := newMessageID("notice", from)
	if err != nil {
		return output{}, err
	}
	msg, err := r.Message(from, addr, now, id)
	if err != nil {
		return output{}, err
	}
	prepared, err := mime.Prepare(msg, mime.Options{})
	if err != nil {
		return output{}, protectError(err)
	}
	sctx, seals := evidence.CollectSeals(ctx)
	signed, err := s.g.smime.Sign(sctx, prepared)
	if err != nil {
		return output{}, protectError(err)
	}
	return output{method: "notice", to: []string{addr}, data: signed, seals: seals()}, nil
}

// newMessageID is a fresh Message-ID at the sender's domain, its local part starting with kind.
func newMessageID(kind, from string) (string, error) {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "<" + kind + "." + strings.ToLower(base32.StdEncoding.EncodeToString(b[:])) + "@" + address.Domain(from) + ">", nil
}

// MailboxVerification is what a message from the secure mailbox verifies to, for online banking
// to show beside it: who signed it, whether the signature holds, and the timestamp's time.
type MailboxVerification struct {
	Signer         string    `json:"signer"`          // the signing certificate's address (or subject)
	SignatureValid bool      `json:"signature_valid"` // the signature verifies and chains to the bank's roots
	Timestamp      time.Time `json:"timestamp"`       // the RFC 3161 token's time; zero without a valid one
	Problem        string    `json:"problem,omitempty"`
}

// VerifyMailboxMessage checks a message the secure mailbox holds (Open it first) as a customer's
// client would: the bank's signature against roots, its timestamp against tsaRoots.
func VerifyMailboxMessage(msg []byte, roots, tsaRoots *x509.CertPool) MailboxVerification {
	in, err := smime.Inspect(msg, smime.InboundOptions{Roots: roots, TSARoots: tsaRoots})
	if err != nil {
		return MailboxVerification{Problem: err.Error()}
	}
	var v MailboxVerification
	if in.Signer != nil {
		v.Signer = in.Signer.Subject.String()
		if len(in.Signer.EmailAddresses) > 0 {
			v.Signer = in.Signer.EmailAddresses[0]
		}
	}
	if in.Timestamp != nil && in.TimestampErr == nil {
		v.Timestamp = in.SignedAt.UTC()
	}
	if err := in.Err(); err != nil {
		v.Problem = err.Error()
		return v
	}
	v.SignatureValid = in.Signed
	return v
}

// OpenMailbox opens what the secure mailbox holds under id with key (keys.DataDir.MailboxKey).
func OpenMailbox(key []byte, id string, sealed []byte) ([]byte, error) {
	s, err := keys.NewSealer(key, MailboxMagic)
	if err != nil {
		return nil, err
	}
	return s.Open(id, sealed)
}

// MailboxSubject is a mailbox message's Subject, RFC 2047 words decoded, for online banking's list.
func MailboxSubject(msg []byte) string {
	raw := mime.HeaderValue(msg, "Subject")
	d, err := new(stdmime.WordDecoder).DecodeHeader(raw)
	if err != nil {
		return raw
	}
	return d
}
