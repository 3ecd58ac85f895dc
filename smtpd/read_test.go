package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

// TestReadMessage: whatever its size against the first buffer and the chunks (below, at and past
// each edge), and however the reader splits it, a message comes back whole, with a CRLF added when
// it lacks one; one byte over the limit is refused, and the rest of it is drained.
func TestReadMessage(t *testing.T) {
	const limit = 3*readChunk + 100
	for _, size := range []int{0, 1, 4094, 4095, 4096, 4097, readChunk, readChunk + 4098, 2*readChunk + 4098, limit} {
		for _, crlf := range []bool{true, false} {
			msg := bytes.Repeat([]byte("0123456789abcde\r\n"), size/17+1)[:size]
			if crlf && size >= 2 {
				msg[size-2], msg[size-1] = '\r', '\n'
			}
			want := msg
			if size > 0 && !bytes.HasSuffix(msg, []byte("\r\n")) && msg[size-1] != '\r' {
				want = append(bytes.Clone(msg), '\r', '\n')
			}
			for name, r := range map[string]func() io.Reader{
				"whole":    func() io.Reader { return bytes.NewReader(msg) },
				"halves":   func() io.Reader { return iotest.HalfReader(bytes.NewReader(msg)) },
				"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(msg)) },
			} {
				t.Run(fmt.Sprintf("%d/crlf=%v/%s", size, crlf, name), func(t *testing.T) {
					got, err := readMessage(r(), limit, 0)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("got %d bytes; want %d", len(got), len(want))
					}
				})
			}
		}
	}
	over := bytes.NewReader(make([]byte, limit+1+5000))
	if _, err := readMessage(over, limit, 0); !errors.Is(err, errMessageTooBig) {
		t.Fatalf("a message one byte over the limit: %v", err)
	}
	if over.Len() != 0 {
		t.Errorf("%d bytes of the message over the limit were not drained", over.Len())
	}
	if _, err := readMessage(iotest.ErrReader(io.ErrUnexpectedEOF), limit, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a reader's error: %v", err)
	}
}

// TestReadAll: what ReadAll returns is the input exactly (no CRLF added), whatever its size
// against the first buffer and the chunks; past the limit it is ErrTooLarge, and the input is not
// read to its end (a pipe into sealpost protect need not be drained).
func TestReadAll(t *testing.T) {
	const limit = 2*readChunk + 10
	for _, size := range []int{0, 1, 4095, 4096, 4097, readChunk + 4096, limit} {
		msg := bytes.Repeat([]byte("no line end here "), size/17+1)[:size]
		got, err := ReadAll(iotest.HalfReader(bytes.NewReader(msg)), limit)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes: got %d bytes, %v", size, len(got), err)
		}
	}
	over := bytes.NewReader(make([]byte, limit+1+5*readChunk))
	if _, err := ReadAll(over, limit); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over the limit: %v", err)
	}
	if over.Len() == 0 {
		t.Error("the input over the limit was read to its end")
	}
}
