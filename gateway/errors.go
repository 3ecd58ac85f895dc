package gateway

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a refusal with its SMTP reply: the one error type that crosses from a pipeline to the
// SMTP listener, which turns it into a reply with ReplyFor. Any other error becomes "451 4.3.0"
// with no detail, so internal errors never leak to a client.
type Error struct {
	Code     int    // 4xx or 5xx
	Enhanced [3]int // RFC 3463 enhanced status code
	Message  string // safe to show to the client: no internal detail, no message content
	Err      error  // the cause, for logs and errors.Is
}

func (e *Error) Error() string {
	s := Reply{Code: e.Code, Enhanced: e.Enhanced, Text: e.Message}.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the client should try again later (4xx).
func (e *Error) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Sentinels for refusals the pipelines decide on; each is wrapped in an *Error with its reply.
var (
	ErrNoKey            = errors.New("recipient has no usable key and the class requires encryption")
	ErrRelayDenied      = errors.New("relaying denied")
	ErrTimestampFailed  = errors.New("no timestamp authority answered")
	ErrQueueUnavailable = errors.New("queue cannot accept the message")
	// ErrPaced: the queue lane of the message's class is backed up; the sender retries later.
	ErrPaced = errors.New("queue lane paced")
	// ErrBadEnvelopeAddress: a MAIL FROM or RCPT TO address that can never be served as written
	// (CheckSender, CheckRecipient).
	ErrBadEnvelopeAddress = errors.New("malformed envelope address")
	// ErrClassMismatch: the header From belongs to another class than the one the message is sent
	// under (a class borrowed through the envelope sender).
	ErrClassMismatch = errors.New("the From address belongs to another class")
	// ErrKeyPending: the customer's key is being looked up (WKD) and the lookup outran its
	// budget; the client retries (451 4.4.3) and finds the result cached.
	ErrKeyPending = errors.New("the recipient's key is still being looked up")
	// ErrRevocationUnknown: the recipient's certificate's revocation status cannot be checked
	// and the class is hard-fail (451 4.7.5).
	ErrRevocationUnknown = errors.New("the recipient's certificate's revocation status cannot be checked")
)

// Refuse returns an *Error; the constructors below are the replies sealpost uses.
func Refuse(code int, enhanced [3]int, msg string, cause error) *Error {
	return &Error{Code: code, Enhanced: enhanced, Message: msg, Err: cause}
}

// TempFail is 451 4.3.0 with msg: a local problem; the client retries and nothing is lost.
func TempFail(msg string, cause error) *Error {
	return Refuse(451, [3]int{4, 3, 0}, msg, cause)
}

// reasons are the refusals a log or a metric may name, each with its short token.
var reasons = []struct {
	err  error
	code string
}{
	{ErrNoKey, "no_key"}, {ErrRelayDenied, "relay_denied"}, {ErrTimestampFailed, "timestamp_failed"},
	{ErrQueueUnavailable, "queue_unavailable"}, {ErrBadEnvelopeAddress, "bad_address"}, {ErrClassMismatch, "class_mismatch"},
	{ErrKeyPending, "key_pending"}, {ErrRevocationUnknown, "revocation_unknown"}, {ErrPaced, "paced"},
}

// ReasonCode is Reason as a short token for metric labels: no_key, relay_denied,
// timestamp_failed, queue_unavailable, bad_address, class_mismatch, key_pending,
// revocation_unknown, paced or refused.
func ReasonCode(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "refused"
}

// Reason names the kind of refusal for logs, without its reply text, which can name recipients.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.err.Error()
		}
	}
	return "refused"
}

// maxReplyText bounds the text of a reply line (RFC 5321 4.5.3.1.5: 512 octets with the code).
const maxReplyText = 400

// Reply is an SMTP reply: what a listener sends, the CLI prints and a log records.
type Reply struct {
	Code     int
	Enhanced [3]int
	Text     string
}

// LocalError is the reply to any error that is not a valid *Error: no internal detail.
var LocalError = Reply{Code: 451, Enhanced: [3]int{4, 3, 0}, Text: "Local error, try again later"}

// ReplyFor returns the reply err stands for. An error that is (or wraps, per errors.As) an *Error
// with a 4xx or 5xx code gets that code, its enhanced code (or class.0.0 when the enhanced code
// does not fit the code) and its message reduced to printable ASCII on one bounded line. Anything
// else, including an *Error with an invalid code, is LocalError.
func ReplyFor(err error) Reply {
	var e *Error
	if !errors.As(err, &e) || e == nil || e.Code < 400 || e.Code > 599 {
		return LocalError
	}
	class := e.Code / 100
	enh := e.Enhanced
	if enh[0] != class || enh[1] < 0 || enh[1] > 999 || enh[2] < 0 || enh[2] > 999 {
		enh = [3]int{class, 0, 0}
	}
	text := ReplyText(e.Message)
	if text == "" {
		text = "Requested action not taken"
	}
	return Reply{Code: e.Code, Enhanced: enh, Text: text}
}

// Status is the code and enhanced code only ("550 5.7.1"): what a log may record, since the
// text can name a customer.
func (r Reply) Status() string {
	return fmt.Sprintf("%d %d.%d.%d", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2])
}

// String is the reply as one line without its CRLF ("550 5.7.1 text").
func (r Reply) String() string { return r.Status() + " " + r.Text }

// ReplyText keeps printable ASCII and turns everything else into spaces, so that a text cannot
// end a reply line or start another one; it is trimmed and bounded.
func ReplyText(s string) string {
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

// Printable keeps a refusal's text to one printable line of bounded length (300 bytes and "…"):
// control characters become spaces; UTF-8 stays, for logs and the CLI (ReplyFor makes the wire
// reply ASCII).
func Printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
