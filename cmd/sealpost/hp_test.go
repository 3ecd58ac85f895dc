package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

// hpOTP is an OTP whose code is in every header field a sender might put it in: the Subject,
// X-OTP, Thread-Topic, Reply-To, Keywords, Comments and the To display names.
const hpOTP = "From: Example Bank <otp@bank.example>\r\n" +
	"To: Alice 493817 <alice@example.com>, Carol 493817 <carol@example.org>\r\n" +
	"Subject: Your code is 493817\r\n" +
	"X-OTP: 493817\r\n" +
	"Thread-Topic: code 493817\r\n" +
	"Reply-To: Codes 493817 <noreply@bank.example>\r\n" +
	"Keywords: otp, 493817\r\n" +
	"Comments: code 493817\r\n" +
	"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <otp-hp@bank.example>\r\n" +
	"\r\n" +
	"Your one-time code is 493817.\r\n"

// hpInner are the fields that must travel inside only, as submitted.
var hpInner = []string{"X-OTP: 493817\r\n", "Thread-Topic: code 493817\r\n", "Reply-To: Codes 493817 <noreply@bank.example>\r\n",
	"Keywords: otp, 493817\r\n", "Comments: code 493817\r\n", "To: Alice 493817 <alice@example.com>, Carol 493817 <carol@example.org>\r\n",
	"Subject: Your code is 493817\r\n", "From: Example Bank <otp@bank.example>\r\n"}

// TestServeOTPHeaderProtection (issue 11 item 3), over SMTP through serve: the OTP reaches alice
// (S/MIME) and carol (OpenPGP) with none of X-OTP, Thread-Topic, Reply-To, Keywords, Comments or a
// display name in the outer header, only the transport fields and Subject "[...]"; what openssl
// cms -decrypt and gpg --decrypt give holds every one of them, marked hp="cipher" and
// protected-headers="v1", with the legacy display at the top of the text. Before, only the Subject
// was hidden.
func TestServeOTPHeaderProtection(t *testing.T) {
	inst, cfg, alice, carol := testInstance(t, nil)
	res := submit(t, inst, "otp@bank.example", []string{demoAlice, demoCarol}, hpOTP)
	if res.Err != nil || !strings.Contains(res.Reply, "queued as") {
		t.Fatalf("submission: %v %q %v", res.Err, res.Reply, res.Refused)
	}
	msgs, err := waitForMaildir(cfg.Delivery.Maildir, 2, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var sawSMIME, sawPGP bool
	for _, m := range msgs {
		checkOuterOfProtectedOTP(t, m)
		var inner []byte
		switch {
		case bytes.Contains(m, []byte("application/pkcs7-mime")):
			sawSMIME = true
			inner = opensslOpen(t, cfg, alice, m)
		case bytes.Contains(m, []byte("application/pgp-encrypted")):
			sawPGP = true
			pub, err := keys.DataDir(cfg.Data).Export("pgp")
			if err != nil {
				t.Fatal(err)
			}
			out, status, err := interop.Try(t, armoredMessage(m), "gpg", append(gnupgHome(t, carol, pub), "--decrypt")...)
			if err != nil || !bytes.Contains(status, []byte("[GNUPG:] GOODSIG")) || !bytes.Contains(status, []byte("[GNUPG:] GOODMDC")) {
				t.Fatalf("gpg: %v\n%s", err, status)
			}
			inner = out
		default:
			t.Fatalf("delivered message is neither S/MIME nor PGP/MIME encrypted:\n%s", headerOf(m))
		}
		checkInnerOfProtectedOTP(t, mime.ToCRLF(inner))
	}
	if !sawSMIME || !sawPGP {
		t.Fatalf("delivered S/MIME %v, PGP %v; want both", sawSMIME, sawPGP)
	}
}

func checkOuterOfProtectedOTP(t *testing.T, m []byte) {
	t.Helper()
	h, _, err := mime.SplitEntity(m)
	if err != nil {
		t.Fatal(err)
	}
	// Transport fields, the protector's MIME fields, and what the Maildir delivery adds.
	allowed := map[string]bool{"from": true, "to": true, "cc": true, "date": true, "message-id": true, "subject": true,
		"mime-version": true, "return-path": true, "delivered-to": true, "received": true, "dkim-signature": true}
	for _, f := range h {
		if !allowed[strings.ToLower(f.Name)] && !mime.IsContentField(f.Name) {
			t.Errorf("outer header keeps %q", f.Raw)
		}
	}
	if head := headerOf(m); bytes.Contains(head, []byte("493817")) || bytes.Contains(head, []byte("Alice")) || bytes.Contains(head, []byte("Example Bank")) {
		t.Errorf("the code or a display name is in the outer header:\n%s", head)
	}
	if got := h.Get("From") + "|" + h.Get("To") + "|" + h.Get("Subject"); got != "otp@bank.example|alice@example.com, carol@example.org|[...]" {
		t.Errorf("outer From|To|Subject = %q", got)
	}
	if h.Get("Date") == "" || h.Count("Message-ID") != 1 {
		t.Errorf("outer header lost Date or Message-ID:\n%s", headerOf(m))
	}
}

func checkInnerOfProtectedOTP(t *testing.T, inner []byte) {
	t.Helper()
	h, body, err := mime.SplitEntity(inner)
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	h.WriteTo(&raw)
	for _, want := range append(hpInner, "HP-Outer: Subject: [...]\r\n", `protected-headers="v1"`) {
		if !bytes.Contains(raw.Bytes(), []byte(want)) {
			t.Errorf("inner header lacks %q:\n%s", want, raw.Bytes())
		}
	}
	if _, params, err := mime.MediaType(h); err != nil || params["hp"] != "cipher" || params["protected-headers"] != "v1" {
		t.Errorf("payload root Content-Type %q", h.Get("Content-Type"))
	}
	if !bytes.Contains(body, []byte("Subject: Your code is 493817\r\n")) || !bytes.Contains(body, []byte("Your one-time code is 493817.")) {
		t.Errorf("inner text lacks the legacy display or the message:\n%s", body)
	}
}

// TestServeEightBitHeaderLeavesEncoded (issue 11 item 14), over SMTP through serve: a statement
// whose Subject and display names are raw UTF-8, submitted without SMTPUTF8, leaves with a 7-bit
// header whose fields decode to what was submitted, and openssl still verifies it. Before, the
// outer header was relayed as submitted.
func TestServeEightBitHeaderLeavesEncoded(t *testing.T) {
	inst, cfg, alice, _ := testInstance(t, nil)
	msg := "From: Bänk Zürich <statements@bank.example>\r\nTo: Jörg Müller <alice@example.com>\r\n" +
		"Subject: Ihr Kontoauszug für November\r\nMessage-ID: <u8-serve@bank.example>\r\n\r\nGuten Tag.\r\n"
	if res := submit(t, inst, "statements@bank.example", []string{demoAlice}, msg); res.Err != nil {
		t.Fatalf("submission: %v %q", res.Err, res.Reply)
	}
	msgs, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !mime.IsASCII(msgs[0]) {
		t.Fatalf("the delivered message is not 7-bit:\n%s", headerOf(msgs[0]))
	}
	for name, want := range map[string]string{"Subject": "Ihr Kontoauszug für November", "From": "Bänk Zürich <statements@bank.example>", "To": "Jörg Müller <alice@example.com>"} {
		if got := mime.HeaderValue(msgs[0], name); got != want {
			t.Errorf("outer %s decodes to %q, want %q", name, got, want)
		}
	}
	if inner := opensslOpen(t, cfg, alice, msgs[0]); !bytes.Contains(inner, []byte("Guten Tag.")) {
		t.Errorf("openssl verified other content:\n%s", inner)
	}
}
