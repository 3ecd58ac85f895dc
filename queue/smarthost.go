package queue

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/config"
)

// SmarthostConfig configures a Smarthost. Start from DefaultSmarthostConfig: Validate fills in
// nothing, and zero never means "the default".
type SmarthostConfig struct {
	Addr string // host:port of the relay
	// TLS is "required" (STARTTLS with a verified certificate, or nothing
	// is sent), "opportunistic" (STARTTLS when offered, without certificate
	// verification, else plain text, like Postfix "may") or "none".
	TLS       string
	TLSConfig *tls.Config // roots, client certificates; ServerName defaults to Addr's host
	// Username and Password enable AUTH PLAIN, which is only ever sent over
	// TLS.
	Username, Password string
	HelloName          string        // EHLO name after STARTTLS; empty means os.Hostname()
	Timeout            time.Duration // connection set-up, each reply, each write
	MaxIdle            int           // idle connections kept for reuse
}

// TLS modes for SmarthostConfig.TLS.
const (
	TLSRequired      = "required"
	TLSOpportunistic = "opportunistic"
	TLSNone          = "none"
)

// Defaults that DefaultSmarthostConfig sets. The timeout bounds each step of a delivery (dial,
// STARTTLS, each command and each 64 KB of data), not the whole transfer: a minute is what
// sealpost serve has always used.
const (
	DefaultSmarthostTimeout = time.Minute
	DefaultSmarthostMaxIdle = 4
)

const (
	// idleTimeout: an idle connection older than this is closed rather than
	// reused (servers drop idle clients after a few minutes).
	idleTimeout = 30 * time.Second
	// dataChunk is how much message data is written per write deadline.
	dataChunk = 64 << 10
)

// DefaultSmarthostConfig is a smarthost with verified STARTTLS (TLSRequired), a
// DefaultSmarthostTimeout and DefaultSmarthostMaxIdle idle connections; Addr is left for the
// caller.
func DefaultSmarthostConfig() SmarthostConfig {
	return SmarthostConfig{TLS: TLSRequired, Timeout: DefaultSmarthostTimeout, MaxIdle: DefaultSmarthostMaxIdle}
}

// Validate reports every setting that is wrong, zero included, each a *config.FieldError named
// by its key (addr, tls, username, password, timeout, max_idle). It changes nothing.
func (c SmarthostConfig) Validate() error {
	var errs []error
	bad := func(path string, cause error, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...), Err: cause})
	}
	if c.Addr == "" {
		bad("addr", nil, "required (host:port)")
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", err, "%q is not host:port: %v", c.Addr, err)
	}
	switch {
	case c.TLS != TLSRequired && c.TLS != TLSOpportunistic && c.TLS != TLSNone:
		bad("tls", nil, "%q is not %s, %s or %s", c.TLS, TLSRequired, TLSOpportunistic, TLSNone)
	case c.Username != "" && c.TLS == TLSNone:
		bad("username", nil, "credentials need tls (AUTH is never sent in plain text)")
	}
	if c.Password != "" && c.Username == "" {
		bad("password", nil, "set without a username")
	}
	if c.Timeout < time.Second {
		bad("timeout", nil, "%v: want at least 1s", c.Timeout)
	}
	if c.MaxIdle < 1 {
		bad("max_idle", nil, "%d: want at least 1", c.MaxIdle)
	}
	return errors.Join(errs...)
}

// Smarthost is a NextHop that relays over SMTP to one server, with STARTTLS
// as configured, AUTH PLAIN over TLS only, and connection reuse. Its methods
// are safe for concurrent use; close it after the Spool.
type Smarthost struct {
	cfg       SmarthostConfig
	tlsConfig *tls.Config

	mu     sync.Mutex
	idle   []*smtpConn
	closed bool
}

type smtpConn struct {
	c         *smtp.Client
	nc        net.Conn
	idleSince time.Time
}

// NewSmarthost validates cfg (start from DefaultSmarthostConfig) and returns a Smarthost. It does
// not connect.
func NewSmarthost(cfg SmarthostConfig) (*Smarthost, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("queue: smarthost: %w", err)
	}
	if cfg.HelloName == "" {
		cfg.HelloName, _ = os.Hostname()
		if cfg.HelloName == "" {
			cfg.HelloName = "localhost"
		}
	}
	host, _, _ := net.SplitHostPort(cfg.Addr)
	tc := &tls.Config{}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	if cfg.TLS == TLSOpportunistic {
		// Unverified encryption beats the plain text that a failed
		// verification would fall back to (RFC 7435).
		tc.InsecureSkipVerify = true
	}
	return &Smarthost{cfg: cfg, tlsConfig: tc}, nil
}

// Deliver relays one message in one SMTP transaction and returns each
// recipient's outcome: a RCPT reply applies to its recipient, a MAIL or DATA
// reply to every recipient it concerns; 4xx replies, network failures and
// failures before MAIL (connection, TLS, AUTH) are temporary, 5xx replies
// permanent.
func (h *Smarthost) Deliver(ctx context.Context, from string, to []string, data []byte) []error {
	errs, _ := h.DeliverReply(ctx, from, to, data)
	return errs
}

// DeliverReply is Deliver that also returns the relay's address and its reply to DATA when it
// accepted the message (queue.ReplyingHop).
func (h *Smarthost) DeliverReply(ctx context.Context, from string, to []string, data []byte) ([]error, Accepted) {
	return h.DeliverStream(ctx, from, to, bytes.NewReader(data), int64(len(data)))
}

// DeliverStream is DeliverReply with the message read from data (queue.StreamingHop): a read
// error drops the connection before the end of DATA, so the relay discards what it got.
func (h *Smarthost) DeliverStream(ctx context.Context, from string, to []string, data io.Reader, size int64) ([]error, Accepted) {
	errs := make([]error, len(to))
	conn, err := h.get(ctx)
	if err != nil {
		return fill(errs, nil, err), Accepted{}
	}
	// Cancelling ctx aborts the transaction by closing the connection.
	stop := context.AfterFunc(ctx, func() { conn.nc.Close() })
	keep, reply := h.transact(conn, from, to, data, size, errs)
	if stop() && keep {
		h.putIdle(conn)
	} else {
		conn.c.Close()
	}
	acc := Accepted{}
	if reply != nil {
		acc = Accepted{Host: h.cfg.Addr, Code: 250, Text: reply.StatusText}
	}
	return errs, acc
}

// transact runs MAIL, RCPT and DATA on conn, filling errs. It reports
// whether the connection is fit for reuse, and the reply to DATA when the
// message was accepted.
func (h *Smarthost) transact(conn *smtpConn, from string, to []string, data io.Reader, size int64, errs []error) (bool, *smtp.DataResponse) {
	c := conn.c
	opts := &smtp.MailOptions{Size: size}
	if !isASCII(from) || !allASCII(to) {
		opts.UTF8 = true
	}
	if err := c.Mail(from, opts); err != nil {
		fill(errs, nil, replyError(err))
		return false, nil
	}
	var accepted []int
	for i, rcpt := range to {
		err := c.Rcpt(rcpt, nil)
		if err == nil {
			accepted = append(accepted, i)
			continue
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			// The connection broke: nobody got the message.
			fill(errs, nil, replyError(err))
			return false, nil
		}
		errs[i] = replyError(err)
	}
	if len(accepted) == 0 {
		return true, nil // RSET before the next transaction
	}
	w, err := c.Data()
	if err != nil {
		fill(errs, accepted, replyError(err))
		return false, nil
	}
	buf := make([]byte, max(min(size, dataChunk), 1))
	for {
		n, rerr := io.ReadFull(data, buf)
		if n > 0 {
			_ = conn.nc.SetWriteDeadline(time.Now().Add(h.cfg.Timeout))
			if _, err := w.Write(buf[:n]); err != nil {
				fill(errs, accepted, replyError(err))
				return false, nil
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			// Not ended with ".": the relay drops the transaction with the connection.
			fill(errs, accepted, &DeliveryError{Temporary: true, Enhanced: "4.3.0", Message: "reading the queued message: " + rerr.Error()})
			return false, nil
		}
	}
	_ = conn.nc.SetWriteDeadline(time.Now().Add(h.cfg.Timeout))
	resp, err := w.CloseWithResponse()
	if err != nil {
		fill(errs, accepted, replyError(err))
		return false, nil
	}
	return true, resp
}

// fill sets errs[i] = err for each i in idx, or for every i when idx is nil.
func fill(errs []error, idx []int, err error) []error {
	if idx == nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for _, i := range idx {
		errs[i] = err
	}
	return errs
}

// replyError maps a go-smtp error to a DeliveryError: the server's reply
// code decides (5xx permanent, anything else temporary); an error without a
// reply is a temporary network failure.
func replyError(err error) *DeliveryError {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		de := &DeliveryError{Temporary: se.Code/100 != 5, Code: se.Code, Message: se.Message}
		if ec := se.EnhancedCode; ec != smtp.EnhancedCodeNotSet && ec != smtp.NoEnhancedCode {
			de.Enhanced = fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
		}
		return de
	}
	return &DeliveryError{Temporary: true, Enhanced: "4.4.2", Message: "smarthost: " + err.Error()}
}

// setupError is a failure before MAIL: always temporary, whatever the
// server replied, since it says nothing about the message or recipients.
func setupError(enhanced, what string, err error) *DeliveryError {
	de := &DeliveryError{Temporary: true, Enhanced: enhanced, Message: "smarthost: " + what}
	if err != nil {
		de.Message += ": " + err.Error()
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		de.Code = se.Code
	}
	return de
}

// get returns an idle connection that answers RSET, or a new one.
func (h *Smarthost) get(ctx context.Context) (*smtpConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, setupError("4.4.2", "cancelled", err)
	}
	for {
		conn := h.takeIdle()
		if conn == nil {
			break
		}
		stop := context.AfterFunc(ctx, func() { conn.nc.Close() })
		err := conn.c.Reset()
		if stop() && err == nil {
			return conn, nil
		}
		conn.c.Close()
	}
	return h.dial(ctx)
}

func (h *Smarthost) takeIdle() *smtpConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.idle) > 0 {
		conn := h.idle[len(h.idle)-1]
		h.idle = h.idle[:len(h.idle)-1]
		if time.Since(conn.idleSince) < idleTimeout {
			return conn
		}
		go conn.quit()
	}
	return nil
}

// quit says goodbye, without waiting long for a server that stopped
// answering, and closes the connection.
func (conn *smtpConn) quit() {
	t := time.AfterFunc(5*time.Second, func() { conn.nc.Close() })
	_ = conn.c.Quit()
	t.Stop()
	conn.c.Close()
}

func (h *Smarthost) putIdle(conn *smtpConn) {
	h.mu.Lock()
	if h.closed || len(h.idle) >= h.cfg.MaxIdle {
		h.mu.Unlock()
		conn.quit()
		return
	}
	conn.idleSince = time.Now()
	h.idle = append(h.idle, conn)
	h.mu.Unlock()
}

// dial connects, greets, negotiates TLS and authenticates, all within
// Timeout.
func (h *Smarthost) dial(ctx context.Context) (*smtpConn, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	connect := func() (net.Conn, func() bool, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", h.cfg.Addr)
		if err != nil {
			return nil, nil, setupError("4.4.1", "connect", err)
		}
		return nc, context.AfterFunc(ctx, func() { nc.Close() }), nil
	}
	nc, stop, err := connect()
	if err != nil {
		return nil, err
	}
	var c *smtp.Client
	if h.cfg.TLS != TLSNone {
		c, err = h.startTLS(nc)
		if err != nil {
			stop()
			nc.Close()
			if h.cfg.TLS == TLSRequired {
				return nil, setupError("4.7.10", "TLS is required and STARTTLS was not offered or failed", err)
			}
			// Opportunistic: plain text on a fresh connection.
			if nc, stop, err = connect(); err != nil {
				return nil, err
			}
			c = nil
		}
	}
	if c == nil {
		c = smtp.NewClient(nc)
		if err := c.Hello(h.cfg.HelloName); err != nil {
			stop()
			c.Close()
			return nil, setupError("4.4.2", "EHLO", err)
		}
	}
	c.CommandTimeout = h.cfg.Timeout
	c.SubmissionTimeout = h.cfg.Timeout
	fail := func(de *DeliveryError) (*smtpConn, error) {
		stop()
		c.Close()
		return nil, de
	}
	if h.cfg.Username != "" {
		if _, ok := c.TLSConnectionState(); !ok {
			return fail(setupError("4.7.10", "refusing to send credentials without TLS", nil))
		}
		if !c.SupportsAuth(sasl.Plain) {
			return fail(setupError("4.7.0", "server does not offer AUTH PLAIN", nil))
		}
		if err := c.Auth(sasl.NewPlainClient("", h.cfg.Username, h.cfg.Password)); err != nil {
			return fail(setupError("4.7.8", "authentication failed", err))
		}
	}
	if !stop() {
		c.Close()
		return nil, setupError("4.4.2", "connection set-up timed out", ctx.Err())
	}
	return &smtpConn{c: c, nc: nc}, nil
}

// startTLS greets, issues STARTTLS and completes the handshake with the
// EHLO that follows (go-smtp shakes hands on first use), so that any TLS
// failure, a certificate that does not verify included, is reported here.
func (h *Smarthost) startTLS(nc net.Conn) (*smtp.Client, error) {
	c, err := smtp.NewClientStartTLS(nc, h.tlsConfig)
	if err != nil {
		return nil, err
	}
	if err := c.Hello(h.cfg.HelloName); err != nil {
		c.Close()
		return nil, err
	}
	if cs, ok := c.TLSConnectionState(); !ok || !cs.HandshakeComplete {
		c.Close()
		return nil, errors.New("TLS handshake did not complete")
	}
	return c, nil
}

// Close closes the idle connections; later deliveries are not pooled.
func (h *Smarthost) Close() error {
	h.mu.Lock()
	idle := h.idle
	h.idle = nil
	h.closed = true
	h.mu.Unlock()
	for _, conn := range idle {
		conn.quit()
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allASCII(ss []string) bool {
	for _, s := range ss {
		if !isASCII(s) {
			return false
		}
	}
	return true
}
