package queue

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// checkDSN asserts that data is an RFC 3464 report for the failed
// recipients (address → wanted Status), with each Diagnostic-Code
// containing diag, and the original header but never the body.
func checkDSN(t *testing.T, data []byte, failed map[string]string, diag string) {
	t.Helper()
	if bytes.Contains(data, []byte(testBody)) {
		t.Fatalf("DSN carries the original body")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("DSN is not a message: %v", err)
	}
	if from := msg.Header.Get("From"); !strings.Contains(from, "MAILER-DAEMON@") {
		t.Errorf("DSN From = %q, want MAILER-DAEMON", from)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("DSN Content-Type = %q (%v), want multipart/report; report-type=delivery-status",
			msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	var status, headers []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("DSN part: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		switch ct {
		case "message/delivery-status":
			status = b
		case "text/rfc822-headers":
			headers = b
		}
	}
	if strings.Join(types, ",") != "text/plain,message/delivery-status,text/rfc822-headers" {
		t.Fatalf("DSN parts = %v", types)
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(status)))
	perMsg, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("per-message fields: %v", err)
	}
	if !strings.HasPrefix(perMsg.Get("Reporting-MTA"), "dns; ") || perMsg.Get("Arrival-Date") == "" {
		t.Errorf("per-message fields = %v", perMsg)
	}
	if _, err := mail.ParseDate(perMsg.Get("Arrival-Date")); err != nil {
		t.Errorf("Arrival-Date: %v", err)
	}
	seen := map[string]bool{}
	for {
		f, err := tp.ReadMIMEHeader()
		if len(f) == 0 {
			if err != nil && err != io.EOF {
				t.Fatalf("per-recipient fields: %v", err)
			}
			break
		}
		rcpt := strings.TrimPrefix(f.Get("Final-Recipient"), "rfc822; ")
		want, ok := failed[rcpt]
		if !ok {
			t.Errorf("DSN names unexpected recipient %q", f.Get("Final-Recipient"))
			continue
		}
		seen[rcpt] = true
		if f.Get("Action") != "failed" || f.Get("Status") != want {
			t.Errorf("%s: Action %q Status %q, want failed %s", rcpt, f.Get("Action"), f.Get("Status"), want)
		}
		if d := f.Get("Diagnostic-Code"); !strings.HasPrefix(d, "smtp; ") || !strings.Contains(d, diag) {
			t.Errorf("%s: Diagnostic-Code %q, want smtp; …%s…", rcpt, d, diag)
		}
		if err != nil {
			break
		}
	}
	for rcpt := range failed {
		if !seen[rcpt] {
			t.Errorf("DSN does not name %s", rcpt)
		}
	}
	if !bytes.Contains(headers, []byte("Subject: Statement\r\n")) {
		t.Errorf("text/rfc822-headers lacks the original header: %q", headers)
	}
	if bytes.Contains(headers, []byte(testBody)) {
		t.Errorf("text/rfc822-headers carries the body")
	}
}

func TestBuildDSN(t *testing.T) {
	data := testMessage("s@bank.example", "x@a.example").Data
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	dsn := buildDSN(dsnParams{
		hostname: "mx.sealpost.test", id: "AAAAAAAAAAAAAAAA", dsnID: "BBBBBBBBBBBBBBBB", class: "statement",
		sender: "s@bank.example", arrival: now.Add(-time.Hour), now: now, header: originalHeader(data),
		failed: []failedRecipient{
			{"x@a.example", &DeliveryError{Code: 550, Enhanced: "5.1.1", Message: "no such user"}},
			{"y@b.example", &DeliveryError{Temporary: true, Code: 451, Enhanced: "4.2.2", Message: "no such user either"}},
		},
	})
	checkDSN(t, dsn, map[string]string{"x@a.example": "5.1.1", "y@b.example": "4.2.2"}, "no such user")
}

func TestOriginalHeader(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"crlf", "A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\r\nB: 2\r\n"},
		{"lf", "A: 1\nB: 2\n\nbody\n", "A: 1\r\nB: 2\r\n"},
		{"no body separator", "A: 1\r\nbody without header end", ""},
		{"empty header", "\r\nbody\r\n", ""},
		{"blank line in body only after header", "A: 1\r\n\r\nbody\n\nmore", "A: 1\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(originalHeader([]byte(tt.in))); got != tt.want {
				t.Errorf("originalHeader(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
