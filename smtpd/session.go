package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/sealpost/sealpost/gateway"
)

// maxSizeHint bounds how much a declared SIZE= makes Data allocate up front.
const maxSizeHint = 1 << 20

// backend creates one session per EHLO/HELO (and again after STARTTLS).
type backend struct{ srv *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	tc := tracked(c.Conn())
	if tc == nil {
		// Serve always wraps connections; this is a programming error.
		b.srv.log.Error("smtp session on an untracked connection")
		return nil, replyLocalError()
	}
	_, isTLS := c.TLSConnectionState()
	return &session{
		srv:  b.srv,
		conn: c.Conn(),
		tc:   tc,
		log:  b.srv.log.With(tc.logAttrs()...),
		helo: c.Hostname(),
		tls:  isTLS,
	}, nil
}

// session adapts one go-smtp session to a gateway.Session, which it opens lazily at the
// first MAIL FROM, once HELO, TLS and AUTH are settled, and reopens after a successful AUTH.
//
// go-smtp calls it from the connection's goroutine, except Data for BDAT (its own goroutine,
// while the connection's goroutine copies chunks and may call Reset) and Logout (also from
// Server.Close). Gateway calls never overlap; a Logout during one defers the gateway's Close
// until that call returns.
type session struct {
	srv  *Server
	conn net.Conn // as go-smtp uses it for this session: *tls.Conn after STARTTLS
	tc   *trackedConn
	log  *slog.Logger
	helo string
	tls  bool

	mu     sync.Mutex
	gw     gateway.Session
	user   string // authenticated user
	inTx   bool   // MAIL accepted, transaction not yet ended
	rcpts  int
	size   int64 // SIZE= of the transaction, a capacity hint
	utf8   bool  // the transaction's MAIL had SMTPUTF8
	busy   int   // gateway calls in progress
	closed bool  // Logout happened
	broken bool  // a gateway call panicked: the session makes no further calls
}

var _ smtp.AuthSession = (*session)(nil)

// errSessionEnded stops gateway calls after Logout or a panic; the client has been given
// its last reply already, so what it says does not matter.
var errSessionEnded = errors.New("smtpd: session ended")

// refuse logs a refusal the listener decided itself and returns its reply.
func (s *session) refuse(r *smtp.SMTPError, msg string, attrs ...any) error {
	s.log.Info(msg, append(attrs, "code", r.Code)...)
	return r
}

// replyTo maps a gateway error with Reply, logging it with the session ID.
func (s *session) replyTo(op string, err error) error {
	r := Reply(err)
	var ge *gateway.Error
	if errors.As(err, &ge) && r.Code == ge.Code {
		// The reply text can name a customer; the log gets only the kind of refusal, and for a
		// deferral the internal cause (a TSA or disk error, which operators need).
		if ge.Temporary() {
			s.log.Warn("gateway deferred", "op", op, "code", r.Code, "reason", gateway.Reason(err), "err", ge.Err)
		} else {
			s.log.Info("gateway refused", "op", op, "code", r.Code, "reason", gateway.Reason(err))
		}
	} else if !errors.Is(err, errSessionEnded) {
		s.log.Error("gateway error", "op", op, "code", r.Code, "err", err)
	}
	return r
}

func (s *session) client() gateway.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientLocked()
}

func (s *session) clientLocked() gateway.Client {
	return gateway.Client{
		Addr:          s.tc.RemoteAddr(),
		Helo:          s.helo,
		TLS:           s.tls,
		User:          s.user,
		Authenticated: s.user != "",
		Trusted:       s.user != "" || s.srv.trusted(s.tc.ip),
	}
}

// call runs one gateway call. It recovers a panic: logs it with the stack, gives the client
// 451 4.3.0 as its last reply, closes the connection and the gateway session, and makes every
// later call fail with errSessionEnded.
func (s *session) call(op string, fn func() error) (err error) {
	s.mu.Lock()
	if s.closed || s.broken {
		s.mu.Unlock()
		return errSessionEnded
	}
	s.busy++
	s.mu.Unlock()

	defer func() {
		p := recover()
		s.mu.Lock()
		s.busy--
		if p != nil {
			s.broken = true
		}
		var gw gateway.Session
		if s.busy == 0 && (s.closed || s.broken) {
			gw, s.gw = s.gw, nil
		}
		s.mu.Unlock()
		var last *smtp.SMTPError
		if p != nil {
			last = replyLocalError()
			s.log.Error("gateway panic", "op", op, "code", last.Code, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = last
		}
		if gw != nil {
			s.closeGateway(gw)
		}
		if last != nil {
			// After closing the gateway session, so that it is over once the client has
			// its reply.
			s.tc.finish(s.conn, last)
		}
	}()
	return fn()
}

// closeGateway closes a gateway session, recovering a panic in its Close.
func (s *session) closeGateway(gw gateway.Session) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("gateway panic", "op", "Close", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	gw.Close()
}

// gateway returns the gateway session, opening it on first use.
func (s *session) gateway() (gateway.Session, error) {
	s.mu.Lock()
	gw, c := s.gw, s.clientLocked()
	s.mu.Unlock()
	if gw != nil {
		return gw, nil
	}
	err := s.call("NewSession", func() (err error) {
		gw, err = s.srv.handler.NewSession(c)
		return err
	})
	if err != nil {
		return nil, err
	}
	if gw == nil {
		return nil, errors.New("smtpd: gateway returned a nil session")
	}
	s.mu.Lock()
	if s.closed || s.broken {
		s.mu.Unlock()
		s.closeGateway(gw)
		return nil, errSessionEnded
	}
	s.gw = gw
	s.mu.Unlock()
	s.log.Debug("gateway session opened", "trusted", c.Trusted, "tls", c.TLS, "user", c.User)
	return gw, nil
}

// Mail refuses an untrusted client (530 5.7.0) and a sender address that can never be served
// (gateway.CheckSender: 501 5.1.7, 553) before anything reaches the gateway, then opens the
// gateway session if needed and forwards MAIL FROM with its SIZE.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if err := s.cutCommand(); err != nil {
		return err
	}
	var size int64
	var utf8 bool
	if opts != nil {
		size, utf8 = opts.Size, opts.UTF8
	}
	c := s.client()
	s.mu.Lock()
	inTx := s.inTx
	s.mu.Unlock()
	if inTx {
		return s.refuse(replyNestedMail(), "smtp refused nested MAIL")
	}
	if !c.Trusted && !s.srv.cfg.Public {
		return s.refuse(replyAuthRequired(), "smtp relay denied: not authenticated, not in AllowedNetworks", "from_domain", domain(from))
	}
	// Here, for both listeners: go-smtp hands over what follows '@' up to a space or '>', CR
	// and NUL included, and a CR survived to the queue, which refused the message at DATA (451).
	if err := gateway.CheckSender(from, utf8); err != nil {
		return s.refuse(Reply(err), "smtp refused MAIL: bad sender address", "reason", gateway.Reason(err))
	}
	gw, err := s.gateway()
	if err != nil {
		return s.replyTo("NewSession", err)
	}
	if err := s.call("Mail", func() error { return gw.Mail(s.srv.ctx, from, size) }); err != nil {
		return s.replyTo("Mail", err)
	}
	s.mu.Lock()
	s.inTx, s.rcpts, s.size, s.utf8 = true, 0, size, utf8
	s.mu.Unlock()
	s.log.Info("smtp mail from", "from_domain", domain(from), "size", size, "user", c.User)
	return nil
}

// Rcpt forwards one recipient whose address can be served (gateway.CheckRecipient: else 501
// 5.1.3 or 553, here). go-smtp has checked that MAIL was accepted and MaxRecipients.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.cutCommand(); err != nil {
		return err
	}
	s.mu.Lock()
	gw, inTx, utf8 := s.gw, s.inTx, s.utf8
	s.mu.Unlock()
	if !inTx || gw == nil {
		return s.refuse(reply(503, smtp.EnhancedCode{5, 5, 1}, "Need MAIL command"), "smtp refused RCPT outside a transaction")
	}
	if err := gateway.CheckRecipient(to, utf8); err != nil {
		return s.refuse(Reply(err), "smtp refused RCPT: bad recipient address", "reason", gateway.Reason(err))
	}
	if err := s.call("Rcpt", func() error { return gw.Rcpt(s.srv.ctx, to) }); err != nil {
		return s.replyTo("Rcpt", err)
	}
	s.mu.Lock()
	s.rcpts++
	s.mu.Unlock()
	s.log.Info("smtp rcpt to", "rcpt_domain", domain(to))
	return nil
}

// cutCommand refuses a command that go-smtp hands on although the read of its line failed: under
// TLS the listener sees only records, so a bound that cuts a half-sent command (trackedConn) cannot
// hold its bytes back, and go-smtp passes the part it read on as a whole line. It is never executed.
func (s *session) cutCommand() error {
	if s.tc.readFailed.Load() {
		return s.refuse(replyConnectionError(), "smtp command refused: the connection was cut inside it")
	}
	return nil
}

// Data reads the whole message (DATA or all BDAT chunks) to its real end, refuses it if it is
// too big or has a bare CR or LF, and otherwise hands it to the gateway.
func (s *session) Data(r io.Reader) error {
	s.tc.inData.Store(true)
	defer s.tc.inData.Store(false)

	s.mu.Lock()
	gw, hint := s.gw, s.size
	s.mu.Unlock()
	limit := s.srv.cfg.MaxMessageBytes

	msg, err := readMessage(r, limit, hint)
	switch {
	case err == nil:
	case errors.Is(err, errMessageTooBig) || errors.Is(err, smtp.ErrDataTooLarge):
		return s.refuse(replyTooBig(limit), "smtp message refused: too big", "limit", limit)
	case errors.Is(err, smtp.ErrTooLongLine):
		// go-smtp would read the rest as commands and answer again; end here with one reply.
		rep := replyLineTooLong()
		s.tc.finish(s.conn, rep)
		return s.refuse(rep, "smtp message refused: line too long")
	case errors.Is(err, smtp.ErrDataReset):
		// BDAT transfer aborted (RSET, a refused chunk, or the connection ended).
		return replyLocalError()
	default:
		var se *smtp.SMTPError
		if errors.As(err, &se) { // our read timeout reply, from trackedConn
			return s.refuse(se, "smtp message aborted: timeout")
		}
		return s.refuse(replyConnectionError(), "smtp message aborted: read error", "err", err)
	}
	if s.tc.readFailed.Load() {
		// go-smtp ends a BDAT chunk at EOF without an error: the message may be truncated.
		// (A complete message never needs a read that fails: the reader stops at its end.)
		return s.refuse(replyConnectionError(), "smtp message aborted: connection ended inside the message")
	}
	if i := bareCRLF(msg); i >= 0 {
		return s.refuse(replyBareCRLF(), "smtp message refused: bare CR or LF", "offset", i)
	}
	if gw == nil {
		return replyLocalError()
	}
	var id string
	if err := s.call("Data", func() (err error) {
		id, err = gw.Data(s.srv.ctx, msg)
		return err
	}); err != nil {
		return s.replyTo("Data", err)
	}
	s.mu.Lock()
	rcpts := s.rcpts
	s.mu.Unlock()
	rep := replyQueued(id)
	s.log.Info("smtp queued", "queue_id", gateway.ReplyText(id), "bytes", len(msg), "rcpts", rcpts, "code", rep.Code)
	// go-smtp takes the reply code from the returned *smtp.SMTPError, 250 included.
	return rep
}

// Reset ends the transaction, here and in the gateway.
func (s *session) Reset() {
	s.mu.Lock()
	gw := s.gw
	s.inTx, s.rcpts, s.size, s.utf8 = false, 0, 0, false
	s.mu.Unlock()
	if gw != nil {
		_ = s.call("Reset", func() error { gw.Reset(); return nil })
	}
}

// Logout closes the gateway session, or has the gateway call in progress close it.
func (s *session) Logout() error {
	s.mu.Lock()
	s.closed = true
	var gw gateway.Session
	if s.busy == 0 {
		gw, s.gw = s.gw, nil
	}
	s.mu.Unlock()
	if gw != nil {
		s.closeGateway(gw)
	}
	return nil
}

// errMessageTooBig: the message is over the limit (our own check, behind go-smtp's).
var errMessageTooBig = errors.New("smtpd: message too big")

// ErrTooLarge is ReadAll's error for input longer than its limit.
var ErrTooLarge = errors.New("larger than the limit")

// readMessage reads r to its end, holding at most limit bytes (ReadAll, sized by hint, the
// client's SIZE). A message that does not end in CRLF (possible with BDAT) gets one, so the
// gateway always sees whole lines. An oversized message is read to its end before the error, so
// that the reply comes after it (BDAT: the pipe must be read).
func readMessage(r io.Reader, limit, hint int64) ([]byte, error) {
	msg, err := readAll(r, limit, hint, 2)
	if errors.Is(err, ErrTooLarge) {
		_, _ = io.Copy(io.Discard, r)
		return nil, errMessageTooBig
	}
	if err != nil {
		return nil, err
	}
	if len(msg) > 0 && !bytes.HasSuffix(msg, []byte("\r\n")) && msg[len(msg)-1] != '\r' {
		msg = append(msg, '\r', '\n')
	}
	return msg, nil
}

// ReadAll reads r to its end into one slice of exactly its length (an error wrapping ErrTooLarge
// when r holds more than limit bytes, read no further). A message sent without SIZE and a
// statement piped into sealpost protect are read this way: in chunks of readChunk, outside the Go
// heap where the system allows (newChunk), joined once, each chunk freed as soon as it is copied.
// A 10 MB message then holds 10 MB and, while it is joined, one chunk more, where a doubling
// buffer allocated 32 and held 16.
func ReadAll(r io.Reader, limit int64) ([]byte, error) { return readAll(r, limit, 0, 0) }

// readAll is ReadAll with a first buffer sized by hint and room for spare bytes after the end.
func readAll(r io.Reader, limit, hint int64, spare int) ([]byte, error) {
	lr := io.LimitReader(r, limit+1)
	buf := make([]byte, 0, min(max(hint, 4096), limit, maxSizeHint)+int64(spare))
	var chunks [][]byte // what did not fit buf, in order; each one is freed once copied
	defer func() {
		for _, c := range chunks {
			freeChunk(c)
		}
	}()
	// Each buffer is filled before the next is taken: only the last is short.
	n, err := fill(lr, buf[:cap(buf)-spare])
	buf, total := buf[:n], n
	for err == nil {
		c, cerr := newChunk()
		if cerr != nil {
			return nil, cerr
		}
		n, err = fill(lr, c)
		chunks, total = append(chunks, c[:n]), total+n
	}
	if err != io.EOF {
		return nil, err
	}
	if int64(total) > limit {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, limit)
	}
	if len(chunks) == 0 {
		return buf, nil
	}
	msg := make([]byte, 0, total+spare)
	msg = append(msg, buf...)
	for _, c := range chunks {
		msg = append(msg, c...)
		freeChunk(c)
	}
	chunks = nil
	return msg, nil
}

// fill reads r into b until b is full (nil) or r fails or ends (its error: io.EOF at the end).
// Unlike io.ReadFull it keeps io.ErrUnexpectedEOF apart from the end: a connection that drops
// inside DATA is an error, not a message.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		if n += k; err != nil {
			return n, err
		}
	}
	return n, nil
}

// readChunk is the size of readMessage's chunks beyond its first buffer.
const readChunk = 1 << 20

// bareCRLF returns the offset of the first CR not followed by LF or LF not preceded by CR,
// or -1.
func bareCRLF(msg []byte) int {
	for i := 0; i < len(msg); {
		j := bytes.IndexAny(msg[i:], "\r\n")
		if j < 0 {
			return -1
		}
		i += j
		if msg[i] == '\n' || i+1 >= len(msg) || msg[i+1] != '\n' {
			return i
		}
		i += 2
	}
	return -1
}

// domain returns the domain of an address, for logs (never the local part).
func domain(addr string) string {
	if addr == "" {
		return "<>"
	}
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return "(none)"
}

// AuthMechanisms lists PLAIN and LOGIN when users are configured. go-smtp advertises and
// accepts them only under TLS (AllowInsecureAuth is false).
func (s *session) AuthMechanisms() []string {
	if len(s.srv.users) == 0 {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth starts a PLAIN or LOGIN exchange.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if err := s.cutCommand(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	inTx := s.inTx
	s.mu.Unlock()
	if inTx {
		return nil, s.refuse(replyAuthInTransaction(), "smtp refused AUTH in a transaction")
	}
	if len(s.srv.users) == 0 {
		return nil, smtp.ErrAuthUnsupported
	}
	switch mech {
	case sasl.Plain:
		return &plainServer{auth: s.authenticate}, nil
	case sasl.Login:
		return &loginServer{auth: s.authenticate}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// maxAuthFailures ends a connection after this many failed AUTH attempts.
const maxAuthFailures = 3

// authenticate checks a password against its bcrypt hash, comparing a dummy hash for an
// unknown user so that both cost the same.
func (s *session) authenticate(identity, user, password string) error {
	hash, known := s.srv.users[user]
	if !known {
		hash = s.srv.dummyHash
	}
	ok := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && known
	if ok && identity != "" && identity != user {
		ok = false // no acting as another user
	}
	if !ok {
		r := replyAuthFailed()
		if s.tc.authFailures.Add(1) >= maxAuthFailures {
			r = replyTooManyAuthFailures()
			s.tc.finish(s.conn, r)
		}
		// The user name is not logged: clients put passwords there by mistake.
		return s.refuse(r, "smtp auth failed")
	}

	s.mu.Lock()
	s.user = user
	gw := s.gw
	s.gw = nil // reopened at the next MAIL with the authenticated identity
	s.mu.Unlock()
	if gw != nil {
		// No gateway call can be in progress: AUTH is refused inside a transaction.
		s.closeGateway(gw)
	}
	s.log.Info("smtp authenticated", "user", user)
	return nil
}
