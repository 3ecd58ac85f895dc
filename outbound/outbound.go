package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/store"
	"github.com/sealpost/sealpost/templates"
)

// Pipeline is the outbound pipeline; it implements gateway.Handler.
type Pipeline struct {
	cfg       Config
	prefer    keys.Method
	directory atomic.Pointer[keys.Directory]
	smime     *smime.Protector
	pgp       *pgp.Protector
	spool     queue.Writer
	store     Store
	mailbox   *mailbox // nil: keyless recipients are refused whatever the policy
	templates *templates.Set
	obs       Observer
	log       *slog.Logger
	now       func() time.Time
	optErr    error // an option that could not be applied

	discover    Discoverer  // nil: no WKD lookups
	revocations Revocations // nil: certificates are not checked for revocation
	evidence    Evidence    // nil: nothing recorded
	finish      func([]byte) ([]byte, error)
}

// Option configures a Pipeline at New.
type Option func(*Pipeline)

// WithPGP protects mail to OpenPGP recipients with p (default: none, and OpenPGP recipients are
// treated as having no key).
func WithPGP(p *pgp.Protector) Option { return func(g *Pipeline) { g.pgp = p } }

// WithStore gives support mail a thread token in its Message-ID and tells which customers' clients
// read AES-GCM (default: no threads, CBC for everyone).
func WithStore(s Store) Option { return func(g *Pipeline) { g.store = s } }

// WithObserver tells o what was accepted, refused and protected, for metrics (default, and with
// nil: nothing).
func WithObserver(o Observer) Option { return func(g *Pipeline) { g.obs = o } }

// WithLogger sets the structured logger (default, and with nil: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(g *Pipeline) { g.log = l } }

// New returns the outbound pipeline, which protects with sm, finds recipients' keys in directory
// and queues to spool. cfg must have been validated.
func New(cfg Config, directory *keys.Directory, sm *smime.Protector, spool queue.Writer, opts ...Option) (*Pipeline, error) {
	if directory == nil || sm == nil || spool == nil {
		return nil, errors.New("outbound: directory, S/MIME protector and spool are required")
	}
	prefer, err := keys.ParseMethod(cfg.Prefer)
	if err != nil {
		return nil, err
	}
	g := &Pipeline{cfg: cfg, prefer: prefer, smime: sm, spool: spool, now: time.Now}
	for _, o := range opts {
		o(g)
	}
	if g.optErr != nil {
		return nil, g.optErr
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.templates == nil {
		g.templates = templates.Default()
	}
	if g.obs == nil {
		g.obs = nopObserver{}
	}
	g.directory.Store(directory)
	return g, nil
}

// SetDirectory replaces the recipient directory (reload); sessions in progress keep the one they
// started with.
func (g *Pipeline) SetDirectory(d *keys.Directory) { g.directory.Store(d) }

// NewSession implements Handler.
func (g *Pipeline) NewSession(c gateway.Client) (gateway.Session, error) {
	return &session{g: g, client: c, dir: g.directory.Load()}, nil
}

type session struct {
	g      *Pipeline
	client gateway.Client
	dir    *keys.Directory
	from   string
	class  string
	basis  classBasis  // how class was chosen
	rcpts  []Recipient // accepted RCPTs with their keys
	inTx   bool
}

// classBasis says how a message got its class, which decides what its header From may be.
type classBasis int

const (
	byDefault classBasis = iota // no rule names the envelope sender: DefaultClass
	byRule                      // the envelope sender's rule
	byHeader                    // an authenticated submitter's Sealpost-Class
)

func (s *session) Mail(_ context.Context, from string, size int64) error {
	if !s.client.Trusted {
		return s.g.refused("", gateway.Refuse(530, [3]int{5, 7, 0}, "Authentication required", gateway.ErrRelayDenied))
	}
	// The listener has applied the 8-bit rule, which needs its SMTPUTF8 flag; the rest is
	// checked again here for any other caller of the Session.
	if err := gateway.CheckSender(from, true); err != nil {
		return s.g.refused("", err)
	}
	s.Reset()
	s.from, s.class, s.basis, s.inTx = from, s.g.cfg.DefaultClass, byDefault, true
	if class, ok := s.g.cfg.rule(from); ok {
		s.class, s.basis = class, byRule
	}
	return nil
}

func (s *session) Rcpt(ctx context.Context, to string) error {
	if !s.inTx {
		return gateway.Refuse(503, [3]int{5, 5, 1}, "MAIL first", nil)
	}
	r, err := s.resolve(ctx, to, s.class)
	if err != nil {
		return s.g.refused(s.class, err)
	}
	s.rcpts = append(s.rcpts, r)
	return nil
}

// resolve finds the key for one recipient under class's policy: a temporary refusal (a lookup
// under way, a revocation status unknown under hard-fail) is returned as it is.
func (s *session) resolve(ctx context.Context, to, class string) (Recipient, error) {
	if err := gateway.CheckRecipient(to, true); err != nil {
		return Recipient{}, err
	}
	p := s.g.cfg.Policies[class]
	c, err := s.choose(ctx, to, p)
	if err == nil {
		s.g.obs.KeyChosen(class, string(c.Source))
		return Recipient{Addr: to, Choice: &c}, nil
	}
	var temp *gateway.Error
	if errors.As(err, &temp) && temp.Code/100 == 4 {
		return Recipient{}, err
	}
	if p.Encryption == "preferred" && p.SignOnly {
		return Recipient{Addr: to}, nil
	}
	if p.notifies() && s.g.mailbox != nil {
		return Recipient{Addr: to, Notify: true}, nil
	}
	return Recipient{}, gateway.Refuse(550, [3]int{5, 7, 1},
		fmt.Sprintf("%s mail must be encrypted; %s", class, gateway.Printable(err.Error())), errors.Join(gateway.ErrNoKey, err))
}

func (s *session) Reset() {
	s.from, s.class, s.basis, s.rcpts, s.inTx = "", "", byDefault, nil, false
}

func (s *session) Close() {}

func (s *session) Data(ctx context.Context, msg []byte) (_ string, err error) {
	if !s.inTx || len(s.rcpts) == 0 {
		return "", gateway.Refuse(503, [3]int{5, 5, 1}, "RCPT first", nil)
	}
	class := s.class
	defer func() { s.g.refused(class, err) }()
	defer s.Reset()
	// The message is parsed here, once; every later step works on h and body.
	h, body, class, basis, err := s.classHeader(msg)
	if err != nil {
		class = s.class
		return "", err
	}
	if err := s.checkFromClass(h, class, basis); err != nil {
		return "", err
	}
	if class != s.class {
		if err := s.reclassify(ctx, class); err != nil {
			return "", err
		}
	}
	// A backed-up lane takes no more for now, before any signing is spent on it.
	if p, ok := s.g.spool.(queue.Pacer); ok {
		if err := p.Pressure(class); err != nil {
			return "", gateway.Refuse(451, [3]int{4, 3, 2}, fmt.Sprintf("not accepting %s mail now: %s; try again later", class, err), errors.Join(gateway.ErrPaced, err))
		}
	}
	policy := s.g.cfg.Policies[class]
	if class == ClassSupport && s.g.store != nil {
		if h, err = s.startThread(ctx, h); err != nil {
			return "", err
		}
	}
	outs, err := s.protect(ctx, h, body, policy)
	if err != nil {
		return "", err
	}
	notices, err := s.deposit(ctx, h, body, msg, class, policy)
	if err != nil {
		return "", err
	}
	return s.queue(ctx, append(outs, notices...), class, time.Duration(policy.Lifetime))
}

// reclassify judges the recipients again when the class changed at DATA (a Sealpost-Class
// header): the whole message is refused if any of them cannot be served under the new policy.
func (s *session) reclassify(ctx context.Context, class string) error {
	var refused []string
	for i, r := range s.rcpts {
		nr, err := s.resolve(ctx, r.Addr, class)
		if err != nil {
			refused = append(refused, r.Addr)
			continue
		}
		s.rcpts[i] = nr
	}
	if len(refused) > 0 {
		return gateway.Refuse(550, [3]int{5, 7, 1}, fmt.Sprintf("%s mail must be encrypted; no usable key for: %s",
			class, strings.Join(refused, ", ")), gateway.ErrNoKey)
	}
	return nil
}

// queue puts every protected copy on the spool, or none: a failed Put takes back the copies
// already queued, so the client's retry does not send them twice.
func (s *session) queue(ctx context.Context, outs []output, class string, lifetime time.Duration) (string, error) {
	expires := s.g.now().Add(lifetime)
	ids, err := s.finishAndRecord(ctx, outs, class)
	if err != nil {
		return "", gateway.TempFail("cannot record the message now, try again later", errors.Join(gateway.ErrQueueUnavailable, err))
	}
	for i, o := range outs {
		if _, err := s.g.spool.Put(ctx, &queue.Message{ID: ids[i], From: s.from, Recipients: o.to, Data: o.data, Class: class, Expires: expires}); err != nil {
			for _, done := range ids[:i] {
				_ = s.g.spool.Delete(done) // nothing stays queued unless all is
			}
			s.notQueued(ctx, ids, outs, err)
			return "", gateway.TempFail("cannot queue the message now, try again later", errors.Join(gateway.ErrQueueUnavailable, err))
		}
		s.g.log.Info("queued", "queue_id", ids[i], "class", class, "method", o.method, "recipients", len(o.to), "domains", strings.Join(address.Domains(o.to), ","),
			"key_sources", s.keySources(o.to), "bytes", len(o.data))
	}
	for _, o := range outs {
		s.g.obs.Accepted(class, o.method, len(o.to))
	}
	return strings.Join(ids, ","), nil
}

// keySources names the sources of the keys the recipients to were encrypted to, each once, in
// the order of the recipients ("" for a signed or notice copy).
func (s *session) keySources(to []string) string {
	var out []string
	for _, r := range s.rcpts {
		if r.Choice != nil && slices.Contains(to, r.Addr) && !slices.Contains(out, string(r.Choice.Source)) {
			out = append(out, string(r.Choice.Source))
		}
	}
	return strings.Join(out, ",")
}

// classHeader splits msg into header and body, removes every Sealpost-Class field and returns the
// class: the one the header names when the client is authenticated (submitters on a trusted network
// cannot pick their class by header), the envelope sender's otherwise.
func (s *session) classHeader(msg []byte) (mime.Header, []byte, string, classBasis, error) {
	h, body, err := mime.SplitEntity(mime.ToCRLF(msg))
	if err != nil {
		return nil, nil, "", 0, gateway.Refuse(554, [3]int{5, 6, 0}, "message header cannot be parsed", err)
	}
	class, basis := s.class, s.basis
	if h.Count("Sealpost-Class") == 0 {
		return h, body, class, basis, nil
	}
	if want := strings.ToLower(h.Get("Sealpost-Class")); s.client.Authenticated {
		if _, ok := s.g.cfg.Policies[want]; !ok {
			return nil, nil, "", 0, gateway.Refuse(554, [3]int{5, 6, 0}, fmt.Sprintf("unknown Sealpost-Class %q", gateway.Printable(want)), nil)
		}
		class, basis = want, byHeader
	}
	h = h.Without(func(n string) bool { return strings.EqualFold(n, "Sealpost-Class") })
	return h, body, class, basis, nil
}

// checkFromClass refuses (550 5.7.1) a message whose header From belongs to another class than
// the one the message is sent under: the class follows the envelope sender, so without this check
// MAIL FROM:<support@…> with From: statements@… would send a statement under the support policy
// (signed only, to customers without a key). The header From is classified by the same rules as
// the envelope sender (no rule: DefaultClass), and:
//
//   - a class from the envelope sender's rule must be the From's class exactly: that sender says
//     what its mail is, and mail of another class comes from that class's sender;
//   - a class no rule chose (DefaultClass: an envelope sender no rule names, the null sender) or
//     an authenticated submitter's Sealpost-Class may differ from the From's class only if its
//     policy is at least as strict (atLeastAsStrict). Refusing outright would refuse what the
//     shipped configuration protects most (an unnamed batch job sending as statements@ gets the
//     unclassified policy, the strictest); taking the From's class instead would let a header
//     pick a weaker policy (unnamed envelope, From: support@). The rule that holds in every case:
//     a message never gets a weaker policy than its header From's class;
//   - a From field that does not name exactly one address is refused as the signer would refuse
//     it (550 5.6.0), before any class is decided: with two addresses, either could be the class.
func (s *session) checkFromClass(h mime.Header, class string, basis classBasis) error {
	from, err := mime.SingleFrom(h)
	if err != nil {
		return protectError(err)
	}
	fromClass, ok := s.g.cfg.rule(from)
	if !ok {
		fromClass = s.g.cfg.DefaultClass
	}
	if fromClass == class {
		return nil
	}
	policies := s.g.cfg.Policies
	var why string
	switch basis {
	case byRule:
		why = fmt.Sprintf("the From address %s is %s mail, but its envelope sender makes it %s mail", gateway.Printable(from), fromClass, class)
	case byHeader:
		if atLeastAsStrict(policies[class], policies[fromClass]) {
			return nil
		}
		why = fmt.Sprintf("the From address %s is %s mail, which Sealpost-Class %s would protect less", gateway.Printable(from), fromClass, class)
	default:
		if atLeastAsStrict(policies[class], policies[fromClass]) {
			return nil
		}
		why = fmt.Sprintf("the From address %s is %s mail, which the %s policy of this envelope sender would protect less", gateway.Printable(from), fromClass, class)
	}
	return gateway.Refuse(550, [3]int{5, 7, 1}, why, gateway.ErrClassMismatch)
}

type output struct {
	method string
	to     []string
	data   []byte
	seals  []evidence.Seal // the signature's digest and token, for the evidence log
}

// protect makes one protected copy per method, as Split plans them: S/MIME recipients share one
// envelope, OpenPGP recipients another, and sign-only recipients (where policy allows) a signed
// copy. The message (h, body) is prepared once for encryption, shared by both methods, and once for
// signing in clear when there are sign-only recipients.
func (s *session) protect(ctx context.Context, h mime.Header, body []byte, policy Policy) ([]output, error) {
	plan := Split(s.rcpts)
	for i, addr := range plan.SMIMEAddrs {
		plan.SMIME[i].GCM = s.readsGCM(ctx, addr)
	}
	var outs []output
	var encrypted *mime.Prepared
	if plan.Encrypted() {
		var err error
		if encrypted, err = mime.PrepareEntity(h, body, mime.Options{HeaderProtection: policy.HeaderProtection, Encrypted: true}); err != nil {
			return nil, protectError(err)
		}
	}
	if len(plan.SMIME) > 0 {
		start := time.Now()
		sctx, seals := evidence.CollectSeals(ctx)
		out, err := s.g.smime.Protect(sctx, encrypted, plan.SMIME)
		if err != nil {
			return nil, protectError(err)
		}
		s.g.obs.Protected("smime", time.Since(start))
		outs = append(outs, output{"smime", plan.SMIMEAddrs, out, seals()})
	}
	if len(plan.PGP) > 0 {
		start := time.Now()
		pctx, seals := evidence.CollectSeals(ctx)
		out, err := s.g.pgp.Protect(pctx, encrypted, plan.PGP)
		if err != nil {
			return nil, protectError(err)
		}
		s.g.obs.Protected("pgp", time.Since(start))
		outs = append(outs, output{"pgp", plan.PGPAddrs, out, seals()})
	}
	if len(plan.Signed) > 0 {
		start := time.Now()
		signed, err := mime.PrepareEntity(h, body, mime.Options{HeaderProtection: policy.HeaderProtection})
		if err != nil {
			return nil, protectError(err)
		}
		sctx, seals := evidence.CollectSeals(ctx)
		out, err := s.g.smime.Sign(sctx, signed)
		if err != nil {
			return nil, protectError(err)
		}
		s.g.obs.Protected("signed", time.Since(start))
		outs = append(outs, output{"signed", plan.Signed, out, seals()})
	}
	return outs, nil
}

// readsGCM reports whether the customer's signed mail announced AES-GCM (remembered by the inbound
// pipeline). Any doubt means CBC, which every client reads.
func (s *session) readsGCM(ctx context.Context, addr string) bool {
	if s.g.store == nil {
		return false
	}
	c, err := s.g.store.Capabilities(ctx, addr)
	return err == nil && c.SMIMEGCM
}

// startThread opens a support thread for the message's first recipient and gives the message a
// Message-ID carrying the thread's token, so the customer's reply can be linked to it. The
// submitter's own Message-ID is recorded in the thread too (replies may quote it). It returns the
// message's new header.
func (s *session) startThread(ctx context.Context, h mime.Header) (mime.Header, error) {
	r := s.rcpts[0]
	method, fp := store.MethodSMIME, ""
	if r.Choice != nil {
		switch r.Choice.Method {
		case keys.MethodPGP:
			method, fp = store.MethodPGP, keys.PGPFingerprint(r.Choice.PGPKey)
		default:
			fp = keys.CertFingerprint(r.Choice.Certificate)
		}
	}
	t, err := s.g.store.NewThread(ctx, r.Addr, method, fp, h.Get("Subject"))
	if err != nil {
		return nil, gateway.TempFail("cannot record the support thread now, try again later", err)
	}
	host := "sealpost.invalid"
	if from, err := mime.SingleFrom(h); err == nil {
		if _, err := address.Normalize(from); err == nil {
			host = address.Domain(from)
		}
	}
	id := store.MessageIDForThread(t.Token, host)
	if old := h.Get("Message-ID"); old != "" {
		_ = s.g.store.AddMessage(ctx, store.ThreadMessage{Token: t.Token, MessageID: old})
	}
	if err := s.g.store.AddMessage(ctx, store.ThreadMessage{Token: t.Token, MessageID: id}); err != nil {
		return nil, gateway.TempFail("cannot record the support thread now, try again later", err)
	}
	return append(h.Without(func(n string) bool { return strings.EqualFold(n, "Message-ID") }), mime.NewField("Message-ID", id)), nil
}

// protectError turns a protection failure into its reply.
func protectError(err error) error {
	switch {
	case errors.Is(err, smime.ErrTimestamp), errors.Is(err, pgp.ErrTimestamp):
		return gateway.TempFail("timestamp authority unavailable, try again later", errors.Join(gateway.ErrTimestampFailed, err))
	case errors.Is(err, mime.ErrNoFrom):
		return gateway.Refuse(550, [3]int{5, 6, 0}, "message needs exactly one From address", err)
	case errors.Is(err, smime.ErrSenderNotCovered), errors.Is(err, pgp.ErrSenderNotCovered):
		return gateway.Refuse(550, [3]int{5, 7, 1}, "the From address is not one the bank signs for", err)
	case errors.Is(err, mime.ErrMalformed):
		return gateway.Refuse(554, [3]int{5, 6, 0}, "message cannot be made canonical: "+gateway.Printable(err.Error()), err)
	}
	return err // unknown: the listener answers 451 4.3.0 without detail
}
