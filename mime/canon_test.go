package mime

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// canonical runs the canonicaliser over a whole message's content entity and returns the bytes that
// would be signed.
func canonical(t testing.TB, msg string) ([]byte, error) {
	t.Helper()
	h, body, err := SplitEntity(ToCRLF([]byte(msg)))
	if err != nil {
		return nil, err
	}
	h = h.Without(func(n string) bool { return !IsContentField(n) })
	h, body, err = canonicalBody(h, body, 0)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	h.WriteTo(&b)
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes(), nil
}

func TestCanonicalization(t *testing.T) {
	long := strings.Repeat("x", 2000)
	tests := []struct {
		name     string
		msg      string
		contains []string // substrings the signed bytes must contain
		absent   []string // and must not
	}{
		{"BareLFBecomesCRLF", "Content-Type: text/plain\n\nline one\nline two\n",
			[]string{"line one\r\nline two\r\n"}, nil},
		{"BareCRBecomesCRLF", "Content-Type: text/plain\r\rone\rtwo\r",
			[]string{"one\r\ntwo\r\n"}, nil},
		{"SafeSevenBitUnchanged", "Content-Type: text/plain; charset=us-ascii\r\n\r\nHello.\r\n",
			[]string{"Content-Type: text/plain; charset=us-ascii\r\n\r\nHello.\r\n"}, []string{"Content-Transfer-Encoding"}},
		{"EightBitTextToQuotedPrintable", "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n1 234,56 €\r\n",
			[]string{"Content-Transfer-Encoding: quoted-printable", "1 234,56 =E2=82=AC"}, []string{"8bit"}},
		{"EightBitBinaryToBase64", "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\x01\xff\xfe\r\n",
			[]string{"Content-Transfer-Encoding: base64", "Af/+DQo="}, nil},
		{"LongLineIsWrapped", "Content-Type: text/plain\r\n\r\n" + long + "\r\n",
			[]string{"Content-Transfer-Encoding: quoted-printable", "=\r\n"}, []string{long}},
		{"TrailingWhitespaceIsProtected", "Content-Type: text/plain\r\n\r\nsigned line \r\n",
			[]string{"signed line=20"}, nil},
		{"FromLineIsEscaped", "Content-Type: text/plain\r\n\r\nFrom here on\r\n",
			[]string{"=46rom here on"}, []string{"\nFrom here"}},
		{"LongBase64LineIsRewrapped", "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("QUJD", 300) + "\r\n",
			[]string{strings.Repeat("QUJD", 19) + "\r\n"}, []string{strings.Repeat("QUJD", 300)}},
		{"MultipartPartsReencoded", "Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n--b\r\nContent-Type: text/plain\r\n\r\nsafe\r\n--b--\r\nepilogue\r\n",
			[]string{"preamble\r\n--b\r\n", "Gr=C3=BC=C3=9Fe\r\n--b\r\nContent-Type: text/plain\r\n\r\nsafe\r\n--b--\r\n"}, []string{"epilogue"}},
		{"AttachedMessageReencoded", "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÄ\r\n",
			[]string{"Subject: inner\r\n", "=C3=84"}, nil},
		{"EightBitFileNameIsRFC2231Encoded", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf; name=\"Kontoauszug-März.pdf\"\r\nContent-Description: Übersicht\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--b--\r\n",
			[]string{"name*=utf-8''Kontoauszug-M%C3%A4rz.pdf", "Content-Description: =?utf-8?q?=C3=9Cbersicht?="}, nil},
		{"EightBitTopLevelContentHeader", "Content-Type: text/plain; charset=utf-8; format=flowed; x-note=\"ä\"\r\n\r\nx\r\n",
			[]string{"x-note*=utf-8''%C3%A4"}, nil},
		{"MissingContentTypeDefaultsToText", "\r\nTschüss\r\n",
			[]string{"Content-Transfer-Encoding: quoted-printable"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canonical(t, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !SignatureSafe(got) {
				t.Errorf("output is not signature-safe:\n%q", got)
			}
			for _, s := range tt.contains {
				if !bytes.Contains(got, []byte(s)) {
					t.Errorf("output lacks %q:\n%q", s, got)
				}
			}
			for _, s := range tt.absent {
				if bytes.Contains(got, []byte(s)) {
					t.Errorf("output still has %q:\n%q", s, got)
				}
			}
			again, err := canonical(t, string(got))
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("canonical form is not stable under a second pass (%v):\n%q\n%q", err, got, again)
			}
		})
	}
}

func TestCanonicalizationRejectsMalformed(t *testing.T) {
	tests := []struct{ name, msg string }{
		{"UnterminatedMultipart", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n"},
		{"MultipartWithoutBoundary", "Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"},
		{"BadContentType", "Content-Type: text/plain; charset=\"unterminated\r\n\r\nx\r\n"},
		{"HeaderWithoutColon", "Content-Type: text/plain\r\nnot a Header\r\n\r\nx\r\n"},
		{"EightBitIDInPart", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-ID: <grüße@x>\r\n\r\nx\r\n--b--\r\n"},
		{"NestingTooDeep", strings.Repeat("Content-Type: message/rfc822\r\n\r\n", maxDepth+2) + "x\r\n"},
		{"EightBitInUnknownEncoding", "Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n\xff\r\n"},
		{"BadBase64", "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("!", 1200) + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := canonical(t, tt.msg); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

// TestCanonicalMultipartSharesCanonicalInput: a multipart already canonical (a statement with a
// base64 attachment) comes back as the input's own bytes, not a copy, its epilogue cut off; one that
// needs any change comes back rebuilt, with the input left as it was.
func TestCanonicalMultipartSharesCanonicalInput(t *testing.T) {
	h := Header{NewField("Content-Type", `multipart/mixed; boundary="b1"`)}
	canonical := "--b1\r\nContent-Type: text/plain\r\n\r\nYour statement.\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
	for _, tc := range []struct {
		name, body, want string
		shared           bool
	}{
		{"canonical", canonical, canonical, true},
		{"epilogue", canonical + "an epilogue\r\n", canonical, true},
		{"preamble", "A preamble.\r\n" + canonical, "A preamble.\r\n" + canonical, true},
		{"delimiter with trailing space", strings.Replace(canonical, "--b1\r\nContent-Type: application", "--b1  \r\nContent-Type: application", 1), canonical, false},
		{"8-bit part", strings.Replace(canonical, "Your statement.", "Gr\xc3\xbc\xc3\x9fe", 1),
			strings.Replace(canonical, "Content-Type: text/plain\r\n\r\nYour statement.", "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			_, out, err := Canonical(h, body)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Fatalf("canonical body:\n%q\nwant\n%q", out, tc.want)
			}
			if shared := &out[0] == &body[0]; shared != tc.shared {
				t.Errorf("the output shares the input's memory: %v; want %v", shared, tc.shared)
			}
			if cap(out) != len(out) && &out[0] == &body[0] {
				t.Errorf("a shared output has room past its end (cap %d, len %d): an append would write into the input", cap(out), len(out))
			}
			if string(body) != tc.body {
				t.Errorf("the input was changed")
			}
		})
	}
}

// TestBase64Appender: bytes written in pieces of any size come out as AppendBase64 of them joined.
func TestBase64Appender(t *testing.T) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, n := range []int{0, 1, 56, 57, 58, 114, 1000} {
		for _, piece := range []int{1, 2, 56, 57, 58, 200, 1000} {
			e := Base64Appender{Dst: []byte("head:")}
			for b := data[:n]; len(b) > 0; {
				k := min(piece, len(b))
				e.Write(b[:k])
				b = b[k:]
			}
			if got, want := e.Close(), AppendBase64([]byte("head:"), data[:n]); !bytes.Equal(got, want) {
				t.Errorf("%d bytes in pieces of %d:\n%q\nwant\n%q", n, piece, got, want)
			}
		}
	}
}

// TestWordScansAsByteLoops: isCRLF and sevenBitNoNUL, which scan a word at a time, say what a
// byte-by-byte loop says, for every byte value at every place of short inputs and for CRs and
// LFs at and around word edges.
func TestWordScansAsByteLoops(t *testing.T) {
	crlf := func(b []byte) bool {
		for i, c := range b {
			if (c == '\n' && (i == 0 || b[i-1] != '\r')) || (c == '\r' && (i+1 == len(b) || b[i+1] != '\n')) {
				return false
			}
		}
		return true
	}
	clean := func(b []byte) bool {
		for _, c := range b {
			if c == 0 || c >= 0x80 {
				return false
			}
		}
		return true
	}
	check := func(b []byte) {
		t.Helper()
		if got, want := isCRLF(b), crlf(b); got != want {
			t.Fatalf("isCRLF(%q) = %v; want %v", b, got, want)
		}
		if got, want := sevenBitNoNUL(b), clean(b); got != want {
			t.Fatalf("sevenBitNoNUL(%q) = %v; want %v", b, got, want)
		}
	}
	for n := 0; n <= 19; n++ {
		for at := 0; at < n; at++ {
			for c := range 256 {
				b := bytes.Repeat([]byte("a"), n)
				b[at] = byte(c)
				check(b)
			}
			for _, s := range []string{"\r\n", "\n\r", "\r\r\n", "\r\n\n"} {
				b := bytes.Repeat([]byte("x"), n)
				check(append(b[:at:at], append([]byte(s), b[at:]...)...))
			}
		}
	}
	check([]byte("line\r\nline\r\n\r\n"))
	check([]byte("\r"))
}
