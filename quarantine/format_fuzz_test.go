package quarantine

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// FuzzParse: the quarantine file format. Whatever the bytes (a damaged or planted file),
// Parse never panics; what it accepts writes back to the same file, and a written envelope
// parses back to what was written.
func FuzzParse(f *testing.F) {
	f.Add([]byte(encode("alice@example.com", []string{"support@bank.example"}, []byte("From: a@example.com\r\n\r\nhi\r\n"))))
	f.Add([]byte(encode("", []string{"support@bank.example", "desk@bank.example"}, nil)))
	f.Add([]byte(magic + "\r\n\r\n"))
	f.Add([]byte(magic + "a@example.com\r\n"))
	f.Add([]byte("sealpost-held-v0\r\nx\r\ny\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		from, to, msg, err := Parse(b)
		if err != nil {
			return
		}
		if len(to) == 0 || strings.Contains(from, "\r\n") {
			t.Fatalf("accepted an envelope without recipients or with a broken sender: %q %q", from, to)
		}
		from2, to2, msg2, err := Parse(encode(from, to, msg))
		if err != nil || from2 != from || !slices.Equal(to2, to) || !bytes.Equal(msg2, msg) {
			t.Fatalf("round trip: %q %q %q, %v; want %q %q %q", from2, to2, msg2, err, from, to, msg)
		}
	})
}
