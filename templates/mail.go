package templates

import (
	"bytes"
	"errors"
	stdmime "mime"
	"mime/quotedprintable"
	"strings"
	"time"

	"github.com/sealpost/sealpost/mime"
)

// MessageOption changes how Rendered.Message builds a message.
type MessageOption func(*messageOptions)

type messageOptions struct {
	boundary func() (string, error)
}

// WithBoundary takes the multipart boundary from next instead of mime.NewBoundary (for output that
// must not drift, such as golden files).
func WithBoundary(next func() (string, error)) MessageOption {
	return func(o *messageOptions) { o.boundary = next }
}

// Message returns the rendered message as an RFC 5322 message from from to to: multipart/alternative
// with the text and the HTML, each quoted-printable UTF-8 in CRLF lines (7-bit), ready to be signed.
func (r Rendered) Message(from, to string, date time.Time, messageID string, opts ...MessageOption) ([]byte, error) {
	o := messageOptions{boundary: mime.NewBoundary}
	for _, opt := range opts {
		opt(&o)
	}
	for _, v := range []string{from, to, messageID, r.Subject} {
		if strings.ContainsFunc(v, isControl) {
			return nil, errors.New("templates: header values are single lines")
		}
	}
	var b bytes.Buffer
	h := mime.Header{
		mime.NewField("From", from),
		mime.NewField("To", to),
		subjectField(r.Subject),
		mime.NewField("Date", date.Format(time.RFC1123Z)),
		mime.NewField("Message-ID", messageID),
		mime.NewField("MIME-Version", "1.0"),
	}
	h.WriteTo(&b)
	m, err := mime.NewMultipart(&b, o.boundary, mime.Bytes(r.Text+r.HTML))
	if err != nil {
		return nil, err
	}
	m.ContentType("multipart/alternative")
	b.WriteString("\r\n")
	for _, part := range []struct{ mediaType, body string }{{"text/plain", r.Text}, {"text/html", r.HTML}} {
		m.Part(mime.Header{
			mime.NewField("Content-Type", part.mediaType+"; charset=utf-8"),
			mime.NewField("Content-Transfer-Encoding", "quoted-printable"),
		})
		if err := writeQP(&b, part.body); err != nil {
			return nil, err
		}
	}
	m.Close()
	return b.Bytes(), nil
}

// subjectField encodes subject (RFC 2047) and folds it at spaces, between encoded words, so that no
// line of it passes 78 characters where a space allows a fold.
func subjectField(subject string) mime.Field {
	words := strings.Split(stdmime.QEncoding.Encode("utf-8", subject), " ")
	var f strings.Builder
	f.WriteString("Subject:")
	line := len("Subject:")
	for _, w := range words {
		// never fold where the line would hold only whitespace
		if line+1+len(w) > 78 && line > 1 {
			f.WriteString("\r\n")
			line = 0
		}
		f.WriteString(" ")
		f.WriteString(w)
		line += 1 + len(w)
	}
	f.WriteString("\r\n")
	return mime.Field{Name: "Subject", Raw: []byte(f.String())}
}

// writeQP writes body quoted-printable with CRLF line ends (its last line break is the content's).
func writeQP(b *bytes.Buffer, body string) error {
	w := quotedprintable.NewWriter(b)
	w.Binary = false
	if _, err := w.Write([]byte(strings.ReplaceAll(body, "\r\n", "\n"))); err != nil {
		return err
	}
	return w.Close()
}
