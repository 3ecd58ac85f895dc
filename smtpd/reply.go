package smtpd

import (
	"fmt"

	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/gateway"
)

// Reply maps an error from a pipeline to the SMTP reply the client gets, through
// gateway.ReplyFor, the one such mapping in sealpost: an *gateway.Error with a valid code gets its
// code, enhanced code and cleaned message; anything else is "451 4.3.0 Local error, try again
// later", with no internal detail. Reply(nil) is nil.
//
// The listener logs every non-nil error it maps, with the session ID; Reply itself does
// not log.
func Reply(err error) *smtp.SMTPError {
	if err == nil {
		return nil
	}
	r := gateway.ReplyFor(err)
	return reply(r.Code, smtp.EnhancedCode(r.Enhanced), r.Text)
}

// reply builds one of the listener's own replies.
func reply(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// The listener's own replies. Each call returns a fresh value, since go-smtp keeps no
// reference but callers must never be able to mutate a shared reply.
func replyLocalError() *smtp.SMTPError {
	r := gateway.LocalError
	return reply(r.Code, smtp.EnhancedCode(r.Enhanced), r.Text)
}

func replyAuthRequired() *smtp.SMTPError {
	return reply(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required")
}

func replyNestedMail() *smtp.SMTPError {
	return reply(503, smtp.EnhancedCode{5, 5, 1}, "Nested MAIL command")
}

func replyTooBig(limit int64) *smtp.SMTPError {
	return reply(552, smtp.EnhancedCode{5, 3, 4}, fmt.Sprintf("Message exceeds fixed maximum message size of %d bytes", limit))
}

func replyBareCRLF() *smtp.SMTPError {
	return reply(550, smtp.EnhancedCode{5, 5, 2}, "bare CR or LF in message (RFC 5321 2.3.8)")
}

// replyLineTooLong is go-smtp's own reply to an over-long command line, reused for DATA lines.
func replyLineTooLong() *smtp.SMTPError {
	return reply(500, smtp.EnhancedCode{5, 4, 0}, "Too long line, closing connection")
}

func replyDataTimeout() *smtp.SMTPError {
	return reply(421, smtp.EnhancedCode{4, 4, 2}, "Timeout waiting for message data, closing connection")
}

func replyConnectionError() *smtp.SMTPError {
	return reply(421, smtp.EnhancedCode{4, 4, 2}, "Connection error, closing connection")
}

func replyTooManyConnections() *smtp.SMTPError {
	return reply(421, smtp.EnhancedCode{4, 7, 0}, "Too many connections, try again later")
}

func replyAuthFailed() *smtp.SMTPError {
	return reply(535, smtp.EnhancedCode{5, 7, 8}, "Authentication failed")
}

func replyTooManyAuthFailures() *smtp.SMTPError {
	return reply(421, smtp.EnhancedCode{4, 7, 0}, "Too many authentication failures, closing connection")
}

func replyAuthInTransaction() *smtp.SMTPError {
	return reply(503, smtp.EnhancedCode{5, 5, 1}, "AUTH not permitted during a mail transaction")
}

func replyAuthMalformed() *smtp.SMTPError {
	return reply(501, smtp.EnhancedCode{5, 5, 2}, "Malformed AUTH response")
}

func replyQueued(id string) *smtp.SMTPError {
	if id = gateway.ReplyText(id); id == "" {
		return reply(250, smtp.EnhancedCode{2, 0, 0}, "queued")
	}
	return reply(250, smtp.EnhancedCode{2, 0, 0}, "queued as "+id)
}

// line renders a reply as it goes on the wire.
func line(r *smtp.SMTPError) string {
	return gateway.Reply{Code: r.Code, Enhanced: [3]int(r.EnhancedCode), Text: r.Message}.String() + "\r\n"
}
