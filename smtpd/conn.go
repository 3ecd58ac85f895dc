package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// trackedConn is one admitted connection: it holds its slot until Close, carries the session
// ID, and puts every bound on the client's input.
//
// go-smtp v0.25.1 arms its read deadline (ReadTimeout from now) only when it starts waiting
// for a command line, and nowhere else: not for DATA, not per BDAT chunk, not for the TLS
// handshake. So one slow byte at a time kept a connection for ever. trackedConn takes that
// call (SetReadDeadline) as the start of a command wait, and sets the real deadline itself
// before every read from the network, as the earliest of:
//
//   - the session's end: MaxSessionDuration after accept;
//   - waiting for a command: ReadTimeout after the wait began (go-smtp's own deadline) and,
//     once the command's first byte came, CommandTimeout after it;
//   - inside a message (DATA, or the BDAT chunks and commands of one message): ReadTimeout
//     after the last bytes came, and MinDataRateGrace plus one second per MinDataRate bytes
//     received after the message began;
//   - at once, when another connection took its slot (shed).
//
// After the session's end or shedding, no more input is handed on, not even a pipelined
// command already read; a reply write then gets at most lastReplyGrace, so a client that does
// not read its replies cannot stretch either.
//
// On a plain connection, while go-smtp waits for a command line, each Read returns exactly one
// whole line and never part of one (a line longer than MaxLineLength goes through, for go-smtp
// to refuse): go-smtp reads through a bufio.Reader, whose ReadLine returns a partial line as a
// whole one when the read under it fails, so cutting a client in the middle of a command
// would otherwise execute the half it sent. The rest of the input (message data, BDAT chunks,
// the TLS handshake, everything after STARTTLS) goes through as it comes.
//
// Read errors are final: after a timeout or any other read error every later Read fails
// (io.EOF, or again the timeout that go-smtp answers with its 421), so go-smtp never goes on to
// parse the rest of an interrupted message as commands.
type trackedConn struct {
	net.Conn
	srv      *Server
	id       string
	ip       netip.Addr
	network  netip.Prefix // for MaxConnectionsPerNetwork
	trusted  bool         // in AllowedNetworks: not counted per network
	accepted time.Time

	// inData is set while the session reads a message (session.Data), so that a read there
	// is bounded as message data and a timeout becomes a reply to the message.
	inData       atomic.Bool
	authFailures atomic.Int32

	// Only the connection's reading goroutine touches these.
	readErr  error
	held     []byte    // input read from the network, not yet given to go-smtp
	lastFill time.Time // when the last bytes were added to held

	readFailed atomic.Bool // readErr is set, for other goroutines
	closed     atomic.Bool // Close was called: nothing held is handed on
	closeOnce  sync.Once
	finishOnce sync.Once

	mu sync.Mutex // guards st; the accept goroutine reads it to choose whom to shed
	st connState
}

// connState is where a connection is, for its deadlines and for shedding.
type connState struct {
	data bool // reading a message; otherwise waiting for or handling a command
	tls  bool // STARTTLS happened: the input is TLS records, not lines

	goRead    time.Time // the read deadline go-smtp set when it began waiting for a command
	goWrite   time.Time // the write deadline go-smtp set for its reply
	waitStart time.Time // when go-smtp began waiting for the current command
	cmdStart  time.Time // when the current command's first byte came; zero before
	lineGiven bool      // the command line went to go-smtp: what it reads next in this wait is not a command line
	heldSince time.Time // when the first byte still held came; zero when nothing is held

	dataStart, lastInput time.Time
	dataBytes            int64

	reading    bool      // blocked reading from the client
	writers    int       // writes in progress
	writeSince time.Time // when the oldest write in progress began

	shed        bool      // another connection took the slot: every read fails at once
	shedWriteBy time.Time // the write deadline after shedding: the last reply's, or the end of a write in progress
}

// bound is what ended a read.
type bound int

const (
	boundIdle     bound = iota // ReadTimeout: nothing came
	boundCommand               // CommandTimeout
	boundDataRate              // MinDataRate after MinDataRateGrace
	boundSession               // MaxSessionDuration
	boundShed                  // another connection took the slot
)

func (b bound) String() string {
	return [...]string{"read_timeout", "command_timeout", "min_data_rate", "max_session_duration", "shed"}[b]
}

// cutError is a read ended by a bound; Read turns it into what go-smtp is given.
type cutError struct {
	bound   bound
	data    bool // inside a message
	holding bool // waiting for a command line on a plain connection: nothing of it reached go-smtp
}

func (e *cutError) Error() string   { return "smtpd: " + e.bound.String() }
func (e *cutError) Timeout() bool   { return true }
func (e *cutError) Temporary() bool { return true }

// errIdleTimeout replaces the net package's timeout error, whose text names addresses.
// go-smtp answers it (a net.Error timeout) with "421 4.4.2 Idle timeout, bye bye".
type errIdleTimeout struct{}

func (errIdleTimeout) Error() string   { return "timeout waiting for the client" }
func (errIdleTimeout) Timeout() bool   { return true }
func (errIdleTimeout) Temporary() bool { return true }

// aLongTimeAgo is a deadline that has passed: it makes a blocked read or write return.
var aLongTimeAgo = time.Unix(1, 0)

// minFill is the least room the held buffer gets for a read from the network.
const minFill = 4096

func (s *Server) newTrackedConn(c net.Conn, now time.Time) *trackedConn {
	ip := remoteIP(c.RemoteAddr())
	tc := &trackedConn{Conn: c, srv: s, id: newSessionID(), ip: ip, network: networkOf(ip), trusted: s.trusted(ip), accepted: now}
	tc.st.waitStart = now
	return tc
}

func (c *trackedConn) Read(b []byte) (int, error) {
	if c.readErr != nil {
		if _, ok := c.readErr.(errIdleTimeout); ok {
			// Again, so that go-smtp answers it with its 421 even when its reader first
			// handed on part of a command line it had (under TLS; see trackedConn).
			return 0, c.readErr
		}
		return 0, io.EOF
	}
	n, err := c.read(b)
	if err != nil {
		var cut *cutError
		if errors.As(err, &cut) {
			err = c.cut(cut)
		}
		c.readErr = err
		c.readFailed.Store(true)
	}
	return n, err
}

// read gives go-smtp its input: one whole command line per call while it waits for one on a
// plain connection, anything else as it comes.
func (c *trackedConn) read(b []byte) (int, error) {
	for {
		if c.closed.Load() {
			return 0, net.ErrClosed
		}
		lines := c.holdingLines()
		if e := c.ended(lines); e != nil {
			return 0, e // also with whole lines held: a pipelined command is input too
		}
		if n := c.takeHeld(b, lines); n > 0 {
			return n, nil
		}
		if !lines {
			return c.netRead(b, false)
		}
		if err := c.fill(); err != nil {
			return 0, err // what is held, part of a line, never reaches go-smtp
		}
	}
}

// ended returns the cut of a connection that was shed or whose session is over, or nil.
func (c *trackedConn) ended(holding bool) *cutError {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.expiredLocked(time.Now()); b == boundShed || b == boundSession {
		return &cutError{bound: b, data: c.st.data, holding: holding}
	}
	return nil
}

// holdingLines reports whether go-smtp is waiting for a command line on a plain connection.
func (c *trackedConn) holdingLines() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.st.tls && !c.st.data && !c.st.lineGiven && !c.inData.Load()
}

// takeHeld moves held input to b: with lines, only a whole line (or more than a line's worth
// without its end, for go-smtp's line limit to refuse).
func (c *trackedConn) takeHeld(b []byte, lines bool) int {
	if len(c.held) == 0 || len(b) == 0 {
		return 0
	}
	k := len(c.held)
	if lines {
		i := bytes.IndexByte(c.held, '\n')
		switch {
		case i >= 0:
			k = i + 1
		case len(c.held) <= c.srv.cfg.MaxLineLength:
			return 0
		}
	}
	n := copy(b, c.held[:k])
	gave := lines && n == k && c.held[k-1] == '\n'
	startTLS := gave && c.srv.smtp.TLSConfig != nil && hasPrefixFold(c.held[:k], "STARTTLS")
	c.held = c.held[n:]

	c.mu.Lock()
	defer c.mu.Unlock()
	if gave {
		c.st.lineGiven = true
		// go-smtp takes any line starting with STARTTLS for the command.
		c.st.tls = c.st.tls || startTLS
	}
	switch {
	case len(c.held) == 0:
		c.st.heldSince = time.Time{}
	case gave:
		// What is left began after the line's end, so it came with the last fill.
		c.st.heldSince = c.lastFill
	}
	return n
}

// fill reads from the network into held (a fresh buffer when the room behind it is short:
// takeHeld only moves the start forward).
func (c *trackedConn) fill() error {
	if cap(c.held)-len(c.held) < minFill {
		c.held = append(make([]byte, 0, len(c.held)+2*minFill), c.held...)
	}
	n, err := c.netRead(c.held[len(c.held):cap(c.held)], true)
	c.held = c.held[:len(c.held)+n]
	return err
}

// netRead reads from the network under the connection's deadline, and accounts for what came.
func (c *trackedConn) netRead(p []byte, hold bool) (int, error) {
	c.mu.Lock()
	st := &c.st
	now := time.Now()
	if c.inData.Load() && !st.data {
		st.data, st.dataStart, st.lastInput, st.dataBytes = true, now, now, 0
	}
	_ = c.Conn.SetReadDeadline(c.readDeadlineLocked())
	st.reading = true
	c.mu.Unlock()

	n, err := c.Conn.Read(p)

	c.mu.Lock()
	defer c.mu.Unlock()
	now = time.Now()
	st.reading = false
	if n > 0 {
		switch {
		case st.data:
			st.dataBytes += int64(n)
			st.lastInput = now
		case st.cmdStart.IsZero():
			st.cmdStart = now
		}
		if hold {
			c.lastFill = now
			if st.heldSince.IsZero() {
				st.heldSince = now
			}
		} else if st.lineGiven && !st.data && !st.tls && p[0] == 0x16 {
			// A TLS handshake record after a command line: STARTTLS (also when go-smtp got
			// that line partly from an earlier read, so that takeHeld did not see it whole).
			st.tls = true
		}
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return n, &cutError{bound: c.expiredLocked(now), data: st.data, holding: hold}
	}
	return n, err
}

// readDeadlineLocked is the earliest of the bounds that apply now (see trackedConn).
func (c *trackedConn) readDeadlineLocked() time.Time {
	st, cfg := &c.st, &c.srv.cfg
	if st.shed {
		return aLongTimeAgo
	}
	dl := c.accepted.Add(time.Duration(cfg.MaxSessionDuration))
	if st.data {
		return earliest(dl, st.lastInput.Add(time.Duration(cfg.ReadTimeout)), c.rateDeadlineLocked())
	}
	dl = earliest(dl, st.goRead)
	if !st.cmdStart.IsZero() {
		dl = earliest(dl, st.cmdStart.Add(time.Duration(cfg.CommandTimeout)))
	}
	return dl
}

// rateDeadlineLocked is when the message falls below MinDataRate: the grace, plus one second
// per MinDataRate bytes received.
func (c *trackedConn) rateDeadlineLocked() time.Time {
	return c.st.dataStart.Add(time.Duration(c.srv.cfg.MinDataRateGrace) + c.earnedLocked())
}

// earnedLocked is the time the message's bytes so far have paid for at MinDataRate.
func (c *trackedConn) earnedLocked() time.Duration {
	rate := int64(c.srv.cfg.MinDataRate)
	n := c.st.dataBytes
	return time.Duration(n/rate)*time.Second + time.Duration(n%rate)*time.Second/time.Duration(rate)
}

// expiredLocked names the bound whose deadline has passed at now.
func (c *trackedConn) expiredLocked(now time.Time) bound {
	st, cfg := &c.st, &c.srv.cfg
	switch {
	case st.shed:
		return boundShed
	case !now.Before(c.accepted.Add(time.Duration(cfg.MaxSessionDuration))):
		return boundSession
	case st.data && !now.Before(c.rateDeadlineLocked()):
		return boundDataRate
	case !st.data && !st.cmdStart.IsZero() && !now.Before(st.cmdStart.Add(time.Duration(cfg.CommandTimeout))):
		return boundCommand
	}
	return boundIdle
}

// cut logs a read ended by a bound and returns the error go-smtp is given for it: inside a
// message, the reply (go-smtp and the session answer the message with it); while waiting for
// a command line on a plain connection, io.EOF after writing the reply here (go-smtp then
// closes without a word, and nothing of the line reached it); otherwise a timeout, which
// go-smtp answers with its "421 4.4.2 Idle timeout, bye bye".
func (c *trackedConn) cut(e *cutError) error {
	r := c.srv.cutReply(e)
	c.srv.limits.penalize(c.ip, time.Now())
	attrs := append(c.logAttrs(), "bound", e.bound.String(), "code", r.Code)
	if e.data {
		c.mu.Lock()
		attrs = append(attrs, "message_bytes", c.st.dataBytes, "message_for", time.Since(c.st.dataStart).Round(time.Millisecond).String())
		c.mu.Unlock()
	}
	if len(c.held) > 0 {
		attrs = append(attrs, "dropped_partial_command_bytes", len(c.held))
	}
	c.srv.log.Info("smtp connection cut", attrs...)
	switch {
	case e.data:
		return r
	case e.holding && e.bound != boundIdle:
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.srv.lastReplyGrace()))
		_, _ = io.WriteString(c.Conn, line(r))
		return io.EOF
	}
	return errIdleTimeout{}
}

// cutReply is the last reply for a read ended by a bound.
func (s *Server) cutReply(e *cutError) *smtp.SMTPError {
	switch e.bound {
	case boundShed:
		return reply(421, smtp.EnhancedCode{4, 4, 5}, "Too busy, closing the connection that waited longest, try again later")
	case boundSession:
		return reply(421, smtp.EnhancedCode{4, 4, 2}, fmt.Sprintf("Session time limit (%v) reached, closing connection", time.Duration(s.cfg.MaxSessionDuration)))
	case boundCommand:
		return reply(421, smtp.EnhancedCode{4, 4, 2}, fmt.Sprintf("Command not complete within %v, closing connection", time.Duration(s.cfg.CommandTimeout)))
	case boundDataRate:
		return reply(421, smtp.EnhancedCode{4, 4, 2}, fmt.Sprintf("Message data slower than %d bytes/s, closing connection", s.cfg.MinDataRate))
	}
	if e.data {
		return replyDataTimeout()
	}
	return reply(421, smtp.EnhancedCode{4, 4, 2}, "Idle timeout, bye bye") // go-smtp's own
}

// SetReadDeadline is go-smtp starting to wait for a command line (it calls it there only).
// The deadline is set again before each read from the network; setting it here too returns
// the error of a closed connection, which is how go-smtp stops reading after it closed one
// itself (its "Too many errors"): what is held must not be handed on then.
func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.goRead = t
	if !c.inData.Load() { // else the next BDAT command of a message: still the message's bounds
		c.st.data = false
		c.st.waitStart = time.Now()
		c.st.cmdStart = c.st.heldSince
		c.st.lineGiven = false
	}
	return c.Conn.SetReadDeadline(c.readDeadlineLocked())
}

// SetWriteDeadline sets go-smtp's deadline for a reply (WriteTimeout), cut short so that a
// client that does not read its replies cannot keep the connection past the session's end, or
// past its shedding, by more than lastReplyGrace. A reply after a long gateway call still gets
// that grace.
func (c *trackedConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.goWrite = t
	return c.Conn.SetWriteDeadline(c.writeDeadlineLocked(time.Now()))
}

func (c *trackedConn) writeDeadlineLocked(now time.Time) time.Time {
	end := c.accepted.Add(time.Duration(c.srv.cfg.MaxSessionDuration))
	if now.After(end) {
		end = now
	}
	dl := earliest(c.st.goWrite, end.Add(c.srv.lastReplyGrace()))
	if c.st.shed {
		dl = earliest(dl, c.st.shedWriteBy)
	}
	return dl
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

func (c *trackedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.st.writers == 0 {
		c.st.writeSince = time.Now()
	}
	c.st.writers++
	c.mu.Unlock()
	n, err := c.Conn.Write(b)
	c.mu.Lock()
	c.st.writers--
	c.mu.Unlock()
	return n, err
}

// owedSince returns since when the connection has owed its client's input, or false when it
// is not waiting for its client (go-smtp or the gateway is working on what it sent). Waiting
// for a command, it is owed since the wait began (just accepted, since then); inside a
// message, since the time its bytes have paid for at MinDataRate (so a fast transfer is owed
// far in the future); writing to a client that does not read its replies, since the write
// began.
func (c *trackedConn) owedSince() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &c.st
	switch {
	case st.shed:
		return time.Time{}, false
	case st.writers > 0:
		return st.writeSince, true
	case st.data && st.reading:
		return st.dataStart.Add(c.earnedLocked()), true
	case st.reading, st.goRead.IsZero() && !st.data:
		// goRead is zero until go-smtp, having sent the greeting, first waits for a command.
		return st.waitStart, true
	}
	return time.Time{}, false
}

// shed ends the connection because another one took its slot (already released): its read in
// progress, or its next, fails at once and gets the last reply; a write in progress, and that
// reply, get lastReplyGrace (a client that does not read its replies gets no more).
func (c *trackedConn) shed(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.shed = true
	c.st.shedWriteBy = now.Add(c.srv.lastReplyGrace())
	c.srv.limits.penalize(c.ip, now)
	_ = c.Conn.SetReadDeadline(aLongTimeAgo)
	_ = c.Conn.SetWriteDeadline(c.writeDeadlineLocked(now))
}

func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		// Release before closing, so a client that sees the close can reconnect at once.
		c.srv.limits.release(c)
		c.srv.log.Info("smtp disconnect", c.logAttrs()...)
		err = c.Conn.Close()
	})
	return err
}

// finish sends a last reply on w (the connection as go-smtp now uses it, TLS or not) and
// closes the connection. go-smtp's own later replies then go nowhere, so the client sees
// exactly this reply and the end of the connection.
func (c *trackedConn) finish(w net.Conn, r *smtp.SMTPError) {
	c.finishOnce.Do(func() {
		_ = w.SetWriteDeadline(time.Now().Add(time.Duration(c.srv.cfg.WriteTimeout)))
		_, _ = io.WriteString(w, line(r))
		_ = c.Close()
	})
}

// tracked returns the trackedConn under c, which may be the *tls.Conn of a STARTTLS session.
func tracked(c net.Conn) *trackedConn {
	for {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

// earliest returns the earliest non-zero time of ts (zero if all are zero).
func earliest(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}

// hasPrefixFold reports whether b starts with prefix, ignoring ASCII case.
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}
