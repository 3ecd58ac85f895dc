package mime

import (
	"bytes"
	"encoding/base64"
	stdmime "mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCanonicalize: no input panics, and whatever is accepted comes out signature-safe and stable
// under a second pass (what is signed is what is sent). Seeds: a few shapes, plus any sample or
// hostile message kept under testdata/messages.
func FuzzCanonicalize(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ny\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n"))
	f.Add([]byte("\r\n"))
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "messages", "*.eml"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, err := canonical(t, string(msg))
		if err != nil {
			return
		}
		if !SignatureSafe(out) {
			t.Fatalf("accepted output is not signature-safe: %q", out)
		}
		again, err := canonical(t, string(out))
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not stable: %v\n%q\n%q", err, out, again)
		}
	})
}

// FuzzPrepare runs the whole preparation, with and without header protection and encryption: what
// is accepted has a signature-safe payload and a 7-bit outer header, and an encrypted protected
// message shows outside only the allow-listed fields.
func FuzzPrepare(f *testing.F) {
	f.Add([]byte("From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n"), true, true)
	f.Add([]byte("From: \xc3\xa4 <a@b.example>\r\nSubject: \xc3\xa4\r\n\r\nx"), true, false)
	f.Add([]byte(otpWithEverywhere), true, true)
	f.Add([]byte(eightBitHeaders), false, false)
	f.Add([]byte("From: a@b.example\r\nTo: A <x@y.example>\r\nSubject: s\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"+
		"Content-Type: text/plain\r\n\r\nt\r\n--b\r\nContent-Type: text/html\r\n\r\n<body>h</body>\r\n--b--\r\n"), true, true)
	f.Add([]byte("From: a@b.example\r\nSubject: s\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n"), true, true)
	f.Fuzz(func(t *testing.T, msg []byte, hp, encrypted bool) {
		p, err := Prepare(msg, Options{HeaderProtection: hp, Encrypted: encrypted})
		if err != nil {
			return
		}
		c := p.Content()
		if !SignatureSafe(c) {
			t.Fatalf("payload is not signature-safe: %q", c)
		}
		var outer bytes.Buffer
		p.Outer.WriteTo(&outer)
		if !SignatureSafe(outer.Bytes()) {
			t.Fatalf("outer header is not 7-bit and safe: %q", outer.Bytes())
		}
		if hp && encrypted {
			for _, f := range p.Outer {
				if _, ok := exposedField(f); !ok && !hopField(f.Name) {
					t.Fatalf("outer header shows %q", f.Raw)
				}
			}
		}
		if _, _, err := SplitEntity(c); err != nil {
			t.Fatalf("payload does not parse: %v", err)
		}
	})
}

// FuzzSevenBitField: a field cleanHeader accepts is 7-bit with lines of at most 998 octets; an 8-bit
// one, re-encoded, says the same: unstructured text decodes to what was given, and address fields
// keep their addresses and display names.
func FuzzSevenBitField(f *testing.F) {
	for _, s := range []string{"Subject: f\xc3\xbcr", "To: \"M\xc3\xbcller, J.\" <j@example.com>, a@b.example (\xc3\x84)",
		"Keywords: a, \"b\xc3\xa4, c\"", "To: Empf\xc3\xa4nger:;", "Content-Type: text/plain; name=\"M\xc3\xa4rz\"", "X-Y: \xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, field string) {
		h, _, err := SplitEntity(ToCRLF([]byte(field + "\r\n")))
		if err != nil || len(h) == 0 {
			return
		}
		in := h[0]
		clean, err := cleanHeader(h[:1])
		if err != nil {
			return
		}
		out := clean[0]
		for _, l := range bytes.Split(out.Raw[:len(out.Raw)-2], []byte("\r\n")) {
			if len(l) > maxLine || !IsASCII(l) {
				t.Fatalf("bad line %q in %q", l, out.Raw)
			}
		}
		if IsASCII(in.Raw) {
			return
		}
		name := strings.ToLower(in.Name)
		switch {
		case addressFields[name]:
			want, _ := mail.ParseAddressList(in.Value())
			have, err := mail.ParseAddressList(out.Value())
			if err != nil || len(have) != len(want) {
				t.Fatalf("%q became %q (%v)", in.Raw, out.Raw, err)
			}
			for i := range want {
				if have[i].Address != want[i].Address || have[i].Name != want[i].Name {
					t.Fatalf("%q became %q", in.Raw, out.Raw)
				}
			}
		case name == "keywords" || name == "content-type" || name == "content-disposition":
		default:
			if d, err := new(stdmime.WordDecoder).DecodeHeader(out.Value()); err != nil || d != in.Value() {
				t.Fatalf("%q decodes to %q (%v)", in.Raw, d, err)
			}
		}
	})
}

// FuzzDecodeBase64: DecodeBase64 (which lets encoding/base64 skip line breaks itself) decodes
// exactly what the body gives once every CR, LF, space and tab is removed, and fails where that does.
func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"QUJD\r\nREVG\r\n", "QU JD\tRA==", "QUJ\nD", "QQ==\r\nQQ==", "Q\rU\nJ\r\nD", "!!!!", "QUJDRA=\r\n="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeBase64(b)
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, b)
		want, wantErr := base64.StdEncoding.DecodeString(string(clean))
		if (err == nil) != (wantErr == nil) || (err == nil && !bytes.Equal(got, want)) {
			t.Fatalf("DecodeBase64(%q) = %x, %v; want %x, %v", b, got, err, want, wantErr)
		}
	})
}
