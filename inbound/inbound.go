package inbound

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/quarantine"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/store"
)

// Inbound actions.
const (
	ActionDeliver    = "deliver"
	ActionQuarantine = "quarantine"
)

// Class labels the desk's queue entries (logs and DSNs).
const Class = "inbound"

// Config is the inbound side: which addresses are the support desk's, how the desk's
// Authentication-Results are labelled, and what happens to replies that do not verify.
//
// Whatever the On* settings say, two rules hold (DESIGN.md invariants 6 and 7): a customer who
// registered a key must sign with it (anything else from their address is held), and CBC-decrypted
// content without a valid signature is never delivered as trusted (held unless OnUnauthenticated is
// "deliver", and then only with its failing verdict).
type Config struct {
	// SupportAddresses are the only recipients the inbound listener accepts.
	SupportAddresses []string `json:"support_addresses"`
	// AuthServID names sealpost in Authentication-Results; incoming fields with this ID are removed.
	AuthServID string `json:"authserv_id"`
	// OnUnsigned: unsigned mail from customers who registered no key (deliver or quarantine).
	OnUnsigned string `json:"on_unsigned"`
	// OnUnregistered: valid signatures from customers who registered no key.
	OnUnregistered string `json:"on_unregistered"`
	// OnFailed: signed mail whose verification failed.
	OnFailed string `json:"on_failed"`
	// OnUnauthenticated: CBC-encrypted (unauthenticated) content that does not verify.
	OnUnauthenticated string `json:"on_unauthenticated"`
	// Lifetime bounds the delivery attempts to the desk.
	Lifetime config.Duration `json:"lifetime"`
	// SubjectTagVerified starts the Subject of a verified reply on the desk; "" adds none.
	SubjectTagVerified string `json:"subject_tag_verified"`
	// SubjectTagUnverified starts the Subject of every other reply on the desk; "" adds none.
	// It also marks the display name in the From of such a reply (that
	// mark stays "[NOT VERIFIED]" when the tag is "").
	SubjectTagUnverified string `json:"subject_tag_unverified"`
}

// Default Subject tags and the mark on an unverified sender's display name.
const (
	DefaultSubjectTagVerified   = "[verified]"
	DefaultSubjectTagUnverified = "[NOT VERIFIED]"
)

// DefaultConfig returns the inbound defaults, the only ones; SupportAddresses is left for the
// caller.
func DefaultConfig() Config {
	return Config{
		AuthServID:           "sealpost",
		OnUnsigned:           ActionDeliver,
		OnUnregistered:       ActionDeliver,
		OnFailed:             ActionQuarantine,
		OnUnauthenticated:    ActionQuarantine,
		Lifetime:             config.Duration(5 * 24 * time.Hour),
		SubjectTagVerified:   DefaultSubjectTagVerified,
		SubjectTagUnverified: DefaultSubjectTagUnverified,
	}
}

// Validate checks the configuration and changes nothing (the defaults are DefaultConfig's): an
// empty authserv_id or action and a zero lifetime are refused. It reports every problem, each a
// *config.FieldError named by its key (on_failed, authserv_id, support_addresses[0], …).
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	if len(c.SupportAddresses) == 0 {
		bad("support_addresses", "name at least one address")
	}
	for i, a := range c.SupportAddresses {
		if _, err := address.Normalize(a); err != nil {
			bad(fmt.Sprintf("support_addresses[%d]", i), "%q is not an email address", a)
		}
	}
	if c.AuthServID == "" {
		bad("authserv_id", "required: the name of sealpost in Authentication-Results (e.g. %q)", "sealpost")
	} else if headerToken(c.AuthServID) != c.AuthServID {
		bad("authserv_id", "%q is not a single token", c.AuthServID)
	}
	for _, p := range []struct{ name, v string }{{"on_unsigned", c.OnUnsigned}, {"on_unregistered", c.OnUnregistered},
		{"on_failed", c.OnFailed}, {"on_unauthenticated", c.OnUnauthenticated}} {
		if p.v != ActionDeliver && p.v != ActionQuarantine {
			bad(p.name, "%q is not deliver or quarantine", p.v)
		}
	}
	if c.Lifetime <= 0 {
		bad("lifetime", "must be positive (e.g. \"120h\")")
	}
	for _, p := range []struct{ name, v string }{{"subject_tag_verified", c.SubjectTagVerified}, {"subject_tag_unverified", c.SubjectTagUnverified}} {
		if problem := subjectTagProblem(p.v); problem != "" {
			bad(p.name, "%q %s", p.v, problem)
		}
	}
	if c.SubjectTagVerified != "" && strings.EqualFold(strings.TrimSpace(c.SubjectTagVerified), strings.TrimSpace(c.SubjectTagUnverified)) {
		bad("subject_tag_unverified", "must differ from subject_tag_verified")
	}
	return errors.Join(errs...)
}

// subjectTagProblem says what is wrong with a Subject tag, "" when nothing is.
func subjectTagProblem(tag string) string {
	switch {
	case tag == "":
		return ""
	case !utf8.ValidString(tag):
		return "is not UTF-8"
	case strings.TrimSpace(tag) != tag:
		return "starts or ends with white space"
	case utf8.RuneCountInString(tag) > 40:
		return "is longer than 40 characters"
	case strings.ContainsFunc(tag, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }):
		return "contains a control character"
	case strings.Contains(tag, "=?"):
		return "contains \"=?\" (an encoded-word opener)"
	}
	return ""
}

// deps are what the inbound pipeline decrypts with, trusts, and writes to.
type deps struct {
	// Identities decrypt S/MIME replies (the bank's support identities).
	Identities []*keys.Identity
	// PGPKeys decrypt OpenPGP replies: the bank's unlocked secret keys.
	PGPKeys openpgp.EntityList
	// Directory gives the trusted roots for customers' certificates and the customers' OpenPGP keys.
	Directory *keys.Directory
	// TSARoots verify timestamp tokens on customers' signatures; nil: the directory's roots.
	TSARoots *x509.CertPool
	// Store holds registrations, threads and capabilities.
	Store Store
	// Desk is the queue towards the support desk. Required for sessions and releases.
	Desk queue.Writer
	// Quarantine holds messages for an operator. Required for sessions and releases.
	Quarantine *quarantine.Quarantine
	// Observer, when set, counts verdicts and actions (metrics).
	Observer Observer
	Log      *slog.Logger
	// Revocations, when set, checks the signer's certificate against its CA's CRL or OCSP.
	Revocations Revocations
	// Evidence, when set, records each reply with its verdict.
	Evidence Evidence
}

// Revocations checks a certificate against its CA's CRL or OCSP responder (discovery's checker
// implements it): nil when good (or nothing names where to ask), a *keys.RevocationError when
// revoked, another error when it cannot be checked now.
type Revocations interface {
	CheckCertificate(ctx context.Context, cert, issuer *x509.Certificate) error
}

// WithRevocations checks each S/MIME signer's certificate: one revoked before the signing time
// fails the verdict with FailRevoked. A certificate that cannot be checked is judged without it.
func WithRevocations(r Revocations) Option { return func(d *deps) { d.Revocations = r } }

// Option configures a Pipeline at New.
type Option func(*deps)

// WithIdentities decrypts S/MIME replies with ids (the bank's support identities).
func WithIdentities(ids ...*keys.Identity) Option {
	return func(d *deps) { d.Identities = ids }
}

// WithPGPKeys decrypts OpenPGP replies with el (the bank's unlocked secret keys).
func WithPGPKeys(el openpgp.EntityList) Option { return func(d *deps) { d.PGPKeys = el } }

// WithTSARoots verifies timestamp tokens on customers' signatures against roots (default: the
// directory's roots).
func WithTSARoots(roots *x509.CertPool) Option { return func(d *deps) { d.TSARoots = roots } }

// WithDesk queues what the desk receives to w. Sessions and releases need it; Evaluate does not.
func WithDesk(w queue.Writer) Option { return func(d *deps) { d.Desk = w } }

// WithQuarantine holds messages for an operator in q. Sessions and releases need it; Evaluate
// does not.
func WithQuarantine(q *quarantine.Quarantine) Option { return func(d *deps) { d.Quarantine = q } }

// WithObserver counts verdicts and actions with o, for metrics (default, and with nil: none).
func WithObserver(o Observer) Option { return func(d *deps) { d.Observer = o } }

// WithLogger sets the structured logger (default, and with nil: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(d *deps) { d.Log = l } }

// Pipeline is the inbound pipeline: decrypt, verify, bind to From and to the registered key, link
// to a thread, and hand the desk a fresh message with the verdict; or hold it.
type Pipeline struct {
	cfg     Config
	d       deps
	support map[string]bool
	trust   atomic.Pointer[trust]
	tags    *regexp.Regexp // the configured Subject tags, any case
	log     *slog.Logger
	now     func() time.Time
}

// New returns the pipeline, which judges replies against st and trusts what directory holds;
// cfg must have been validated.
func New(cfg Config, st Store, directory *keys.Directory, opts ...Option) (*Pipeline, error) {
	if st == nil || directory == nil {
		return nil, errors.New("inbound: the inbound pipeline needs a store and a directory")
	}
	d := deps{Store: st, Directory: directory}
	for _, o := range opts {
		o(&d)
	}
	ib := &Pipeline{cfg: cfg, d: d, support: map[string]bool{}, log: d.Log, now: time.Now}
	if ib.log == nil {
		ib.log = slog.Default()
	}
	for _, a := range cfg.SupportAddresses {
		n, err := address.Key(a)
		if err != nil {
			return nil, err
		}
		ib.support[n] = true
	}
	var tags []string
	for _, t := range []string{cfg.SubjectTagVerified, cfg.SubjectTagUnverified} {
		if t != "" {
			tags = append(tags, regexp.QuoteMeta(t))
		}
	}
	ib.tags = regexp.MustCompile("(?i)" + strings.Join(tags, "|"))
	if len(tags) == 0 {
		ib.tags = regexp.MustCompile(`\A\z.`) // matches nothing
	}
	ib.SetDirectory(d.Directory)
	return ib, nil
}

// trust is what one directory makes of the trust anchors and known signers, computed once per
// directory rather than per message (Directory copies its pool and key list on every call).
type trust struct {
	roots, tsaRoots *x509.CertPool
	signers         openpgp.EntityList
	smime           knownSigners
	dir             *keys.Directory // for Learnable
	chains          *smime.ChainCache
}

// SetDirectory replaces the directory (reload); messages being evaluated keep the previous one.
func (ib *Pipeline) SetDirectory(d *keys.Directory) {
	// A reply may chain to a root trusted for learning (a public S/MIME CA) as well as to the
	// bank's registration roots; timestamps only to the latter (or the TSA roots).
	t := &trust{roots: d.ReplyRoots(), tsaRoots: ib.d.TSARoots, signers: d.PGPKeys(), smime: directorySigners(d), dir: d}
	if t.tsaRoots == nil {
		t.tsaRoots = d.Roots()
	}
	t.chains = smime.NewChainCache(t.roots, t.smime.intermediates)
	ib.trust.Store(t)
}

// Result is the outcome of Evaluate.
type Result struct {
	Verdict *Verdict
	// Message is what the desk receives: a fresh message built from the decrypted content, with
	// sealpost's Authentication-Results and Sealpost-Verdict.
	Message []byte
	Action  string // ActionDeliver or ActionQuarantine
	Reason  string // why the message is held; "" when delivered
	// MessageID is the reply's own Message-ID, for the thread index.
	MessageID string
	// capabilities: what a valid S/MIME signature from the sender announced (nil: nothing to
	// remember).
	capabilities *store.Capabilities
	// learned: the signer's certificate and intermediates when the chain ends at a root trusted
	// for learning (nil: nothing to learn).
	learned []*x509.Certificate
}

// Errors of Evaluate that are the sender's problem are *Error values with a 5xx reply; a store
// failure is a 451.
var (
	ErrNoIntegrity = errors.New("encrypted without integrity protection")
	// ErrEmptyMessage: the message has no header field (nothing at all, e.g. BDAT 0 LAST): it can
	// never be processed, so the reply is permanent (554 5.6.0), not a retry.
	ErrEmptyMessage = errors.New("empty message")
)

// Evaluate runs the pipeline on one received message (CRLF) without side effects: it decrypts,
// verifies, binds, looks up registrations and threads, builds the desk's message and decides the
// action. arrival is when the message was received (the signing time when no token says otherwise).
func (ib *Pipeline) Evaluate(ctx context.Context, msg []byte, arrival time.Time) (*Result, error) {
	root, err := mime.Parse(mime.ToCRLF(msg))
	if err != nil {
		return nil, gateway.Refuse(554, [3]int{5, 6, 0}, "message header cannot be parsed", err)
	}
	if len(root.Header) == 0 {
		return nil, gateway.Refuse(554, [3]int{5, 6, 0}, "empty message: no header fields", ErrEmptyMessage)
	}
	f, sm, err := ib.inspect(root, arrival)
	if err != nil {
		return nil, err
	}
	v := f.verdict()
	b := bindFrom(v, f, root.Header)
	if err := ib.checkRegistration(ctx, v, f); err != nil {
		return nil, err
	}
	if f.method == "smime" {
		ib.checkRevocation(ctx, v, sm)
	}
	v.settle(f.signed)
	if err := ib.linkThread(ctx, v, f.signed, b.visible); err != nil {
		return nil, err
	}

	res := &Result{Verdict: v, Action: ActionDeliver, MessageID: b.visible.Get("Message-ID")}
	res.Action, res.Reason = ib.decide(v)
	if f.method == "smime" && (v.Status == StatusVerified || v.Status == StatusUnregistered) && len(sm.Capabilities) > 0 {
		res.capabilities = &store.Capabilities{Address: v.From, SMIMEGCM: sm.SupportsGCM(), Updated: v.SignedAt}
	}
	if f.method == "smime" && (v.Status == StatusVerified || v.Status == StatusUnregistered) && sm.Signer != nil && len(sm.SignerChain) > 0 {
		if chain := sm.SignerChain[0]; ib.trust.Load().dir.Learnable(chain) {
			res.learned = chain[:len(chain)-1]
		}
	}
	res.Message = ib.deskMessage(deskInput{outer: root.Header, visible: b.visible, inner: f.content.Header, body: f.content.Body,
		protected: b.protected, name: ib.registeredName(ctx, v)}, v)
	return res, nil
}

// bound is which header the desk sees: the outer one, or the protected (signed) one when the
// signed content carries it (RFC 9788).
type bound struct {
	visible   mime.Header
	protected bool
}

// bindFrom sets v.From from the visible header and binds the signer to it: one From address, the
// outer From the same as a signed one, the signer's certificate or key naming it.
func bindFrom(v *Verdict, f facts, outer mime.Header) bound {
	inner := f.content.Header
	b := bound{visible: outer, protected: f.signed && inner.Count("From") > 0}
	if b.protected {
		b.visible = inner
	}
	from, fromErr := singleFromAddress(b.visible)
	if fromErr == nil && b.protected && outer.Count("From") > 0 {
		// Header protection: the outer From must name the same address as the signed one.
		if o, err := singleFromAddress(outer); err != nil || !address.Same(o, from) {
			v.fail(FailFromMismatch, "the outer From differs from the signed From")
		}
	}
	if fromErr == nil {
		v.From = from
	}
	if !f.signed {
		return b
	}
	switch {
	case fromErr != nil:
		v.fail(FailFromNotSingle, fromErr.Error())
		if len(f.signerAddrs) > 0 {
			v.Signer = f.signerAddrs[0]
		}
	case len(f.signerAddrs) == 0 && f.signerKnown:
		v.fail(FailFromMismatch, "the signer's certificate or key names no email address")
	case f.signerKnown:
		v.Signer = f.signerAddrs[0]
		if a, ok := matchingAddress(f.signerAddrs, from); ok {
			v.Signer = a
		} else {
			v.fail(FailFromMismatch, fmt.Sprintf("signed by %s, From is %s", headerToken(v.Signer), headerToken(from)))
		}
	}
	return b
}

// checkRegistration sets v.Registered and fails a signature by another key than the registered
// one. A store that cannot answer is a temporary failure.
func (ib *Pipeline) checkRegistration(ctx context.Context, v *Verdict, f facts) error {
	if v.From == "" {
		return nil
	}
	regs, err := ib.d.Store.Registrations(ctx, v.From)
	if err != nil && !errors.Is(err, store.ErrInvalid) {
		return gateway.TempFail("cannot check the sender's registration now, try again later", err)
	}
	v.Registered = len(regs) > 0
	if v.Registered && f.signed && f.signerKnown && v.Fingerprint != "" {
		if !slices.ContainsFunc(regs, func(r store.Registration) bool {
			return r.Method == f.method && strings.EqualFold(r.Fingerprint, v.Fingerprint)
		}) {
			v.fail(FailWrongKey, "the customer registered another key or certificate")
		}
	}
	return nil
}

// checkRevocation fails v when the signer's certificate was revoked before v.SignedAt (the
// timestamp token's time, else the arrival): a signature made earlier, proven by its token, stays
// good. A certificate that cannot be checked now is logged and judged without it.
func (ib *Pipeline) checkRevocation(ctx context.Context, v *Verdict, sm *smime.Inbound) {
	if ib.d.Revocations == nil || sm == nil || sm.Signer == nil || len(sm.SignerChain) == 0 || len(sm.SignerChain[0]) < 2 {
		return
	}
	err := ib.d.Revocations.CheckCertificate(ctx, sm.Signer, sm.SignerChain[0][1])
	var rev *keys.RevocationError
	switch {
	case err == nil:
	case errors.As(err, &rev):
		if !v.SignedAt.Before(rev.At) {
			v.fail(FailRevoked, rev.Error())
		}
	default:
		ib.log.Warn("signer certificate not checked for revocation", "reason", err.Error())
	}
}

// linkThread links v to the support thread the visible header's In-Reply-To or References name,
// and says when the thread's customer or key is not this sender's.
func (ib *Pipeline) linkThread(ctx context.Context, v *Verdict, signed bool, visible mime.Header) error {
	ids := referencedIDs(visible)
	if len(ids) == 0 {
		return nil
	}
	t, err := ib.d.Store.ThreadForMessageIDs(ctx, ids)
	switch {
	case err == nil:
		v.Thread = t.Token
		switch {
		case v.From == "" || !address.Same(t.Customer, v.From):
			v.ThreadMismatch = "customer"
		case signed && t.Fingerprint != "" && v.Fingerprint != "" && !strings.EqualFold(t.Fingerprint, v.Fingerprint):
			v.ThreadMismatch = "key"
		}
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
	default:
		return gateway.TempFail("cannot look up the thread now, try again later", err)
	}
	return nil
}

// RegisteredNames is implemented by a Store that keeps the name a customer registered with their
// key or certificate. The desk's From for a verified reply then carries that name; with a store
// that does not implement it, the From is the signer's bare address.
type RegisteredNames interface {
	RegisteredName(ctx context.Context, address string) (string, error)
}

// registeredName is the name registered for a verified signer, "" when there is none (or the
// store keeps none). A failed lookup costs the name only, not the delivery.
func (ib *Pipeline) registeredName(ctx context.Context, v *Verdict) string {
	rn, ok := ib.d.Store.(RegisteredNames)
	if !ok || !v.Trusted() || v.Signer == "" {
		return ""
	}
	name, err := rn.RegisteredName(ctx, v.Signer)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		ib.log.Warn("registered name not looked up", "error", err)
		return ""
	}
	return name
}

// decide applies the policy to a verdict.
func (ib *Pipeline) decide(v *Verdict) (string, string) {
	switch {
	case v.Status == StatusVerified:
		return ActionDeliver, ""
	case v.Registered:
		return ActionQuarantine, "the customer registered a key, and this message is not verified with it"
	case v.Encryption != "" && !v.Authenticated && v.Status != StatusUnregistered && ib.cfg.OnUnauthenticated == ActionQuarantine:
		return ActionQuarantine, "CBC-encrypted content without a valid signature from the sender"
	}
	var action string
	switch v.Status {
	case StatusUnregistered:
		action = ib.cfg.OnUnregistered
	case StatusFailed:
		action = ib.cfg.OnFailed
	default:
		action = ib.cfg.OnUnsigned
	}
	if action == ActionQuarantine {
		return action, "verdict " + v.Status + " (" + strings.Join(v.Failures, ",") + ")"
	}
	return ActionDeliver, ""
}

// singleFromAddress is mime.SingleFrom, and the address must also be local@domain.
func singleFromAddress(h mime.Header) (string, error) {
	from, err := mime.SingleFrom(h)
	if err != nil {
		return "", err
	}
	if _, err := address.Normalize(from); err != nil {
		return "", fmt.Errorf("the From address: %v", err)
	}
	return from, nil
}

// matchingAddress returns the one of addrs (the signer's) that is addr's mailbox by
// address.Same, preferring one spelt as addr is.
func matchingAddress(addrs []string, addr string) (string, bool) {
	n, err := address.Normalize(addr)
	if err != nil {
		return "", false
	}
	spelt := func(a string) bool {
		an, err := address.Normalize(a)
		return err == nil && an == n
	}
	if i := slices.IndexFunc(addrs, spelt); i >= 0 {
		return addrs[i], true
	}
	if i := slices.IndexFunc(addrs, func(a string) bool { return address.Same(a, addr) }); i >= 0 {
		return addrs[i], true
	}
	return "", false
}

var msgIDPattern = regexp.MustCompile(`<[^<>\s]{1,250}>`)

// referencedIDs returns the Message-IDs named in In-Reply-To and References (at most 50).
func referencedIDs(h mime.Header) []string {
	var ids []string
	for _, name := range []string{"In-Reply-To", "References"} {
		for _, fl := range h {
			if strings.EqualFold(fl.Name, name) {
				ids = append(ids, msgIDPattern.FindAllString(fl.Value(), 50)...)
			}
		}
	}
	if len(ids) > 50 {
		ids = ids[:50]
	}
	return ids
}

// inspectError maps a message that cannot be processed to its reply.
func inspectError(err error) error {
	switch {
	case errors.Is(err, pgp.ErrNoIntegrity):
		return gateway.Refuse(550, [3]int{5, 7, 1}, "OpenPGP message without integrity protection (MDC or AEAD) refused", errors.Join(ErrNoIntegrity, err))
	case errors.Is(err, smime.ErrNotForUs), errors.Is(err, pgp.ErrNotForUs):
		return gateway.Refuse(554, [3]int{5, 7, 1}, "message is not encrypted to the bank's support key", err)
	case errors.Is(err, smime.ErrDecrypt), errors.Is(err, pgp.ErrDecrypt):
		return gateway.Refuse(554, [3]int{5, 7, 1}, "message cannot be decrypted", err)
	case errors.Is(err, smime.ErrUnsupported), errors.Is(err, pgp.ErrUnsupported), errors.Is(err, mime.ErrTooDeep):
		return gateway.Refuse(554, [3]int{5, 6, 0}, "unsupported message structure: "+gateway.Printable(err.Error()), err)
	}
	return gateway.Refuse(554, [3]int{5, 6, 0}, "message cannot be parsed: "+gateway.Printable(err.Error()), err)
}
