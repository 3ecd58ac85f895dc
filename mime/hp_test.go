package mime

import (
	"bytes"
	stdmime "mime"
	"strings"
	"testing"
)

// otpWithEverywhere carries the code in every place a header field can hide it: the Subject, an
// X- field, Thread-Topic, Reply-To, Keywords, Comments, display names and comments in From, To and
// Cc, an unknown field, Sender and the References tail.
const otpWithEverywhere = "From: Code 493817 <otp@bank.example>\r\n" +
	"To: Alice 493817 <alice@example.com>, carol@example.org (493817)\r\n" +
	"Cc: \"Dr. 493817\" <dr@example.net>\r\n" +
	"Subject: Your code is 493817\r\n" +
	"X-OTP: 493817\r\n" +
	"Thread-Topic: code 493817\r\n" +
	"Reply-To: Codes 493817 <noreply@bank.example>\r\n" +
	"Keywords: otp, 493817\r\n" +
	"Comments: code 493817\r\n" +
	"Sender: Sender 493817 <otp@bank.example>\r\n" +
	"X-Never-Heard-Of: 493817\r\n" +
	"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <otp-1@bank.example>\r\n" +
	"Received: from core.bank.example by relay.bank.example\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=us-ascii\r\n" +
	"\r\n" +
	"Your one-time code is 493817.\r\n"

// outerAllowed is every field the outer header of an encrypted protected message may hold (the
// protector adds MIME-Version and Content-* itself, after Prepare).
var outerAllowed = map[string]bool{"from": true, "to": true, "cc": true, "date": true, "message-id": true, "subject": true, "received": true}

// TestHeaderProtectionOuterHeaderIsAnAllowList (issue 11 item 3): with hp="cipher" the outer header
// holds From/To/Cc as bare addresses, Date, Message-ID, Subject "[...]" and trace fields; every
// other field, known or not, is only inside, and the code is nowhere outside. Before, only Subject
// was obscured (and Keywords, Comments removed): X-OTP, Thread-Topic, Reply-To and display names
// left in clear.
func TestHeaderProtectionOuterHeaderIsAnAllowList(t *testing.T) {
	p, err := Prepare([]byte(otpWithEverywhere), Options{HeaderProtection: true, Encrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	var outer bytes.Buffer
	p.Outer.WriteTo(&outer)
	for _, f := range p.Outer {
		if !outerAllowed[strings.ToLower(f.Name)] {
			t.Errorf("outer header keeps %s", bytes.TrimSpace(f.Raw))
		}
	}
	if bytes.Contains(outer.Bytes(), []byte("493817")) {
		t.Errorf("the code is in the outer header:\n%s", outer.Bytes())
	}
	for _, want := range []string{"From: otp@bank.example\r\n", "To: alice@example.com, carol@example.org\r\n", "Cc: dr@example.net\r\n",
		"Subject: [...]\r\n", "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n", "Message-ID: <otp-1@bank.example>\r\n", "Received: from core.bank.example"} {
		if !bytes.Contains(outer.Bytes(), []byte(want)) {
			t.Errorf("outer header lacks %q:\n%s", want, outer.Bytes())
		}
	}
	content := p.Content()
	inner := string(content[:bytes.Index(content, []byte("\r\n\r\n"))+2])
	for _, line := range strings.SplitAfter(otpWithEverywhere[:strings.Index(otpWithEverywhere, "MIME-Version")], "\r\n") {
		if line == "" || strings.HasPrefix(line, "Received") {
			continue
		}
		if !strings.Contains(inner, line) {
			t.Errorf("inner header lacks %q", line)
		}
	}
	for _, f := range p.Outer {
		if hopField(f.Name) {
			if strings.Contains(inner, string(f.Raw)) {
				t.Errorf("hop field %s copied inside", f.Name)
			}
			continue
		}
		if !strings.Contains(inner, "HP-Outer: "+string(f.Raw)) {
			t.Errorf("no HP-Outer for %q", f.Raw)
		}
	}
	if strings.Count(inner, "HP-Outer:") != 6 {
		t.Errorf("HP-Outer must record exactly the six fields left outside:\n%s", inner)
	}
}

// TestHeaderProtectionUnparsableAddressStaysInside: an address field whose display names cannot be
// stripped is not shown outside at all (delivery follows the envelope).
func TestHeaderProtectionUnparsableAddressStaysInside(t *testing.T) {
	msg := "From: otp@bank.example\r\nTo: Alice 493817 <alice@example.com\r\nCc: undisclosed-recipients:;\r\n\r\nx\r\n"
	p, err := Prepare([]byte(msg), Options{HeaderProtection: true, Encrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Outer.Count("To") != 0 || p.Outer.Count("Cc") != 0 {
		t.Fatalf("outer keeps a To or Cc it could not reduce to addresses: %q", p.Outer)
	}
	if p.Inner.Get("To") != "Alice 493817 <alice@example.com" {
		t.Fatalf("inner To = %q", p.Inner.Get("To"))
	}
}

// TestHeaderProtectionMarkers (item 10): the payload's root carries both hp (RFC 9788) and
// protected-headers="v1" (what Thunderbird, K-9 and NeoMutt read); sign-only mail keeps its whole
// outer header and gets no legacy display.
func TestHeaderProtectionMarkers(t *testing.T) {
	for _, tt := range []struct {
		name      string
		encrypted bool
		hp        string
	}{{"Encrypted", true, "cipher"}, {"SignedOnly", false, "clear"}} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare([]byte(otpWithEverywhere), Options{HeaderProtection: true, Encrypted: tt.encrypted})
			if err != nil {
				t.Fatal(err)
			}
			mt, params, err := stdmime.ParseMediaType(p.Inner.Get("Content-Type"))
			if err != nil || mt != "text/plain" || params["hp"] != tt.hp || params["protected-headers"] != "v1" {
				t.Fatalf("root Content-Type %q (%v): want hp=%s and protected-headers=v1", p.Inner.Get("Content-Type"), err, tt.hp)
			}
			if !bytes.Contains(p.Content(), []byte(`protected-headers="v1"`)) {
				t.Error(`protected-headers is not written as "v1", the way Thunderbird writes it`)
			}
			legacy := bytes.HasPrefix(p.Body, []byte("From: Code 493817 <otp@bank.example>\r\n"))
			if legacy != tt.encrypted || (params["hp-legacy-display"] == "1") != tt.encrypted {
				t.Errorf("legacy display %v (param %q), want %v:\n%s", legacy, params["hp-legacy-display"], tt.encrypted, p.Body)
			}
			if !tt.encrypted && len(p.Outer) != 14 {
				t.Errorf("sign-only mail must keep its outer header whole, got %d fields", len(p.Outer))
			}
		})
	}
}

// TestLegacyDisplay (item 10): the user-facing fields hidden or changed outside lead each main body
// part (RFC 9788 4.5), marked hp-legacy-display="1"; attachments are left alone; where no main body
// part can hold it, a first inline part does.
func TestLegacyDisplay(t *testing.T) {
	const head = "From: Bank <otp@bank.example>\r\nTo: alice@example.com\r\nSubject: Ihr Code 493817 für heute\r\n"
	const display = "From: Bank <otp@bank.example>\r\nSubject: Ihr Code 493817 für heute\r\n"
	tests := []struct {
		name  string
		msg   string
		check func(t *testing.T, parts []entity)
	}{
		{"PlainText", head + "\r\nYour code.\r\n", func(t *testing.T, e []entity) {
			wantDisplay(t, e[0], "text/plain", display+"\r\nYour code.\r\n")
			if e[0].params["charset"] != "utf-8" {
				t.Errorf("charset %q: the display is UTF-8", e[0].params["charset"])
			}
		}},
		{"Base64Text", head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nWW91ciBjb2RlLgo=\r\n",
			func(t *testing.T, e []entity) { wantDisplay(t, e[0], "text/plain", display+"\r\nYour code.\r\n") }},
		{"AlternativeBothParts", head + "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\ntext\r\n--b\r\n" +
			"Content-Type: text/html; charset=iso-8859-1\r\n\r\n<html><BODY class=x>\r\n<p>html</p></body></html>\r\n--b--\r\n", func(t *testing.T, e []entity) {
			wantDisplay(t, e[1], "text/plain", display+"\r\ntext")
			wantDisplay(t, e[2], "text/html", "<html><BODY class=x>\r\n<div class=\"header-protection-legacy-display\">\r\n"+
				"<pre>From: Bank &lt;otp@bank.example&gt;\r\nSubject: Ihr Code 493817 f&#xFC;r heute</pre>\r\n</div>\r\n<p>html</p></body></html>")
			if e[2].params["charset"] != "iso-8859-1" {
				t.Error("the HTML display is ASCII and must not change the part's charset")
			}
		}},
		{"MixedOnlyTheFirstPart", head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\ntext\r\n--b\r\n" +
			"Content-Type: text/plain; name=notes.txt\r\nContent-Disposition: attachment\r\n\r\nnotes\r\n--b--\r\n", func(t *testing.T, e []entity) {
			wantDisplay(t, e[1], "text/plain", display+"\r\ntext")
			if string(e[2].body) != "notes" || e[2].params["hp-legacy-display"] != "" {
				t.Errorf("the attachment was changed: %q %v", e[2].body, e[2].params)
			}
		}},
		{"HTMLWithoutBody", head + "Content-Type: text/html\r\n\r\n<p>code</p>\r\n", func(t *testing.T, e []entity) {
			if !bytes.HasPrefix(e[0].body, []byte(`<div class="header-protection-legacy-display">`)) {
				t.Errorf("display not at the start:\n%s", e[0].body)
			}
		}},
		{"AttachmentOnlyIsWrapped", head + "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\n", wantWrapped},
		{"LatinOneTextIsWrapped", head + "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xfc\xdfe\r\n", wantWrapped},
		{"UTF16TextIsWrapped", head + "Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n//5hAA==\r\n", wantWrapped},
		{"AttachmentFirstIsWrapped", head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment\r\n\r\nx\r\n--b--\r\n", wantWrapped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare([]byte(tt.msg), Options{HeaderProtection: true, Encrypted: true})
			if err != nil {
				t.Fatal(err)
			}
			c := p.Content()
			if !SignatureSafe(c) {
				t.Fatalf("payload not signature-safe:\n%s", c)
			}
			tt.check(t, entities(t, c, 0))
		})
	}
	t.Run("NothingHiddenNothingShown", func(t *testing.T) {
		p, err := Prepare([]byte("From: otp@bank.example\r\nTo: alice@example.com\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nx\r\n"), Options{HeaderProtection: true, Encrypted: true})
		if err != nil {
			t.Fatal(err)
		}
		if string(p.Body) != "x\r\n" || strings.Contains(p.Inner.Get("Content-Type"), "legacy") {
			t.Fatalf("a legacy display with nothing to show: %q %q", p.Inner.Get("Content-Type"), p.Body)
		}
	})
}

func wantWrapped(t *testing.T, e []entity) {
	t.Helper()
	if e[0].mt != "multipart/mixed" || len(e) < 3 || e[1].mt != "text/plain" || e[1].params["hp-legacy-display"] != "1" ||
		e[1].h.Get("Content-Disposition") != "inline" || !strings.Contains(string(e[1].decoded(t)), "Subject: Ihr Code 493817 für heute\r\n") {
		t.Fatalf("want the payload wrapped after an inline legacy display part, got %s with first part %s %v", e[0].mt, e[1].mt, e[1].params)
	}
}

func wantDisplay(t *testing.T, e entity, mt, text string) {
	t.Helper()
	if e.mt != mt || e.params["hp-legacy-display"] != "1" {
		t.Errorf("%s part not marked hp-legacy-display=1: %s %v", mt, e.mt, e.params)
	}
	if got := string(e.decoded(t)); got != text {
		t.Errorf("%s part:\n got %q\nwant %q", mt, got, text)
	}
}

// entity is one MIME entity of a payload, in document order.
type entity struct {
	h      Header
	mt     string
	params map[string]string
	body   []byte
}

func (e entity) decoded(t *testing.T) []byte {
	t.Helper()
	d, ok := decodedBody(e.h, e.body)
	if !ok {
		t.Fatalf("cannot decode %s body", e.mt)
	}
	return d
}

func entities(t *testing.T, b []byte, depth int) []entity {
	t.Helper()
	h, body, err := SplitEntity(b)
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := MediaType(h)
	if err != nil {
		t.Fatal(err)
	}
	out := []entity{{h, mt, params, body}}
	if strings.HasPrefix(mt, "multipart/") {
		_, parts, err := MultipartParts(body, params["boundary"])
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			out = append(out, entities(t, p, depth+1)...)
		}
	}
	return out
}

// TestHeaderProtectionKeepsAutoSubmittedKeyword: Auto-Submitted stays outside for responders (RFC
// 3834), but only its keyword; an unknown value or parameters stay inside.
func TestHeaderProtectionKeepsAutoSubmittedKeyword(t *testing.T) {
	for value, want := range map[string]string{
		"auto-generated":                   "Auto-Submitted: auto-generated\r\n",
		"Auto-Generated; owner=493817":     "Auto-Submitted: auto-generated\r\n",
		"code-493817":                      "",
		"auto-notified (your code 493817)": "",
	} {
		msg := "From: otp@bank.example\r\nTo: alice@example.com\r\nAuto-Submitted: " + value + "\r\nSubject: x\r\n\r\nbody\r\n"
		p, err := Prepare([]byte(msg), Options{HeaderProtection: true, Encrypted: true})
		if err != nil {
			t.Fatal(err)
		}
		var outer bytes.Buffer
		p.Outer.WriteTo(&outer)
		got := ""
		if i := bytes.Index(outer.Bytes(), []byte("Auto-Submitted:")); i >= 0 {
			got = string(outer.Bytes()[i:])
			got = got[:strings.Index(got, "\r\n")+2]
		}
		if got != want {
			t.Errorf("Auto-Submitted %q: outer %q, want %q", value, got, want)
		}
		if !bytes.Contains(p.Content(), []byte("Auto-Submitted: "+value)) {
			t.Errorf("Auto-Submitted %q is not inside", value)
		}
	}
}

// TestLegacyDisplayInHTMLWithInvalidUTF8: an HTML part with an invalid byte before its <body>
// made the display's insertion point an index into a lower-cased copy of another length, and
// Prepare panicked (the fuzzer's FuzzPrepare/9ca8db0e196d5681). The display goes in after <body>.
func TestLegacyDisplayInHTMLWithInvalidUTF8(t *testing.T) {
	doc := []byte("<html>\x80\x80<BODY>\r\nHello\r\n</body>")
	out := insertIntoHTMLBody(doc, []byte("<p>display</p>"))
	if want := "<html>\x80\x80<BODY>\r\n<p>display</p>Hello\r\n</body>"; string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}
