package smtpd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// connLimits counts a server's open connections, in total and per client IP.
type connLimits struct {
	maxTotal, maxPerIP int

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
}

func (l *connLimits) acquire(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.maxTotal || l.perIP[ip] >= l.maxPerIP {
		return false
	}
	l.total++
	l.perIP[ip]++
	return true
}

func (l *connLimits) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// limitListener admits connections within the limits and answers the others with
// "421 4.7.0 Too many connections, try again later" before closing them. Admitted
// connections are *trackedConn.
type limitListener struct {
	net.Listener
	srv *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c.RemoteAddr())
		id := newSessionID()
		if !l.srv.limits.acquire(ip) {
			go l.srv.refuse(c, id, ip)
			continue
		}
		l.srv.log.Info("smtp connect", "session", id, "remote", ip.String())
		return &trackedConn{Conn: c, srv: l.srv, id: id, ip: ip}, nil
	}
}

// refuse answers a connection over the limits and closes it.
func (s *Server) refuse(c net.Conn, id string, ip netip.Addr) {
	r := replyTooManyConnections()
	s.log.Warn("smtp connection refused", "session", id, "remote", ip.String(), "code", r.Code)
	_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, _ = io.WriteString(c, line(r))
	_ = c.Close()
}

// trackedConn is one admitted connection. It releases its slot on Close, carries the
// session ID, and makes read errors final: after a timeout or any other read error every
// later Read returns io.EOF, so go-smtp never goes on to parse the rest of an interrupted
// message as commands.
type trackedConn struct {
	net.Conn
	srv *Server
	id  string
	ip  netip.Addr

	// inData is set while the session reads a message, so that a timeout there becomes a
	// 421 reply rather than go-smtp's "554 ... transaction failed" for BDAT chunks.
	inData       atomic.Bool
	authFailures atomic.Int32

	readErr    error       // only the connection's reading goroutine touches it
	readFailed atomic.Bool // readErr is set, for other goroutines
	closeOnce  sync.Once
	finishOnce sync.Once
}

func (c *trackedConn) Read(b []byte) (int, error) {
	if c.readErr != nil {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(b)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if c.inData.Load() {
				// go-smtp hands this to the session (DATA) or replies with it (BDAT).
				err = replyDataTimeout()
			} else {
				// go-smtp answers a net.Error timeout with "421 4.4.2 Idle timeout".
				err = errIdleTimeout{}
			}
		}
		c.readErr = err
		c.readFailed.Store(true)
	}
	return n, err
}

func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		// Release before closing, so a client that sees the close can reconnect at once.
		c.srv.limits.release(c.ip)
		c.srv.log.Info("smtp disconnect", "session", c.id, "remote", c.ip.String())
		err = c.Conn.Close()
	})
	return err
}

// finish sends a last reply on w (the connection as go-smtp now uses it, TLS or not) and
// closes the connection. go-smtp's own later replies then go nowhere, so the client sees
// exactly this reply and the end of the connection.
func (c *trackedConn) finish(w net.Conn, r *smtp.SMTPError) {
	c.finishOnce.Do(func() {
		_ = w.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
		_, _ = io.WriteString(w, line(r))
		_ = c.Close()
	})
}

// errIdleTimeout replaces the net package's timeout error, whose text names addresses.
type errIdleTimeout struct{}

func (errIdleTimeout) Error() string   { return "timeout waiting for the client" }
func (errIdleTimeout) Timeout() bool   { return true }
func (errIdleTimeout) Temporary() bool { return true }

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

// remoteIP returns the client's address without port, IPv4-mapped IPv6 unmapped; the zero
// Addr when the connection is not IP.
func remoteIP(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// newSessionID returns a random ID for logs.
func newSessionID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// logAttrs are the attributes every log record of a connection carries.
func (c *trackedConn) logAttrs() []any {
	return []any{slog.String("session", c.id), slog.String("remote", c.ip.String())}
}
