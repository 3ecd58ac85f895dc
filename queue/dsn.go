package queue

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/mime"
)

// maxDSNHeader bounds how much of the original header a DSN carries.
const maxDSNHeader = 64 << 10

// queueDSN queues an RFC 3464 delivery status notification to meta.From for
// the failed recipients, from the null sender. It carries the original
// message's header only, never its body.
func (s *Spool) queueDSN(meta *entryMeta, st *entryState, failed []int, data []byte, now time.Time) error {
	if meta.From == "" {
		return nil // never a DSN to the null sender
	}
	id := dsnID(meta.ID, failed)
	s.mu.Lock()
	_, queued := s.entries[id]
	s.mu.Unlock()
	if queued {
		return nil
	}
	msg := buildDSN(dsnParams{
		hostname: s.hostname,
		id:       meta.ID,
		dsnID:    id,
		class:    meta.Class,
		sender:   meta.From,
		arrival:  meta.Created,
		now:      now,
		header:   originalHeader(data),
		failed:   failedRecipients(meta, st, failed),
	})
	if _, err := s.put(&entryMeta{
		ID:         id,
		From:       "",
		Recipients: []string{meta.From},
		Class:      "dsn",
		Created:    now,
		Expires:    now.Add(dsnLifetime),
		Size:       len(msg),
	}, msg); err != nil {
		return err
	}
	s.log.Info("queue: DSN queued", "id", meta.ID, "class", meta.Class, "dsn_id", id,
		"failed", len(failed), "sender_domain", address.Domain(meta.From))
	return nil
}

type failedRecipient struct {
	address string
	err     *DeliveryError
}

func failedRecipients(meta *entryMeta, st *entryState, idx []int) []failedRecipient {
	out := make([]failedRecipient, len(idx))
	for k, i := range idx {
		err := st.Rcpts[i].Last
		if err == nil {
			err = errExpiredUnattempted
		}
		out[k] = failedRecipient{address: meta.Recipients[i], err: err}
	}
	return out
}

type dsnParams struct {
	hostname, id, dsnID, class, sender string
	arrival, now                       time.Time
	header                             []byte
	failed                             []failedRecipient
	boundary                           string // "": a fresh random one (tests fix it)
}

// buildDSN renders a multipart/report; report-type=delivery-status message
// (RFC 3464, RFC 6522): a human-readable part, the machine-readable status,
// and the original header as text/rfc822-headers.
func buildDSN(p dsnParams) []byte {
	fixed := p.boundary
	next := func() (string, error) {
		if b := fixed; b != "" {
			fixed = "" // tried once: should the header hold it, a random one follows
			return b, nil
		}
		var rnd [12]byte
		_, _ = rand.Read(rnd[:])
		return "sealpost-dsn-" + hex.EncodeToString(rnd[:]), nil
	}
	host := oneLine(p.hostname, 255)
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	// next never fails, and 96 random bits are never all in a 64 KB header.
	m, _ := mime.NewMultipart(&b, next, mime.Bytes(p.header))

	w("From: Mail Delivery System <MAILER-DAEMON@%s>", host)
	w("To: <%s>", p.sender)
	w("Subject: Undelivered Mail Returned to Sender")
	w("Date: %s", p.now.UTC().Format(time.RFC1123Z))
	w("Message-ID: <%s.dsn@%s>", p.dsnID, host)
	w("Auto-Submitted: auto-replied")
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status;")
	w("\tboundary=\"%s\"", m.Boundary())
	w("")
	m.Preamble("This is a MIME-encapsulated message.\r\n")

	m.Part(mime.Header{mime.NewField("Content-Type", "text/plain; charset=us-ascii"), mime.NewField("Content-Description", "Notification")})
	w("This is the mail system at %s.", host)
	w("")
	w("Your message (queue ID %s, class %s) could not be delivered", p.id, p.class)
	w("to the following recipients:")
	w("")
	for _, f := range p.failed {
		w("  <%s>: %s", printable(f.address), f.err.Error())
	}

	m.Part(mime.Header{mime.NewField("Content-Type", "message/delivery-status"), mime.NewField("Content-Description", "Delivery report")})
	w("Reporting-MTA: dns; %s", host)
	w("X-Sealpost-Queue-ID: %s", p.id)
	w("Arrival-Date: %s", p.arrival.UTC().Format(time.RFC1123Z))
	for _, f := range p.failed {
		w("")
		w("Final-Recipient: %s", addressField(f.address))
		w("Action: failed")
		w("Status: %s", f.err.Enhanced)
		w("Diagnostic-Code: smtp; %s", f.err.Error())
		w("Last-Attempt-Date: %s", p.now.UTC().Format(time.RFC1123Z))
	}

	// The header ends in CRLF, which the close delimiter supplies; an empty one leaves the part
	// without a body, as before.
	m.Entity()
	w("Content-Type: text/rfc822-headers")
	w("Content-Description: Undelivered message headers")
	if len(p.header) > 0 {
		w("")
		b.Write(p.header[:len(p.header)-2])
	}
	m.Close()
	return b.Bytes()
}

// addressField renders a Final-Recipient value: rfc822 for ASCII addresses,
// utf-8 (RFC 6533) otherwise.
func addressField(a string) string {
	for i := 0; i < len(a); i++ {
		if a[i] >= 0x80 {
			return "utf-8; " + a
		}
	}
	return "rfc822; " + a
}

func printable(a string) string { return oneLine(a, 320) }

// originalHeader returns the header section of a message, up to and
// including the line break that ends the last header line (so never a byte
// of the body), at most maxDSNHeader bytes cut at a line end. A message with
// no blank line has no recognisable body; it yields an empty header rather
// than risk copying body text.
func originalHeader(data []byte) []byte {
	if bytes.HasPrefix(data, []byte("\r\n")) || bytes.HasPrefix(data, []byte("\n")) {
		return nil
	}
	end := -1
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		end = i + 2
	}
	if i := bytes.Index(data, []byte("\n\n")); i >= 0 && (end < 0 || i+1 < end) {
		end = i + 1
	}
	if end < 0 {
		return nil
	}
	h := data[:end]
	if len(h) > maxDSNHeader {
		h = h[:maxDSNHeader]
		if i := bytes.LastIndexByte(h, '\n'); i >= 0 {
			h = h[:i+1]
		}
	}
	// Normalise to CRLF for the DSN's own body.
	s := strings.ReplaceAll(string(h), "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "")
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}
