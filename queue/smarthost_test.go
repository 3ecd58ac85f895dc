package queue

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
)

var rawMessage = []byte("Subject: t\r\n\r\n.leading dot\r\nline\r\n")

func deliveryErrors(t *testing.T, errs []error) []*DeliveryError {
	t.Helper()
	out := make([]*DeliveryError, len(errs))
	for i, err := range errs {
		if err == nil {
			continue
		}
		if !errors.As(err, &out[i]) {
			t.Fatalf("error %d is %T, want *DeliveryError", i, err)
		}
	}
	return out
}

func TestSmarthostConfigValidate(t *testing.T) {
	def := func(f func(*SmarthostConfig)) SmarthostConfig {
		c := DefaultSmarthostConfig()
		c.Addr = "relay:25"
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     SmarthostConfig
		wantErr string // the path of the problem
	}{
		{"defaults", def(func(*SmarthostConfig) {}), ""},
		{"no addr", def(func(c *SmarthostConfig) { c.Addr = "" }), "addr"},
		{"no port", def(func(c *SmarthostConfig) { c.Addr = "relay" }), "addr"},
		{"bad tls", def(func(c *SmarthostConfig) { c.TLS = "maybe" }), "tls"},
		{"zero tls", SmarthostConfig{Addr: "relay:25", Timeout: time.Minute, MaxIdle: 1}, "tls"},
		{"auth without tls", def(func(c *SmarthostConfig) { c.TLS, c.Username = TLSNone, "u" }), "username"},
		{"password without username", def(func(c *SmarthostConfig) { c.Password = "p" }), "password"},
		{"short timeout", def(func(c *SmarthostConfig) { c.Timeout = time.Millisecond }), "timeout"},
		{"zero timeout", def(func(c *SmarthostConfig) { c.Timeout = 0 }), "timeout"},
		{"negative idle", def(func(c *SmarthostConfig) { c.MaxIdle = -1 }), "max_idle"},
		{"zero idle", def(func(c *SmarthostConfig) { c.MaxIdle = 0 }), "max_idle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			err := cfg.Validate()
			if tt.wantErr == "" {
				if err != nil || cfg.TLS != TLSRequired || cfg.MaxIdle != DefaultSmarthostMaxIdle || cfg.Timeout != DefaultSmarthostTimeout {
					t.Fatalf("Validate() = %v, cfg %+v", err, cfg)
				}
				return
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) || fe.Path != tt.wantErr {
				t.Errorf("Validate() = %v, want a problem at %s", err, tt.wantErr)
			}
		})
	}
	// Every problem is reported, not only the first; NewSmarthost returns them as they are.
	_, err := NewSmarthost(SmarthostConfig{Password: "p"})
	var paths []string
	for _, fe := range config.FieldErrors(err) {
		paths = append(paths, fe.Path)
	}
	if want := []string{"addr", "tls", "password", "timeout", "max_idle"}; !slices.Equal(paths, want) {
		t.Errorf("NewSmarthost(zero) = %v: problems at %q, want %q", err, paths, want)
	}
}

func TestSmarthostDelivers(t *testing.T) {
	sk := newSink(t, nil, nil)
	h := newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone})
	errs := h.Deliver(context.Background(), "s@bank.example", []string{"a@a.example", "b@b.example"}, rawMessage)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("recipient %d: %v", i, err)
		}
	}
	msgs := sk.Messages()
	if len(msgs) != 1 || msgs[0].From != "s@bank.example" || len(msgs[0].To) != 2 || !bytes.Equal(msgs[0].Data, rawMessage) {
		t.Fatalf("sink got %+v", msgs)
	}
}

func TestSmarthostReplyMapping(t *testing.T) {
	sk := newSink(t, nil, func(sk *sink) {
		sk.rcptReply = func(to string) error {
			switch to {
			case "gone@a.example":
				return smtpErr(550, [3]int{5, 1, 1}, "no such user")
			case "busy@a.example":
				return smtpErr(450, [3]int{4, 2, 1}, "mailbox busy")
			}
			return nil
		}
	})
	h := newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone})
	to := []string{"ok@a.example", "gone@a.example", "busy@a.example"}
	des := deliveryErrors(t, h.Deliver(context.Background(), "s@bank.example", to, rawMessage))
	if des[0] != nil {
		t.Errorf("ok: %v", des[0])
	}
	if d := des[1]; d == nil || d.Temporary || d.Code != 550 || d.Enhanced != "5.1.1" {
		t.Errorf("550 at RCPT mapped to %+v", d)
	}
	if d := des[2]; d == nil || !d.Temporary || d.Code != 450 || d.Enhanced != "4.2.1" {
		t.Errorf("450 at RCPT mapped to %+v", d)
	}
	if n := sk.received("ok@a.example"); n != 1 {
		t.Errorf("accepted recipient received %d", n)
	}

	// A DATA-level error applies to every accepted recipient, not to the
	// ones already refused.
	sk.mu.Lock()
	sk.dataReply = func() error { return smtpErr(554, [3]int{5, 6, 0}, "content rejected") }
	sk.mu.Unlock()
	des = deliveryErrors(t, h.Deliver(context.Background(), "s@bank.example", to, rawMessage))
	if d := des[0]; d == nil || d.Temporary || d.Code != 554 || d.Enhanced != "5.6.0" {
		t.Errorf("554 at DATA mapped to %+v", d)
	}
	if d := des[1]; d == nil || d.Code != 550 {
		t.Errorf("refused recipient got %+v, want its own 550", d)
	}
	sk.mu.Lock()
	sk.dataReply = func() error { return smtpErr(451, [3]int{4, 3, 0}, "queue full") }
	sk.mu.Unlock()
	des = deliveryErrors(t, h.Deliver(context.Background(), "s@bank.example", to[:1], rawMessage))
	if d := des[0]; d == nil || !d.Temporary || d.Code != 451 {
		t.Errorf("451 at DATA mapped to %+v", d)
	}
}

func TestSmarthostNetworkErrorIsTemporary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := newSmarthost(t, SmarthostConfig{Addr: addr, TLS: TLSNone})
	for _, d := range deliveryErrors(t, h.Deliver(context.Background(), "s@bank.example", []string{"a@a.example"}, rawMessage)) {
		if d == nil || !d.Temporary || d.Enhanced != "4.4.1" {
			t.Errorf("connection refused mapped to %+v", d)
		}
	}
}

// STARTTLS required against a server that does not offer it: nothing is
// sent, the error is temporary, and the message stays queued.
func TestSmarthostRequiredTLSNotOffered(t *testing.T) {
	sk := newSink(t, nil, nil)
	h := newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSRequired})
	for _, d := range deliveryErrors(t, h.Deliver(context.Background(), "s@bank.example", []string{"a@a.example"}, rawMessage)) {
		if d == nil || !d.Temporary || d.Enhanced != "4.7.10" {
			t.Errorf("missing STARTTLS mapped to %+v", d)
		}
	}

	s := openSpool(t, t.TempDir(), h)
	start(t, s)
	id, err := s.Put(context.Background(), testMessage("s@bank.example", "a@a.example"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "attempt", attempts(s, id, 1))
	in, err := s.Get(id)
	if err != nil {
		t.Fatalf("message left the queue: %v", err)
	}
	if r := in.Recipients[0]; r.Status != "pending" || !strings.Contains(r.LastError, "TLS") {
		t.Errorf("recipient %+v, want pending with a TLS error", r)
	}
	if len(sk.Messages()) != 0 {
		t.Errorf("a message was sent in the clear")
	}
}

func TestSmarthostRequiredTLSUntrustedCertificate(t *testing.T) {
	cert, _ := selfSigned(t)
	sk := newSink(t, &tls.Config{Certificates: []tls.Certificate{cert}}, nil)
	h := newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSRequired}) // system roots only
	for _, d := range deliveryErrors(t, h.Deliver(context.Background(), "s@bank.example", []string{"a@a.example"}, rawMessage)) {
		if d == nil || !d.Temporary || d.Enhanced != "4.7.10" {
			t.Errorf("untrusted certificate mapped to %+v", d)
		}
	}
	if len(sk.Messages()) != 0 {
		t.Errorf("a message was sent")
	}
}

func TestSmarthostSTARTTLSAndAuth(t *testing.T) {
	cert, pool := selfSigned(t)
	sk := newSink(t, &tls.Config{Certificates: []tls.Certificate{cert}}, func(sk *sink) {
		sk.user, sk.pass = "relay", "s3cret"
	})
	h := newSmarthost(t, SmarthostConfig{
		Addr: sk.Addr, TLS: TLSRequired, TLSConfig: &tls.Config{RootCAs: pool},
		Username: "relay", Password: "s3cret",
	})
	if errs := h.Deliver(context.Background(), "s@bank.example", []string{"a@a.example"}, rawMessage); errs[0] != nil {
		t.Fatalf("Deliver over STARTTLS: %v", errs[0])
	}
	msgs := sk.Messages()
	if len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("sink got %+v, want one message over TLS", msgs)
	}

	bad := newSmarthost(t, SmarthostConfig{
		Addr: sk.Addr, TLS: TLSRequired, TLSConfig: &tls.Config{RootCAs: pool},
		Username: "relay", Password: "wrong",
	})
	for _, d := range deliveryErrors(t, bad.Deliver(context.Background(), "s@bank.example", []string{"a@a.example"}, rawMessage)) {
		if d == nil || !d.Temporary || d.Code != 535 {
			t.Errorf("failed AUTH mapped to %+v, want temporary (a configuration problem must not bounce mail)", d)
		}
	}
}

func TestSmarthostOpportunistic(t *testing.T) {
	cert, _ := selfSigned(t)
	tlsSink := newSink(t, &tls.Config{Certificates: []tls.Certificate{cert}}, nil)
	plainSink := newSink(t, nil, nil)
	for _, tt := range []struct {
		name    string
		sink    *sink
		wantTLS bool
	}{{"offered", tlsSink, true}, {"not offered", plainSink, false}} {
		t.Run(tt.name, func(t *testing.T) {
			h := newSmarthost(t, SmarthostConfig{Addr: tt.sink.Addr, TLS: TLSOpportunistic})
			if errs := h.Deliver(context.Background(), "s@bank.example", []string{"a@a.example"}, rawMessage); errs[0] != nil {
				t.Fatal(errs[0])
			}
			if msgs := tt.sink.Messages(); len(msgs) != 1 || msgs[0].TLS != tt.wantTLS {
				t.Fatalf("sink got %+v, want TLS=%v", msgs, tt.wantTLS)
			}
		})
	}
	t.Run("credentials never in the clear", func(t *testing.T) {
		h := newSmarthost(t, SmarthostConfig{Addr: plainSink.Addr, TLS: TLSOpportunistic, Username: "u", Password: "p"})
		for _, d := range deliveryErrors(t, h.Deliver(context.Background(), "s@bank.example", []string{"a@a.example"}, rawMessage)) {
			if d == nil || !d.Temporary || d.Enhanced != "4.7.10" {
				t.Errorf("AUTH without TLS mapped to %+v", d)
			}
		}
	})
}

func TestSmarthostReusesConnections(t *testing.T) {
	cert, pool := selfSigned(t)
	sk := newSink(t, &tls.Config{Certificates: []tls.Certificate{cert}}, func(sk *sink) {
		sk.rcptReply = func(to string) error {
			if to == "gone@a.example" {
				return smtpErr(550, [3]int{5, 1, 1}, "no such user")
			}
			return nil
		}
	})
	h := newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSRequired, TLSConfig: &tls.Config{RootCAs: pool}})
	for i := range 3 {
		to := []string{"a@a.example"}
		if i == 1 {
			to = append(to, "gone@a.example") // a refused RCPT keeps the connection
		}
		if errs := h.Deliver(context.Background(), "s@bank.example", to, rawMessage); errs[0] != nil {
			t.Fatalf("message %d: %v", i, errs[0])
		}
	}
	if n := len(sk.Messages()); n != 3 {
		t.Fatalf("sink got %d messages, want 3", n)
	}
	if n := sk.conns.Load(); n != 1 {
		t.Fatalf("%d connections for 3 messages, want 1", n)
	}

	// After an error at DATA the connection is dropped.
	sk.mu.Lock()
	sk.dataReply = func() error { return smtpErr(451, [3]int{4, 3, 0}, "try again") }
	sk.mu.Unlock()
	h.Deliver(context.Background(), "s@bank.example", []string{"a@a.example"}, rawMessage)
	sk.mu.Lock()
	sk.dataReply = nil
	sk.mu.Unlock()
	if errs := h.Deliver(context.Background(), "s@bank.example", []string{"a@a.example"}, rawMessage); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if n := sk.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want a new one after the DATA error", n)
	}
}

func TestSmarthostReconnectsWhenIdleConnectionDied(t *testing.T) {
	sk := newSink(t, nil, nil)
	h := newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone})
	if errs := h.Deliver(context.Background(), "s@bank.example", []string{"a@a.example"}, rawMessage); errs[0] != nil {
		t.Fatal(errs[0])
	}
	h.mu.Lock()
	for _, c := range h.idle {
		c.nc.Close() // the server hung up meanwhile
	}
	h.mu.Unlock()
	if errs := h.Deliver(context.Background(), "s@bank.example", []string{"a@a.example"}, rawMessage); errs[0] != nil {
		t.Fatalf("a dead idle connection failed the delivery: %v", errs[0])
	}
	if n := sk.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}
