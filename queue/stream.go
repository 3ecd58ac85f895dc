package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// StreamingHop is a NextHop that can also read a message from a reader: the spool hands it a
// large message (at least StreamMin bytes) straight from its spool file, so that delivering a
// 25 MB statement costs the process a 64 KB buffer, not 25 MB.
type StreamingHop interface {
	ReplyingHop
	// DeliverStream is DeliverReply with the message's size bytes read from data. When a read
	// fails, the message must not be accepted (an SMTP DATA is never ended, a Maildir file never
	// moved into new/) and every recipient it was for fails temporarily.
	DeliverStream(ctx context.Context, from string, to []string, data io.Reader, size int64) ([]error, Accepted)
}

// StreamMin is the size from which a StreamingHop is handed the message as a stream.
const StreamMin = 1 << 20

// streamBuffer is the buffer a large entry file is read through to check it.
const streamBuffer = 64 << 10

// spoolData is a queued message as an attempt holds it: in memory, or (a large message for a
// StreamingHop) as its checked spool file, read again as it is delivered.
type spoolData struct {
	mem []byte // the message, when it was read into memory

	f      *os.File // else the entry file,
	header []byte   // the entry's header (what precedes the message),
	size   int64    // the message's size,
	sum    [32]byte // the end record's SHA-256 of header and message,
	first  []byte   // the message's first bytes, for a DSN's copy of its header
	// changed is set when the file no longer matched its end record as it was delivered.
	changed error
}

// openData reads and checks the entry file of meta: into memory, unless the message is large and
// the next hop streams, when the whole file is checked against its end record (read through a
// small buffer) and kept open for the delivery to read again.
func (s *Spool) openData(meta *entryMeta) (*spoolData, error) {
	if _, ok := s.next.(StreamingHop); !ok || meta.Size < StreamMin {
		data, err := s.readData(meta.ID)
		if err != nil {
			return nil, err
		}
		return &spoolData{mem: data}, nil
	}
	path := filepath.Join(s.qDir, meta.ID+".msg")
	if err := checkSpoolFile(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, corrupt("%s", describePathError(err))
	}
	d, err := checkEntryFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// checkEntryFile checks f against its end record, reading it once, and parses its header.
func checkEntryFile(f *os.File) (*spoolData, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, corrupt("%s", describePathError(err))
	}
	body := fi.Size() - trailerLen
	if body < 0 {
		return nil, corrupt("no end record")
	}
	tr := make([]byte, trailerLen)
	if _, err := f.ReadAt(tr, body); err != nil {
		return nil, corrupt("end record: %s", describePathError(err))
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, body), make([]byte, streamBuffer)); err != nil {
		return nil, corrupt("%s", describePathError(err))
	}
	d := &spoolData{f: f}
	h.Sum(d.sum[:0])
	if string(tr) != endRecord(body, d.sum[:]) {
		return nil, corrupt("end record does not match the content")
	}
	// The header ends at the first blank line, "\n\n" (its fields are quoted: none holds a line
	// break). It is read in growing steps: a few recipients need a few hundred bytes.
	var head []byte
	for n := int64(4096); ; n *= 2 {
		n = min(n, body, maxEntryHeader)
		head = make([]byte, n)
		if _, err := f.ReadAt(head, 0); err != nil {
			return nil, corrupt("%s", describePathError(err))
		}
		if end := bytes.Index(head, []byte("\n\n")); end >= 0 {
			head = head[:end+2]
			break
		}
		if n == body || n == maxEntryHeader {
			return nil, corrupt("no blank line after header")
		}
	}
	d.header = head
	m, rest, err := parseEntryHeader(d.header)
	if err != nil {
		return nil, err
	}
	if d.size = body - int64(len(d.header)); len(rest) != 0 || int64(m.Size) != d.size {
		return nil, corrupt("message is %d bytes, header says %d", d.size, m.Size)
	}
	d.first = make([]byte, min(d.size, maxDSNHeader+4))
	if _, err := f.ReadAt(d.first, int64(len(d.header))); err != nil {
		return nil, corrupt("%s", describePathError(err))
	}
	return d, nil
}

// maxEntryHeader bounds an entry's header as checkEntryFile reads it: maxRecipients quoted
// addresses of up to 256 bytes, and the rest.
const maxEntryHeader int64 = maxRecipients*(int64(len("rcpt \"\"\n"))+256) + 4096

// streaming reports whether d is delivered as a stream.
func (d *spoolData) streaming() bool { return d.f != nil }

// dsnSource is what a DSN takes the original header from: the message, or its first bytes.
func (d *spoolData) dsnSource() []byte {
	if d.streaming() {
		return d.first
	}
	return d.mem
}

// reader reads the message from the entry file, hashing the header and the message again as it
// goes: at the end, a file that no longer matches its end record is an error, not an end, so
// that the hop does not accept what was changed after the check.
func (d *spoolData) reader() io.Reader {
	h := sha256.New()
	h.Write(d.header)
	return &checkedReader{r: io.NewSectionReader(d.f, int64(len(d.header)), d.size), h: h, d: d}
}

// Close closes the entry file, if it was kept open.
func (d *spoolData) Close() {
	if d.f != nil {
		d.f.Close()
	}
}

type checkedReader struct {
	r *io.SectionReader
	h hash.Hash
	d *spoolData
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		var sum [32]byte
		if c.h.Sum(sum[:0]); sum != c.d.sum {
			c.d.changed = corrupt("the message changed on disk while it was delivered")
			return n, c.d.changed
		}
	}
	return n, err
}
