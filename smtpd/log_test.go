package smtpd

import (
	"regexp"
	"strings"
	"testing"
)

// TestLogs: the log has the session ID, client IP, queue ID and reply codes, and never the
// message, full addresses or the password.
func TestLogs(t *testing.T) {
	const (
		otp   = "OTP-918273"
		local = "alice.customer"
	)
	cfg, tlsCfg := authConfig(t)
	srv := startServer(t, cfg, nil)
	c := dial(t, srv.addr)
	c.do("EHLO client.example", "250")
	c.startTLS(tlsCfg.RootCAs)
	c.script(
		"EHLO client.example", "250",
		"AUTH PLAIN "+plain("", testUser, "wrong "+testPassword), "535 ",
		"AUTH PLAIN "+plain("", testUser, testPassword), "235 ",
	)
	body := "Subject: Your code\r\n\r\nYour code is " + otp + "\r\n"
	if r := c.transaction("otp@bank.example", local+"@example.com", body); !strings.HasPrefix(r, "250 2.0.0 queued as Q0001") {
		t.Fatal(r)
	}
	c.do("QUIT", "221 ")
	c.expectClosed()

	logs := srv.logs.String()
	for _, secret := range []string{otp, "Your code", local, testPassword, "otp@"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q:\n%s", secret, logs)
		}
	}
	id := regexp.MustCompile(`session=([0-9a-f]{12})`).FindStringSubmatch(logs)
	if id == nil {
		t.Fatalf("no session ID in the log:\n%s", logs)
	}
	for _, want := range []string{"remote=127.0.0.1", "queue_id=Q0001", "code=250", "code=535", "rcpt_domain=example.com", "from_domain=bank.example"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !strings.Contains(l, "session="+id[1]) {
			t.Errorf("log line without the session ID: %s", l)
		}
	}
}
