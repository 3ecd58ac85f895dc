package smtpd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/gateway"
)

// maxReplyText bounds the text of a reply line (RFC 5321 4.5.3.1.5: 512 octets with the code).
const maxReplyText = 400

// Reply maps an error from the gateway to the SMTP reply the client gets. It is the only
// such mapping in sealpost.
//
// An error that is (or wraps, per errors.As) a *gateway.Error with a 4xx or 5xx code gets that
// code, enhanced code and message; the message is reduced to printable ASCII on one line.
// Anything else, including a *gateway.Error with an invalid code, is a local failure:
// "451 4.3.0 Local error, try again later", with no internal detail. Reply(nil) is nil.
//
// The listener logs every non-nil error it maps, with the session ID; Reply itself does
// not log.
func Reply(err error) *smtp.SMTPError {
	if err == nil {
		return nil
	}
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge == nil || ge.Code < 400 || ge.Code > 599 {
		return replyLocalError()
	}
	class := ge.Code / 100
	enh := smtp.EnhancedCode(ge.Enhanced)
	if enh[0] != class || enh[1] < 0 || enh[1] > 999 || enh[2] < 0 || enh[2] > 999 {
		enh = smtp.EnhancedCode{class, 0, 0}
	}
	msg := replyText(ge.Message)
	if msg == "" {
		msg = "Requested action not taken"
	}
	return &smtp.SMTPError{Code: ge.Code, EnhancedCode: enh, Message: msg}
}

// replyText keeps printable ASCII and turns everything else into spaces, so that a message
// cannot end the reply line or start another one.
func replyText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = ' '
		}
	}
	out := strings.TrimSpace(string(b))
	if len(out) > maxReplyText {
		out = out[:maxReplyText]
	}
	return out
}

// reply builds one of the listener's own replies.
func reply(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// The listener's own replies. Each call returns a fresh value, since go-smtp keeps no
// reference but callers must never be able to mutate a shared reply.
func replyLocalError() *smtp.SMTPError {
	return reply(451, smtp.EnhancedCode{4, 3, 0}, "Local error, try again later")
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
	if id = replyText(id); id == "" {
		return reply(250, smtp.EnhancedCode{2, 0, 0}, "queued")
	}
	return reply(250, smtp.EnhancedCode{2, 0, 0}, "queued as "+id)
}

// line renders a reply as it goes on the wire.
func line(r *smtp.SMTPError) string {
	return fmt.Sprintf("%d %d.%d.%d %s\r\n", r.Code, r.EnhancedCode[0], r.EnhancedCode[1], r.EnhancedCode[2], r.Message)
}
