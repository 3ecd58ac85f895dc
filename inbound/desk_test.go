package inbound

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	stdmime "mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/store"
)

var updateDesk = flag.Bool("update-desk", false, "rewrite the desk message golden files in testdata/desk")

// taggedConfig is an Config with the default Subject tags (DefaultConfig's).
func taggedConfig() Config {
	return Config{SubjectTagVerified: DefaultSubjectTagVerified, SubjectTagUnverified: DefaultSubjectTagUnverified}
}

// signProtected signs msg as id with header protection: the header travels inside the signature.
func signProtected(t *testing.T, id *keys.Identity, msg string) []byte {
	t.Helper()
	p, err := smime.NewProtector(id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.SignMessage(context.Background(), []byte(msg), smime.Options{HeaderProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// evaluate runs the pipeline on msg, checks the desk invariants and returns the result.
func (e *inboundEnv) evaluate(t *testing.T, msg []byte) *Result {
	t.Helper()
	res, err := e.ib.Evaluate(context.Background(), msg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	checkDeskInvariants(t, res.Message, res.Verdict, e.ib.cfg, "")
	return res
}

// allHeaders is every header field value of the desk message, at every level, "Name: value".
func allHeaders(t *testing.T, msg []byte) []string {
	t.Helper()
	var out []string
	if !walkDesk(msg, func(p deskPart) {
		for name, vals := range p.header {
			for _, v := range vals {
				out = append(out, name+": "+v)
			}
		}
	}) {
		t.Fatalf("desk message does not parse:\n%s", msg)
	}
	return out
}

// TestDeskDropsForgedAuthenticationResults: sealpost's authserv-id in any RFC 8601 spelling, in
// the received header, in the signed header, in a nested part or in an embedded message, never
// reaches the desk; only sealpost's own result does. Before, the leading comment, quoted and
// trailing-dot spellings were kept at the top, and every nested one was copied with the body.
func TestDeskDropsForgedAuthenticationResults(t *testing.T) {
	f := pipelinetest.Get(t)
	bob, err := f.CA.NewDevCustomer("bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	spellings := map[string]string{
		"leading comment": "(x) sealpost.test",
		"quoted":          `"sealpost.test"`,
		"trailing dot":    "sealpost.test.",
		"upper case":      "SEALPOST.TEST",
		"version":         "sealpost.test 1",
		"comment after":   "sealpost.test (trust me)",
		"encoded-word":    "=?us-ascii?q?sealpost.test?=",
	}
	places := map[string]func(t *testing.T, ar string) []byte{
		"received header": func(t *testing.T, ar string) []byte {
			return []byte("Authentication-Results: " + ar + "\r\nFrom: bob@example.com\r\nTo: support@bank.example\r\nSubject: hi\r\n\r\nHello.\r\n")
		},
		"signed header": func(t *testing.T, ar string) []byte {
			return signProtected(t, bob, "From: bob@example.com\r\nTo: support@bank.example\r\nAuthentication-Results: "+ar+"\r\nSubject: hi\r\n\r\nHello.\r\n")
		},
		"nested part": func(t *testing.T, ar string) []byte {
			return signAs(t, bob, "From: bob@example.com\r\nTo: support@bank.example\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"+
				"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"+
				"--b1\r\nAuthentication-Results: "+ar+"\r\nContent-Type: text/plain\r\n\r\nWire 9,800 EUR.\r\n--b1--\r\n")
		},
		"embedded message": func(t *testing.T, ar string) []byte {
			return signAs(t, bob, "From: bob@example.com\r\nTo: support@bank.example\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"+
				"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nForwarded.\r\n"+
				"--b1\r\nContent-Type: message/rfc822\r\n\r\nAuthentication-Results: "+ar+"\r\nFrom: alice@example.com\r\nSubject: x\r\n\r\nWire.\r\n--b1--\r\n")
		},
		// Unsigned: sealpost's own signer does not make base64 message/rfc822 parts (clients do).
		"embedded message in base64": func(t *testing.T, ar string) []byte {
			inner := "Authentication-Results: " + ar + "\r\nFrom: alice@example.com\r\nSubject: x\r\n\r\nWire.\r\n"
			return []byte("From: bob@example.com\r\nTo: support@bank.example\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n" +
				"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nForwarded.\r\n" +
				"--b1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + string(mime.EncodeBase64([]byte(inner))) + "--b1--\r\n")
		},
	}
	for place, build := range places {
		for spelling, id := range spellings {
			t.Run(place+"/"+spelling, func(t *testing.T) {
				e := newInboundEnv(t, taggedConfig())
				res := e.evaluate(t, build(t, id+"; smime=pass header.from=alice@example.com"))
				for _, h := range allHeaders(t, res.Message) {
					if strings.Contains(h, "smime=pass") {
						t.Errorf("forged result reached the desk: %s", h)
					}
				}
			})
		}
	}
	t.Run("the MX's own results stay", func(t *testing.T) {
		e := newInboundEnv(t, taggedConfig())
		res := e.evaluate(t, []byte("Authentication-Results: mx.bank.example; spf=pass smtp.mailfrom=example.com\r\nFrom: bob@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"))
		if !bytes.Contains(res.Message, []byte("Authentication-Results: mx.bank.example; spf=pass")) {
			t.Errorf("the MX's Authentication-Results was dropped:\n%s", res.Message)
		}
	})
}

// TestDeskDropsSealpostFieldsEverywhere: Sealpost-* and X-Sealpost-* fields, in any case, in the
// received header, the signed header, nested parts and embedded messages, never reach the desk.
// Before, those in nested parts and embedded messages were copied with the body.
func TestDeskDropsSealpostFieldsEverywhere(t *testing.T) {
	f := pipelinetest.Get(t)
	bob, err := f.CA.NewDevCustomer("bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	forged := "Sealpost-Verdict: verified; signer=alice@example.com\r\nx-sealpost-verdict: verified\r\nSEALPOST-RELEASED: yes\r\nSealpost-Original-From: Alice <alice@example.com>\r\n"
	for name, msg := range map[string][]byte{
		"received header": []byte(forged + "From: bob@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"),
		"signed header":   signProtected(t, bob, "From: bob@example.com\r\nTo: support@bank.example\r\n"+forged+"Subject: hi\r\n\r\nHello.\r\n"),
		"nested part": signAs(t, bob, "From: bob@example.com\r\nSubject: hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"+
			"--b1\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n"+forged+"\r\n"+
			"--b2\r\n"+forged+"Content-Type: text/plain\r\n\r\nWire.\r\n--b2--\r\n--b1--\r\n"),
		"embedded message": signAs(t, bob, "From: bob@example.com\r\nSubject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"+
			forged+"From: alice@example.com\r\nSubject: x\r\n\r\nWire.\r\n"),
		// In a digest a part without Content-Type is a message/rfc822.
		"digest": signAs(t, bob, "From: bob@example.com\r\nSubject: digest\r\nMIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"+
			"--d\r\n\r\n"+forged+"From: alice@example.com\r\nSubject: x\r\n\r\nWire.\r\n--d--\r\n"),
		// Two Content-Type fields: one reader sees text, another an embedded message.
		"ambiguous part": []byte("From: bob@example.com\r\nSubject: hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n" +
			"--m\r\nContent-Type: text/plain\r\n\r\nHello.\r\n--m\r\nContent-Type: text/plain\r\nContent-Type: message/rfc822\r\n\r\n" +
			forged + "From: Alice <alice@example.com>\r\n\r\nWire.\r\n--m--\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			e := newInboundEnv(t, taggedConfig())
			res := e.evaluate(t, msg)
			if name == "digest" && !bytes.Contains(res.Message, []byte("--d\r\nContent-Type: message/rfc822\r\n")) ||
				name == "ambiguous part" && !bytes.Contains(res.Message, []byte("--m\r\nContent-Type: application/octet-stream\r\n")) {
				t.Errorf("part not labelled as what sealpost read it as:\n%s", res.Message)
			}
			for _, h := range allHeaders(t, res.Message) {
				name, value, _ := strings.Cut(h, ": ")
				switch {
				case name == "X-Sealpost-Verdict" || name == "Sealpost-Released",
					name == "Sealpost-Verdict" && strings.Contains(value, "signer=alice"),
					name == "Sealpost-Original-From" && strings.Contains(value, "Alice <alice"):
					t.Errorf("forged field reached the desk: %s", h)
				}
			}
		})
	}
}

// deskFromOf returns the desk's From, parsed, and its Sealpost-Original-From.
func deskFromOf(t *testing.T, msg []byte) (*mail.Address, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	list, err := m.Header.AddressList("From")
	if err != nil || len(list) != 1 {
		t.Fatalf("desk From %q: %v", m.Header.Get("From"), err)
	}
	return list[0], m.Header.Get("Sealpost-Original-From")
}

// namedStore is a store that keeps the name each customer registered (RegisteredNames).
type namedStore struct {
	Store
	names map[string]string
}

func (s namedStore) RegisteredName(_ context.Context, addr string) (string, error) {
	if n, ok := s.names[strings.ToLower(addr)]; ok {
		return n, nil
	}
	return "", store.ErrNotFound
}

// TestDeskFromOfVerifiedReplyIsTheSigner: a verified reply shows the desk the signer's address
// with the registered name, or none; never the sender's display name, which is kept in
// Sealpost-Original-From. Before, the raw From (and Sender) were copied.
func TestDeskFromOfVerifiedReplyIsTheSigner(t *testing.T) {
	e := newInboundEnv(t, taggedConfig())
	e.register(t, "alice@example.com", e.f.Alice)
	msg := signAsFrom(t, e.f.Alice, `"Bank Security <security@bank.example>" <alice@example.com>`,
		"Sender: security@bank.example\r\nTo: support@bank.example\r\nSubject: hi\r\n\r\nHello.\r\n")
	res := e.evaluate(t, msg)
	if !res.Verdict.Trusted() {
		t.Fatalf("verdict %s", res.Verdict.Header())
	}
	from, orig := deskFromOf(t, res.Message)
	if from.Address != "alice@example.com" || from.Name != "" || bytes.Contains(res.Message, []byte("\r\nFrom: \"Bank")) {
		t.Errorf("desk From %q %q, want alice@example.com without a name", from.Name, from.Address)
	}
	if !strings.Contains(orig, "Bank Security") {
		t.Errorf("Sealpost-Original-From %q does not keep the original From", orig)
	}
	if mime.HeaderValue(res.Message, "Sender") != "" {
		t.Error("Sender passed on to the desk")
	}

	t.Run("registered name", func(t *testing.T) {
		ib, err := New(e.ib.cfg, namedStore{Store: e.st, names: map[string]string{"alice@example.com": "Alice Example"}}, e.f.Direct,
			WithIdentities(e.ib.d.Identities...), WithPGPKeys(e.ib.d.PGPKeys), WithLogger(e.ib.log))
		if err != nil {
			t.Fatal(err)
		}
		res, err := ib.Evaluate(context.Background(), msg, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		checkDeskInvariants(t, res.Message, res.Verdict, ib.cfg, "Alice Example")
		if from, _ := deskFromOf(t, res.Message); from.Name != "Alice Example" || from.Address != "alice@example.com" {
			t.Errorf("desk From %q <%s>, want the registered name", from.Name, from.Address)
		}
	})
}

// TestDeskFromOfUnverifiedReplyIsMarked: for anything not verified the desk's From names the real
// address, with a display name that says it is not verified; the sender's display name, in any
// form (an address in quotes, an encoded-word, a comment, bidi controls), is not shown. Before,
// the desk saw "Alice".
func TestDeskFromOfUnverifiedReplyIsMarked(t *testing.T) {
	f := pipelinetest.Get(t)
	bob, err := f.CA.NewDevCustomer("bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	froms := map[string]string{
		"address in the display name": `"Alice <alice@example.com>" <bob@example.com>`,
		"encoded display name":        "=?utf-8?q?Alice_=3Calice=40example=2Ecom=3E?= <bob@example.com>",
		"comment":                     "bob@example.com (Alice <alice@example.com>)",
		"bidi override":               "\"\u202eAlice\u202c\" <bob@example.com>",
		"group":                       "Alice: bob@example.com;",
	}
	for name, from := range froms {
		for kind, build := range map[string]func() []byte{
			"signed by bob": func() []byte {
				return signAsFrom(t, bob, from, "To: support@bank.example\r\nSubject: hi\r\n\r\nHello.\r\n")
			},
			"unsigned": func() []byte { return []byte("From: " + from + "\r\nSubject: hi\r\n\r\nHello.\r\n") },
		} {
			t.Run(kind+"/"+name, func(t *testing.T) {
				e := newInboundEnv(t, taggedConfig())
				res := e.evaluate(t, build())
				deskFrom, orig := deskFromOf(t, res.Message)
				if deskFrom.Address != "bob@example.com" || deskFrom.Name != "[NOT VERIFIED] bob@example.com" {
					t.Errorf("desk From %q <%s>", deskFrom.Name, deskFrom.Address)
				}
				if strings.Contains(mime.HeaderValue(res.Message, "From"), "Alice") {
					t.Errorf("desk From shows Alice: %s", mime.HeaderValue(res.Message, "From"))
				}
				if orig == "" {
					t.Error("no Sealpost-Original-From")
				}
			})
		}
	}
	t.Run("signer is not the From", func(t *testing.T) {
		e := newInboundEnv(t, taggedConfig())
		res := e.evaluate(t, signAsFrom(t, bob, "Alice <alice@example.com>", "Subject: hi\r\n\r\nHello.\r\n"))
		if from, _ := deskFromOf(t, res.Message); from.Name != "[NOT VERIFIED] alice@example.com" {
			t.Errorf("desk From %q", from.Name)
		}
	})
	t.Run("mark follows the configured tag", func(t *testing.T) {
		e := newInboundEnv(t, Config{SubjectTagUnverified: "[UNGEPRÜFT]"})
		res := e.evaluate(t, []byte("From: Alice <bob@example.com>\r\nSubject: hi\r\n\r\nHello.\r\n"))
		if from, _ := deskFromOf(t, res.Message); from.Name != "[UNGEPRÜFT] bob@example.com" {
			t.Errorf("desk From %q", from.Name)
		}
	})
	t.Run("no From at all", func(t *testing.T) {
		e := newInboundEnv(t, taggedConfig())
		res := e.evaluate(t, []byte("From: not an address\r\nSubject: hi\r\n\r\nHello.\r\n"))
		if mime.HeaderValue(res.Message, "From") != "" || mime.HeaderValue(res.Message, "Sealpost-Original-From") != "not an address" {
			t.Errorf("desk message:\n%s", res.Message)
		}
	})
}

// TestDeskEmbeddedMessageSenders: an embedded message (a message/rfc822 wrapper, RFC 8551 3.1,
// or a forwarded mail) shows the desk its sender only as sealpost vouches for it: the verified
// signer without a name of the sender's, anyone else marked; Sender dropped. Before, the
// embedded header was copied as it was, "Alice" and all.
func TestDeskEmbeddedMessageSenders(t *testing.T) {
	f := pipelinetest.Get(t)
	bob, err := f.CA.NewDevCustomer("bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	wrap := func(from, embeddedFrom string, id *keys.Identity) []byte {
		return signAsFrom(t, id, from, "To: support@bank.example\r\nSubject: wrapped\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"+
			"From: "+embeddedFrom+"\r\nSender: Alice <alice@example.com>\r\nTo: support@bank.example\r\nSubject: wire\r\n\r\nWire 9,800 EUR.\r\n")
	}
	embeddedFrom := func(t *testing.T, msg []byte) (string, string) {
		var from, sender string
		walkDesk(msg, func(p deskPart) {
			if p.embedded {
				from, sender = p.header.Get("From"), p.header.Get("Sender")
			}
		})
		return from, sender
	}
	t.Run("unregistered signer, embedded From names Alice", func(t *testing.T) {
		e := newInboundEnv(t, taggedConfig())
		res := e.evaluate(t, wrap("bob@example.com", `"Alice <alice@example.com>" <bob@example.com>`, bob))
		from, sender := embeddedFrom(t, res.Message)
		if from != `"[NOT VERIFIED] bob@example.com" <bob@example.com>` || sender != "" {
			t.Errorf("embedded From %q, Sender %q", from, sender)
		}
	})
	t.Run("verified signer", func(t *testing.T) {
		e := newInboundEnv(t, taggedConfig())
		e.register(t, "alice@example.com", e.f.Alice)
		res := e.evaluate(t, wrap("alice@example.com", "Someone Else <alice@example.com>", e.f.Alice))
		if from, _ := embeddedFrom(t, res.Message); from != "<alice@example.com>" {
			t.Errorf("embedded From %q", from)
		}
		// A forwarded message of someone else's stays marked, verified or not.
		res = e.evaluate(t, wrap("alice@example.com", "Bank <support@bank.example>", e.f.Alice))
		if from, _ := embeddedFrom(t, res.Message); from != `"[NOT VERIFIED] support@bank.example" <support@bank.example>` {
			t.Errorf("forwarded From %q", from)
		}
	})
}

// TestDeskSubjectTag: the Subject starts with the verdict's tag; the sender cannot bring the other
// verdict's tag (plain or encoded); tags are configurable and "" switches them off.
func TestDeskSubjectTag(t *testing.T) {
	e := newInboundEnv(t, taggedConfig())
	e.register(t, "alice@example.com", e.f.Alice)
	verified := func(subject string) []byte {
		return signAs(t, e.f.Alice, "From: alice@example.com\r\nTo: support@bank.example\r\nSubject: "+subject+"\r\n\r\nHello.\r\n")
	}
	subjectOf := func(msg []byte) string { return mime.HeaderValue(msg, "Subject") }
	for _, c := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"verified", verified("Re: Case 4711"), "[verified] Re: Case 4711"},
		{"unsigned", []byte("From: bob@example.com\r\nSubject: Re: Case 4711\r\n\r\nx\r\n"), "[NOT VERIFIED] Re: Case 4711"},
		{"no Subject", []byte("From: bob@example.com\r\n\r\nx\r\n"), "[NOT VERIFIED]"},
		{"forged tag", []byte("From: bob@example.com\r\nSubject: [Verified] wire 9,800 EUR\r\n\r\nx\r\n"), "[NOT VERIFIED] wire 9,800 EUR"},
		{"forged encoded tag", []byte("From: bob@example.com\r\nSubject: =?utf-8?q?=5Bverified=5D_wire?=\r\n\r\nx\r\n"), "[NOT VERIFIED] wire"},
		{"our own tag again (a reply to the desk's reply)", verified("Re: [verified] Case"), "[verified] Re: Case"},
		{"non-ASCII", []byte("From: bob@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nx\r\n"), "[NOT VERIFIED] Grüße"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := subjectOf(e.evaluate(t, c.msg).Message); got != c.want {
				t.Errorf("Subject %q, want %q", got, c.want)
			}
		})
	}
	t.Run("configured", func(t *testing.T) {
		e := newInboundEnv(t, Config{SubjectTagVerified: "[SIGNIERT]", SubjectTagUnverified: "[UNGEPRÜFT]"})
		if got := subjectOf(e.evaluate(t, []byte("From: bob@example.com\r\nSubject: Hallo\r\n\r\nx\r\n")).Message); got != "[UNGEPRÜFT] Hallo" {
			t.Errorf("Subject %q", got)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		e := newInboundEnv(t, Config{})
		res := e.evaluate(t, []byte("From: bob@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nx\r\n"))
		if !bytes.Contains(res.Message, []byte("\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n")) {
			t.Errorf("Subject not copied as it was:\n%s", res.Message)
		}
	})
}

// TestInboundConfigSubjectTags: tags are checked, not filled in: "" stays "" (off).
func TestInboundConfigSubjectTags(t *testing.T) {
	c := DefaultConfig()
	c.SupportAddresses = []string{"support@bank.example"}
	if err := c.Validate(); err != nil || c.SubjectTagVerified != "[verified]" || c.SubjectTagUnverified != "[NOT VERIFIED]" {
		t.Fatalf("defaults: %v %+v", err, c)
	}
	c.SubjectTagVerified, c.SubjectTagUnverified = "", ""
	if err := c.Validate(); err != nil || c.SubjectTagVerified != "" {
		t.Fatalf("empty tags: %v %q", err, c.SubjectTagVerified)
	}
	for tag, path := range map[string]string{"a\r\nBcc: x": "subject_tag_verified", " [x]": "subject_tag_verified",
		"=?utf-8?q?x?=": "subject_tag_verified", strings.Repeat("x", 41): "subject_tag_verified", "\u202e[x]": "subject_tag_verified"} {
		c := DefaultConfig()
		c.SupportAddresses = []string{"support@bank.example"}
		c.SubjectTagVerified = tag
		var fe *config.FieldError
		if err := c.Validate(); !errors.As(err, &fe) || fe.Path != path {
			t.Errorf("tag %q: %v, want a problem with %s", tag, err, path)
		}
	}
	c = DefaultConfig()
	c.SupportAddresses = []string{"support@bank.example"}
	c.SubjectTagUnverified = "[Verified]"
	if err := c.Validate(); !hasFieldError(err, "subject_tag_unverified") {
		t.Errorf("equal tags: %v", err)
	}
}

// bannerOf returns the decoded text of every text/plain and text/html leaf, in order.
func leaves(t *testing.T, msg []byte) (plain, html []string) {
	t.Helper()
	if !walkDesk(msg, func(p deskPart) {
		switch p.mt {
		case "text/plain":
			plain = append(plain, string(p.body))
		case "text/html":
			html = append(html, string(p.body))
		}
	}) {
		t.Fatalf("desk message does not parse:\n%s", msg)
	}
	return plain, html
}

// TestDeskBanner: the desk's copy opens with a banner stating the verdict, the signer and what
// failed: in the text (whatever its transfer encoding) and, for HTML alternatives, in the HTML
// too; where it cannot go into the content, the content is wrapped behind it.
func TestDeskBanner(t *testing.T) {
	e := newInboundEnv(t, Config{OnFailed: ActionDeliver})
	const title = "sealpost: NOT VERIFIED (unsigned)"
	for _, c := range []struct {
		name, content string
		plain, html   int // leaves that must start with (plain) or contain (html) the banner
		wrapped       bool
	}{
		{"7bit text", "Content-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n", 1, 0, false},
		{"base64 text", "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nR3LDvMOfZSwgQWxpY2UuDQo=\r\n", 1, 0, false},
		{"quoted-printable text", "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe=\r\n.\r\n", 1, 0, false},
		{"alternative with HTML", "Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nHello.\r\n" +
			"--a\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<!DOCTYPE html><html><body><!-- <body> -->Hello.</body></html>\r\n--a--\r\n", 1, 1, false},
		{"mixed: alternative, then an attachment", "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n" +
			"--a\r\nContent-Type: text/plain\r\n\r\nHello.\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>Hello.</p>\r\n--a--\r\n" +
			"--m\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment\r\n\r\n%PDF\r\n--m--\r\n", 1, 1, false},
		{"an invitation alternative takes no banner", "Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nHello.\r\n" +
			"--a\r\nContent-Type: text/html\r\n\r\n<p>Hello.</p>\r\n--a\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n--a--\r\n", 1, 1, false},
		{"an alternative that cannot take it is wrapped", "Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nHello.\r\n" +
			"--a\r\nContent-Type: text/x-amp-html\r\n\r\n<html amp4email>Hello.</html>\r\n--a--\r\n", 1, 0, true},
		{"UTF-16 text is wrapped", "Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n//5IAGkA\r\n", 1, 0, true},
		{"attachment first is wrapped", "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nx\r\n--m--\r\n", 1, 0, true},
		{"embedded message is wrapped", "Content-Type: message/rfc822\r\n\r\nFrom: a@example.com\r\n\r\nHello.\r\n", 1, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := e.evaluate(t, []byte("From: bob@example.com\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"+c.content))
			plain, html := leaves(t, res.Message)
			n := 0
			for _, p := range plain {
				if strings.HasPrefix(p, title+"\r\n") {
					n++
				}
			}
			if n != c.plain {
				t.Errorf("%d text parts start with the banner, want %d:\n%s", n, c.plain, res.Message)
			}
			n = 0
			for _, h := range html {
				if strings.Contains(h, title) && strings.Index(h, "data-sealpost-banner") < strings.Index(h, "Hello") && !strings.Contains(h, "<!-- <body> --><div") {
					n++
				}
			}
			if n != c.html {
				t.Errorf("%d HTML parts carry the banner, want %d:\n%s", n, c.html, res.Message)
			}
			mt, _, _ := stdmime.ParseMediaType(mime.HeaderValue(res.Message, "Content-Type"))
			if wrapped := mt == "multipart/mixed" && len(plain) > 0 && plain[0] == string(newBanner(res.Verdict).text()); wrapped != c.wrapped {
				t.Errorf("wrapped %v, want %v:\n%s", wrapped, c.wrapped, res.Message)
			}
			if c.name == "base64 text" && !strings.Contains(plain[0], "Grüße, Alice.") {
				t.Errorf("base64 text lost: %q", plain[0])
			}
		})
	}

	t.Run("states signer and failures", func(t *testing.T) {
		e := newInboundEnv(t, Config{OnFailed: ActionDeliver})
		bob, err := e.f.CA.NewDevCustomer("bob@example.com")
		if err != nil {
			t.Fatal(err)
		}
		res := e.evaluate(t, signAsFrom(t, bob, "alice@example.com", "Subject: hi\r\n\r\nHello.\r\n"))
		plain, _ := leaves(t, res.Message)
		for _, want := range []string{"NOT VERIFIED (failed)", "Signer: bob@example.com", "from-mismatch: the signer's address is not the From address"} {
			if !strings.Contains(plain[0], want) {
				t.Errorf("banner lacks %q:\n%s", want, plain[0])
			}
		}
	})

	t.Run("HTML escapes the signer", func(t *testing.T) {
		v := &Verdict{Status: StatusFailed, Method: "smime", Signer: `"><script>alert(1)</script><b x="@example.com`, Failures: []string{FailChain}}
		h := mime.Header{mime.NewField("Content-Type", "text/html; charset=utf-8")}
		_, body := e.ib.withBanner(h, []byte("<p>Hello</p>"), v)
		if bytes.Contains(body, []byte("<script>")) || bytes.Contains(body, []byte(`<b x=`)) || !bytes.Contains(body, []byte("&lt;script&gt;")) {
			t.Errorf("HTML banner:\n%s", body)
		}
	})
}

// TestDeskMessageGolden: the desk's message for committed corpus files, byte for byte (go test
// ./inbound -run TestDeskMessageGolden -update-desk rewrites testdata/desk).
func TestDeskMessageGolden(t *testing.T) {
	env := newCorpusEnv(t, taggedConfig())
	arrival := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	for _, name := range []string{"good/smime-detached", "good/unsigned-plain", "hostile/display-name-spoofing", "hostile/display-name-address-in-quotes", "hostile/forged-ar-spellings"} {
		t.Run(name, func(t *testing.T) {
			msg, err := os.ReadFile(filepath.Join(corpusDir, name+".eml"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := env.ib.Evaluate(context.Background(), msg, arrival)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "desk", strings.ReplaceAll(name, "/", "-")+".eml")
			if *updateDesk {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, res.Message, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update-desk)", err)
			}
			if !bytes.Equal(res.Message, want) {
				t.Errorf("desk message differs from %s (run with -update-desk if intended):\n%s", golden, res.Message)
			}
		})
	}
}

// FuzzDeskMessage builds the desk's message from arbitrary content under every verdict kind: it
// never panics, and whatever a standard MIME parser reads in it carries no forged field.
func FuzzDeskMessage(f *testing.F) {
	f.Add([]byte("Content-Type: text/plain\r\n\r\nHello.\r\n"))
	f.Add([]byte("Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGk=\r\n--a\r\nContent-Type: text/html\r\nSealpost-Verdict: verified\r\n\r\n<p>x</p>\r\n--a--\r\n"))
	f.Add([]byte("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + string(mime.EncodeBase64([]byte("From: \"A <a@x>\" <b@y>\r\nAuthentication-Results: (c) sealpost.test; smime=pass\r\n\r\nx\r\n")))))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nX-Sealpost-A: 1\r\n\r\n--m\r\nno header\r\n--m--\r\n"))
	e := newInboundEnv(f, Config{SubjectTagVerified: DefaultSubjectTagVerified, SubjectTagUnverified: DefaultSubjectTagUnverified})
	verdicts := []*Verdict{
		{Status: StatusVerified, Method: "smime", From: "a@example.com", Signer: "a@example.com"},
		{Status: StatusFailed, Method: "pgp", Failures: []string{FailSignature}, Signer: "<x>@example.com"},
		{Status: StatusUnsigned},
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		content = mime.ToCRLF(content)
		inner, body, err := mime.SplitEntity(content)
		if err != nil {
			return
		}
		visible := mime.Header{mime.NewField("From", "\"A <a@example.com>\" <a@example.com>"), mime.NewField("Subject", "x")}
		v := verdicts[len(content)%len(verdicts)]
		msg := e.ib.deskMessage(deskInput{outer: visible, visible: visible, inner: inner, body: body}, v)
		walkDesk(msg, func(p deskPart) {
			for name, vals := range p.header {
				for _, val := range vals {
					if isAuthResultsField(name) && claimsAuthServID(val, "sealpost.test") && !(p.root && val == v.AuthenticationResults("sealpost.test")) {
						t.Fatalf("forged %s: %s", name, val)
					}
					ours := p.root && (name == "Sealpost-Verdict" && val == v.Header() || name == "Sealpost-Original-From") ||
						p.embedded && name == "Sealpost-Original-From"
					if isSealpostField(name) && !ours {
						t.Fatalf("forged %s: %s", name, val)
					}
				}
			}
		})
	})
}

// TestDeskHeaderLinesStayShort: the From and Subject sealpost writes are folded, however many
// addresses or however long a Subject the sender sent, and unfold to what was meant.
func TestDeskHeaderLinesStayShort(t *testing.T) {
	e := newInboundEnv(t, taggedConfig())
	var addrs []string
	for i := range 40 {
		addrs = append(addrs, fmt.Sprintf("Person %d <p%d@example.com>", i, i))
	}
	subject := strings.Repeat("Grüße ", 150)
	res := e.evaluate(t, []byte("From: "+strings.Join(addrs, ",\r\n ")+"\r\nSubject: "+stdmime.QEncoding.Encode("utf-8", subject)+"\r\n\r\nx\r\n"))
	for _, line := range strings.Split(string(res.Message), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line of %d octets: %.80s…", len(line), line)
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(res.Message))
	if err != nil {
		t.Fatal(err)
	}
	list, err := m.Header.AddressList("From")
	if err != nil || len(list) != maxDeskFrom || list[3].Name != "[NOT VERIFIED] p3@example.com" {
		t.Errorf("From: %d addresses, %v", len(list), err)
	}
	if got := mime.HeaderValue(res.Message, "Subject"); got != "[NOT VERIFIED] "+strings.TrimSpace(subject) {
		t.Errorf("Subject %q", got)
	}
}

// hasFieldError reports whether err holds a *config.FieldError at path.
func hasFieldError(err error, path string) bool {
	for _, fe := range config.FieldErrors(err) {
		if fe.Path == path {
			return true
		}
	}
	return false
}
