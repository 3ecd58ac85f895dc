package smtpd

import (
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"
)

const (
	testUser     = "core-banking"
	testPassword = "correct horse battery staple"
)

// authConfig: loopback is NOT trusted (only 10.0.0.0/8 is), TLS and one user configured.
func authConfig(t *testing.T) (Config, *tls.Config) {
	t.Helper()
	certFile, keyFile, pool := testCert(t)
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		AllowedNetworks: []string{"10.0.0.0/8"},
		TLSCert:         certFile,
		TLSKey:          keyFile,
		Users:           map[string]string{testUser: string(hash)},
	}, &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func plain(identity, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(identity + "\x00" + user + "\x00" + pass))
}

// TestNoOpenRelay: a client outside AllowedNetworks that has not authenticated gets 530 5.7.0
// at MAIL FROM, cannot get to RCPT or DATA, and nothing of it reaches the gateway.
func TestNoOpenRelay(t *testing.T) {
	cfg, _ := authConfig(t)
	srv := startServer(t, cfg, nil)
	c := dial(t, srv.addr)
	c.script(
		"EHLO client.example", "250",
		"MAIL FROM:<statements@bank.example>", "530 5.7.0 Authentication required",
		"RCPT TO:<victim@example.com>", "502 5.5.1",
		"DATA", "502 5.5.1",
	)
	c.send(bdat(message, true))
	c.expect("502 5.5.1")
	c.do("QUIT", "221 ")
	clients, events, _ := srv.rec.snapshot()
	if len(clients) != 0 || len(events) != 0 {
		t.Fatalf("untrusted client reached the gateway: %+v %q", clients, events)
	}
	if !strings.Contains(srv.logs.String(), "relay denied") {
		t.Error("refusal not logged")
	}
}

// TestAuthRequiresTLS: before STARTTLS, AUTH is neither advertised nor accepted (go-smtp's
// 523 5.7.10), and a correct password sent in the clear does not make the client trusted.
func TestAuthRequiresTLS(t *testing.T) {
	cfg, _ := authConfig(t)
	srv := startServer(t, cfg, nil)
	c := dial(t, srv.addr)
	ehlo := c.do("EHLO client.example", "250")
	if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("EHLO before TLS: %q", ehlo)
	}
	c.script(
		"AUTH PLAIN "+plain("", testUser, testPassword), "523 5.7.10 TLS is required",
		"AUTH LOGIN", "523 5.7.10",
		"MAIL FROM:<statements@bank.example>", "530 5.7.0",
	)
	if clients, _, _ := srv.rec.snapshot(); len(clients) != 0 {
		t.Fatal("gateway session opened")
	}
}

// TestAuthPlainRelays: with go-smtp's own client, STARTTLS + AUTH PLAIN makes the client
// trusted; the gateway sees TLS, the user and Authenticated.
func TestAuthPlainRelays(t *testing.T) {
	cfg, tlsCfg := authConfig(t)
	srv := startServer(t, cfg, nil)
	c, err := smtp.DialStartTLS(srv.addr, tlsCfg) // EHLO localhost, STARTTLS, EHLO localhost
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.SupportsAuth("PLAIN") || !c.SupportsAuth("LOGIN") { // sends the EHLO under TLS
		t.Fatal("AUTH PLAIN/LOGIN not offered under TLS")
	}
	if state, ok := c.TLSConnectionState(); !ok || state.Version < tls.VersionTLS12 {
		t.Fatalf("TLS state %v %v", state.Version, ok)
	}
	if err := c.Auth(sasl.NewPlainClient("", testUser, testPassword)); err != nil {
		t.Fatalf("AUTH PLAIN: %v", err)
	}
	if err := c.SendMail("statements@bank.example", []string{"customer@example.com"}, strings.NewReader(message)); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	m := srv.rec.msgs()
	if len(m) != 1 || string(m[0].data) != message {
		t.Fatalf("gateway got %+v", m)
	}
	cl := m[0].client
	if !cl.TLS || !cl.Authenticated || cl.User != testUser || !cl.Trusted || cl.Helo != "localhost" {
		t.Errorf("gateway.Client = %+v", cl)
	}
}

// TestAuthScripts: AUTH LOGIN, failures, identity mismatch, AUTH inside a transaction, and the
// gateway session being reopened with the authenticated identity.
func TestAuthScripts(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name   string
		script []string
		closed bool // the server ends the connection after the script
		user   string
	}{
		{"LOGIN", []string{
			"AUTH LOGIN", "334 " + b64("Username:"),
			b64(testUser), "334 " + b64("Password:"),
			b64(testPassword), "235 2.0.0",
			"MAIL FROM:<statements@bank.example>", "250 ",
		}, false, testUser},
		{"LOGIN with initial response", []string{
			"AUTH LOGIN " + b64(testUser), "334 " + b64("Password:"),
			b64(testPassword), "235 2.0.0",
		}, false, ""},
		{"PLAIN without initial response", []string{
			"AUTH PLAIN", "334 ",
			plain("", testUser, testPassword), "235 2.0.0",
		}, false, ""},
		{"wrong password three times", []string{
			"AUTH PLAIN " + plain("", testUser, "wrong"), "535 5.7.8 Authentication failed",
			"AUTH PLAIN " + plain("", "nobody", testPassword), "535 5.7.8 Authentication failed",
			"AUTH PLAIN " + plain("", testUser, testPassword+" "), "421 4.7.0 Too many authentication failures",
		}, true, ""},
		{"identity is another user", []string{
			"AUTH PLAIN " + plain("admin", testUser, testPassword), "535 5.7.8",
			"MAIL FROM:<statements@bank.example>", "530 5.7.0",
		}, false, ""},
		{"malformed PLAIN", []string{
			"AUTH PLAIN " + b64("no separators"), "501 5.5.2",
		}, false, ""},
		{"unknown mechanism", []string{
			"AUTH CRAM-MD5", "504 5.7.4",
		}, false, ""},
		{"AUTH inside a transaction", []string{
			"AUTH PLAIN " + plain("", testUser, testPassword), "235 ",
			"MAIL FROM:<statements@bank.example>", "250 ",
			"RSET", "250 ",
		}, false, testUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, tlsCfg := authConfig(t)
			srv := startServer(t, cfg, nil)
			c := dial(t, srv.addr)
			c.do("EHLO client.example", "250")
			c.startTLS(tlsCfg.RootCAs)
			if ehlo := c.do("EHLO client.example", "250"); !strings.Contains(ehlo, "AUTH PLAIN LOGIN") || strings.Contains(ehlo, "STARTTLS") {
				t.Fatalf("EHLO under TLS: %q", ehlo)
			}
			c.script(tt.script...)
			if tt.closed {
				c.expectClosed()
				if clients, _, _ := srv.rec.snapshot(); len(clients) != 0 {
					t.Fatal("gateway reached")
				}
			}
			if tt.user != "" {
				clients, _, _ := srv.rec.snapshot()
				if len(clients) != 1 || clients[0].User != tt.user || !clients[0].Authenticated || !clients[0].TLS {
					t.Fatalf("gateway clients %+v", clients)
				}
			}
			if strings.Contains(srv.logs.String(), testPassword) {
				t.Fatal("password in the logs")
			}
		})
	}
}

// TestAuthDuringTransactionRefused: AUTH after MAIL is refused (503 5.5.1), and a trusted
// client that authenticates between transactions gets a new gateway session that knows it.
func TestAuthDuringTransactionRefused(t *testing.T) {
	cfg, tlsCfg := authConfig(t)
	cfg.AllowedNetworks = nil // loopback trusted: MAIL works before AUTH
	srv := startServer(t, cfg, nil)
	c := dial(t, srv.addr)
	c.do("EHLO client.example", "250")
	c.startTLS(tlsCfg.RootCAs)
	c.script(
		"EHLO client.example", "250",
		"MAIL FROM:<a@bank.example>", "250 ",
		"AUTH PLAIN "+plain("", testUser, testPassword), "503 5.5.1 AUTH not permitted during a mail transaction",
		"RSET", "250 ",
		"AUTH PLAIN "+plain("", testUser, testPassword), "235 ",
		"MAIL FROM:<a@bank.example>", "250 ",
	)
	clients, events, _ := srv.rec.snapshot()
	if len(clients) != 2 || clients[0].Authenticated || !clients[1].Authenticated || clients[1].User != testUser {
		t.Fatalf("gateway clients %+v", clients)
	}
	want := []string{"new", "mail a@bank.example 0", "reset", "close", "new", "mail a@bank.example 0"}
	if strings.Join(events, ",") != strings.Join(want, ",") {
		t.Fatalf("gateway events %q, want %q", events, want)
	}
}

// TestPublicListenerPassesUntrusted: on a Public (inbound) listener an untrusted client reaches
// the handler with Trusted false; the handler, not the listener, decides which recipients exist.
// The same client on a submission listener (TestNoOpenRelay) never gets that far.
func TestPublicListenerPassesUntrusted(t *testing.T) {
	cfg, _ := authConfig(t)
	cfg.Public = true
	srv := startServer(t, cfg, nil)
	c := dial(t, srv.addr)
	c.script(
		"EHLO customer.example", "250",
		"MAIL FROM:<alice@customer.example>", "250",
		"RCPT TO:<support@bank.example>", "250",
	)
	c.do("QUIT", "221 ")
	clients, _, _ := srv.rec.snapshot()
	if len(clients) == 0 {
		t.Fatal("the handler never saw the client")
	}
	for _, cl := range clients {
		if cl.Trusted || cl.Authenticated {
			t.Fatalf("untrusted client reported as trusted: %+v", cl)
		}
	}
}
