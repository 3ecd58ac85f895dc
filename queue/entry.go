package queue

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"time"
)

// On-disk format. Both kinds of spool file are line-oriented headers closed
// by a fixed-size end record:
//
//	END <length: 16 lower-case hex digits> <SHA-256: 64 lower-case hex digits>\n
//
// where length and digest cover every byte before the end record. A file
// whose end record is missing, malformed or does not match is torn or
// corrupt and is never trusted.
//
// Entry file, queue/<ID>.msg, written once by Put and never rewritten:
//
//	sealpost-entry 1
//	id <ID>
//	created <RFC 3339, nanoseconds, UTC>
//	expires <RFC 3339, nanoseconds, UTC>
//	class <Go-quoted string>
//	from <Go-quoted address>
//	rcpt <Go-quoted address>          (one line per recipient, at least one)
//	size <decimal byte count of the message>
//	<empty line>
//	<message: exactly size bytes>
//	END ...
//
// State file, queue/<ID>.state, absent until the first attempt and replaced
// atomically after each one:
//
//	sealpost-state 1
//	id <ID>
//	next <RFC 3339, nanoseconds, UTC>
//	rcpt <index> <pending|delivered|failed> <attempts> <notified 0|1> <temporary 0|1> <code> <enhanced or -> <Go-quoted message>
//	                                  (one line per recipient, in entry order)
//	END ...
//
// A recipient line with enhanced "-" has no last error (temporary 0, code 0,
// message ""). "notified" records that a failed recipient has been reported
// in a DSN (or needs none), so a restart never reports it twice.

const (
	entryMagic = "sealpost-entry 1"
	stateMagic = "sealpost-state 1"
	// trailerLen is len("END ") + 16 + len(" ") + 64 + len("\n").
	trailerLen = 86
	// maxRecipients bounds what a spool file may claim, so a corrupt file
	// cannot make the parser allocate without limit.
	maxRecipients = 100000
	timeLayout    = time.RFC3339Nano
)

// errCorrupt marks a spool file that is torn or damaged.
var errCorrupt = errors.New("corrupt spool file")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
}

// entryMeta is the envelope an entry file records.
type entryMeta struct {
	ID         string
	From       string
	Recipients []string
	Class      string
	Created    time.Time
	Expires    time.Time
	Size       int
}

// Recipient status values, as stored and as reported in RecipientState.
const (
	statusPending   = "pending"
	statusDelivered = "delivered"
	statusFailed    = "failed"
)

// rcptState is one recipient's delivery state.
type rcptState struct {
	Status   string
	Attempts int
	// Notified: a failure has been reported in a DSN, or needs no report.
	Notified bool
	// Last is the last error, nil before the first failed attempt.
	Last *DeliveryError
}

// entryState is what a state file records.
type entryState struct {
	ID    string
	Next  time.Time
	Rcpts []rcptState
}

// hashingWriter counts and hashes what passes through it, for the end record.
type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newHashingWriter(w io.Writer) *hashingWriter {
	return &hashingWriter{w: w, h: sha256.New()}
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// writeTrailer writes the end record for what passed through hw.
func (hw *hashingWriter) writeTrailer() error {
	_, err := io.WriteString(hw.w, endRecord(hw.n, hw.h.Sum(nil)))
	return err
}

// endRecord is the end record of content of n bytes whose SHA-256 is sum.
func endRecord(n int64, sum []byte) string { return fmt.Sprintf("END %016x %x\n", n, sum) }

// checkTrailer verifies b's end record and returns the content it covers.
// The record must be exactly the one writeTrailer would write.
func checkTrailer(b []byte) ([]byte, error) {
	if len(b) < trailerLen {
		return nil, corrupt("no end record")
	}
	body, tr := b[:len(b)-trailerLen], b[len(b)-trailerLen:]
	if !bytes.HasPrefix(tr, []byte("END ")) {
		return nil, corrupt("no end record")
	}
	sum := sha256.Sum256(body)
	want := endRecord(int64(len(body)), sum[:])
	if string(tr) != want {
		return nil, corrupt("end record does not match the content")
	}
	return body, nil
}

// writeEntry writes a complete entry file: header, message, end record.
func writeEntry(w io.Writer, m *entryMeta, data []byte) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	hw := newHashingWriter(bw)
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "%s\nid %s\ncreated %s\nexpires %s\nclass %s\nfrom %s\n",
		entryMagic, m.ID, m.Created.UTC().Format(timeLayout), m.Expires.UTC().Format(timeLayout),
		strconv.Quote(m.Class), strconv.Quote(m.From))
	for _, r := range m.Recipients {
		fmt.Fprintf(&hdr, "rcpt %s\n", strconv.Quote(r))
	}
	fmt.Fprintf(&hdr, "size %d\n\n", len(data))
	if _, err := io.WriteString(hw, hdr.String()); err != nil {
		return err
	}
	if _, err := hw.Write(data); err != nil {
		return err
	}
	if err := hw.writeTrailer(); err != nil {
		return err
	}
	return bw.Flush()
}

// lineReader walks the header lines of a spool file.
type lineReader struct{ b []byte }

func (lr *lineReader) next() (string, error) {
	i := bytes.IndexByte(lr.b, '\n')
	if i < 0 {
		return "", corrupt("unterminated header line")
	}
	line := string(lr.b[:i])
	lr.b = lr.b[i+1:]
	return line, nil
}

// field reads the next line, which must be "key value", and returns value.
func (lr *lineReader) field(key string) (string, error) {
	line, err := lr.next()
	if err != nil {
		return "", err
	}
	v, ok := strings.CutPrefix(line, key+" ")
	if !ok {
		return "", corrupt("expected %q", key)
	}
	return v, nil
}

func (lr *lineReader) timeField(key string) (time.Time, error) {
	v, err := lr.field(key)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(timeLayout, v)
	if err != nil || t.UTC().Format(timeLayout) != v {
		return time.Time{}, corrupt("bad %s time", key)
	}
	return t.UTC(), nil
}

func (lr *lineReader) quotedField(key string) (string, error) {
	v, err := lr.field(key)
	if err != nil {
		return "", err
	}
	s, err := strconv.Unquote(v)
	if err != nil || strconv.Quote(s) != v {
		return "", corrupt("bad %s value", key)
	}
	return s, nil
}

func (lr *lineReader) magic(want string) error {
	line, err := lr.next()
	if err != nil {
		return err
	}
	if line != want {
		return corrupt("not a %q file", want)
	}
	return nil
}

func (lr *lineReader) id() (string, error) {
	v, err := lr.field("id")
	if err != nil {
		return "", err
	}
	if !validID(v) {
		return "", corrupt("bad id")
	}
	return v, nil
}

// parseEntry verifies an entry file's end record and returns its envelope
// and message. The message aliases b.
func parseEntry(b []byte) (*entryMeta, []byte, error) {
	body, err := checkTrailer(b)
	if err != nil {
		return nil, nil, err
	}
	m, data, err := parseEntryHeader(body)
	if err != nil {
		return nil, nil, err
	}
	if len(data) != m.Size {
		return nil, nil, corrupt("message is %d bytes, header says %d", len(data), m.Size)
	}
	return m, data, nil
}

// parseEntryHeader parses the header of an entry file's content (what its end record covers) and
// returns it with what follows the header: the message, whose length the caller checks against
// the header's size.
func parseEntryHeader(body []byte) (*entryMeta, []byte, error) {
	lr := &lineReader{b: body}
	if err := lr.magic(entryMagic); err != nil {
		return nil, nil, err
	}
	m := &entryMeta{}
	var err error
	if m.ID, err = lr.id(); err != nil {
		return nil, nil, err
	}
	if m.Created, err = lr.timeField("created"); err != nil {
		return nil, nil, err
	}
	if m.Expires, err = lr.timeField("expires"); err != nil {
		return nil, nil, err
	}
	if m.Class, err = lr.quotedField("class"); err != nil {
		return nil, nil, err
	}
	if err := validClass(m.Class); err != nil {
		return nil, nil, corrupt("bad class")
	}
	if m.From, err = lr.quotedField("from"); err != nil {
		return nil, nil, err
	}
	if m.From != "" {
		if err := validAddress(m.From); err != nil {
			return nil, nil, corrupt("bad sender")
		}
	}
	for {
		if bytes.HasPrefix(lr.b, []byte("size ")) {
			break
		}
		r, err := lr.quotedField("rcpt")
		if err != nil {
			return nil, nil, err
		}
		if err := validAddress(r); err != nil {
			return nil, nil, corrupt("bad recipient")
		}
		if len(m.Recipients) == maxRecipients {
			return nil, nil, corrupt("too many recipients")
		}
		m.Recipients = append(m.Recipients, r)
	}
	if len(m.Recipients) == 0 {
		return nil, nil, corrupt("no recipients")
	}
	v, err := lr.field("size")
	if err != nil {
		return nil, nil, err
	}
	size, err := strconv.Atoi(v)
	if err != nil || size < 0 || strconv.Itoa(size) != v {
		return nil, nil, corrupt("bad size")
	}
	if blank, err := lr.next(); err != nil || blank != "" {
		return nil, nil, corrupt("no blank line after header")
	}
	m.Size = size
	return m, lr.b, nil
}

// writeState writes a complete state file.
func writeState(w io.Writer, st *entryState) error {
	hw := newHashingWriter(w)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nid %s\nnext %s\n", stateMagic, st.ID, st.Next.UTC().Format(timeLayout))
	for i, r := range st.Rcpts {
		notified := 0
		if r.Notified {
			notified = 1
		}
		temp, code, enh, msg := 0, 0, "-", ""
		if r.Last != nil {
			if r.Last.Temporary {
				temp = 1
			}
			code, enh, msg = r.Last.Code, r.Last.Enhanced, r.Last.Message
		}
		fmt.Fprintf(&b, "rcpt %d %s %d %d %d %d %s %s\n",
			i, r.Status, r.Attempts, notified, temp, code, enh, strconv.Quote(msg))
	}
	if _, err := io.WriteString(hw, b.String()); err != nil {
		return err
	}
	return hw.writeTrailer()
}

// parseState verifies a state file's end record and returns its content.
func parseState(b []byte) (*entryState, error) {
	body, err := checkTrailer(b)
	if err != nil {
		return nil, err
	}
	lr := &lineReader{b: body}
	if err := lr.magic(stateMagic); err != nil {
		return nil, err
	}
	st := &entryState{}
	if st.ID, err = lr.id(); err != nil {
		return nil, err
	}
	if st.Next, err = lr.timeField("next"); err != nil {
		return nil, err
	}
	for len(lr.b) > 0 {
		v, err := lr.field("rcpt")
		if err != nil {
			return nil, err
		}
		if len(st.Rcpts) == maxRecipients {
			return nil, corrupt("too many recipients")
		}
		r, err := parseRcptState(v, len(st.Rcpts))
		if err != nil {
			return nil, err
		}
		st.Rcpts = append(st.Rcpts, r)
	}
	if len(st.Rcpts) == 0 {
		return nil, corrupt("no recipients")
	}
	return st, nil
}

func parseRcptState(v string, index int) (rcptState, error) {
	f := strings.SplitN(v, " ", 8)
	if len(f) != 8 {
		return rcptState{}, corrupt("short recipient line")
	}
	var r rcptState
	if f[0] != strconv.Itoa(index) {
		return r, corrupt("recipient out of order")
	}
	switch f[1] {
	case statusPending, statusDelivered, statusFailed:
		r.Status = f[1]
	default:
		return r, corrupt("bad recipient status")
	}
	var err error
	if r.Attempts, err = strconv.Atoi(f[2]); err != nil || r.Attempts < 0 || strconv.Itoa(r.Attempts) != f[2] {
		return r, corrupt("bad attempt count")
	}
	notified, ok1 := parseFlag(f[3])
	temp, ok2 := parseFlag(f[4])
	code, err := strconv.Atoi(f[5])
	if !ok1 || !ok2 || err != nil || code < 0 || code > 999 || strconv.Itoa(code) != f[5] {
		return r, corrupt("bad recipient flags")
	}
	msg, err := strconv.Unquote(f[7])
	if err != nil || strconv.Quote(msg) != f[7] {
		return r, corrupt("bad error message")
	}
	r.Notified = notified
	if f[6] == "-" {
		if temp || code != 0 || msg != "" {
			return r, corrupt("error fields without an error")
		}
		return r, nil
	}
	if !validEnhanced(f[6]) {
		return r, corrupt("bad enhanced status code")
	}
	r.Last = &DeliveryError{Temporary: temp, Code: code, Enhanced: f[6], Message: msg}
	return r, nil
}

func parseFlag(s string) (bool, bool) {
	switch s {
	case "0":
		return false, true
	case "1":
		return true, true
	}
	return false, false
}

// validEnhanced reports whether s is an RFC 3463 status code: class.subject.detail.
func validEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}
