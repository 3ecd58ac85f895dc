package gateway

import (
	"context"
	"net"
)

// Client describes the SMTP client of a session, as the listener established it.
type Client struct {
	Addr          net.Addr
	Helo          string
	TLS           bool   // the session is under TLS (STARTTLS done)
	User          string // authenticated user, "" if none
	Authenticated bool
	// Trusted: the client may relay (an allowed network, or authenticated).
	Trusted bool
}

// Session is one SMTP session seen from a pipeline. The listener calls Mail, Rcpt (once per
// recipient) and Data in order, and Reset between transactions. Every error returned is either an
// *Error, whose reply the listener sends, or any other error, which the listener answers with
// 451 4.3.0 and no detail.
//
// ctx is derived from the listener's lifetime: when the listener shuts down, a pipeline's
// in-flight TSA, store or spool call is cancelled and the transaction fails with 451.
type Session interface {
	// Mail starts a transaction. size is the SIZE= parameter (0 if absent).
	Mail(ctx context.Context, from string, size int64) error
	// Rcpt accepts or refuses one recipient. A recipient of a class that requires encryption and
	// has no usable key is refused here (550 5.7.1).
	Rcpt(ctx context.Context, to string) error
	// Data receives the whole message, CRLF, dot-unstuffed, already checked for bare CR/LF. It
	// returns the queue ID only once the protected message is durably queued ("250 2.0.0 queued
	// as ID"); an error means nothing was queued.
	Data(ctx context.Context, msg []byte) (queueID string, err error)
	// Reset abandons the transaction.
	Reset()
	// Close ends the session.
	Close()
}

// Handler opens sessions; the outbound and inbound pipelines implement it, the SMTP listener uses it.
type Handler interface {
	NewSession(c Client) (Session, error)
}
