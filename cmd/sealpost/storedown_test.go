package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestServeStoreGoneIs451AndNotReady: when the shared store stops answering under a running
// gateway (here the SQLite store is closed; PostgreSQL down is the same to its users), /readyz is
// 503 naming the store, sealpost_store_up is 0, and what needs the store (a support message's
// thread, a reply's registration) gets 451 4.3.0 without the store's error, and nothing is
// queued. A statement needs no store and still goes out.
func TestServeStoreGoneIs451AndNotReady(t *testing.T) {
	inst, _, _, _ := testInstance(t, nil)
	base := "http://" + inst.ops.Addr().String()
	if code, body := httpGet(t, base+"/readyz"); code != 200 || !strings.Contains(body, `"store": "ok"`) {
		t.Fatalf("/readyz with the store up: %d %s", code, body)
	}
	if _, metrics := httpGet(t, base+"/metrics"); !strings.Contains(metrics, "sealpost_store_up 1") {
		t.Fatalf("/metrics with the store up:\n%s", grepLines(metrics, "sealpost_store"))
	}
	if err := inst.data.store.Close(); err != nil {
		t.Fatal(err)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 503 || !strings.Contains(body, `"store": "store does not answer`) {
		t.Fatalf("/readyz with the store gone: %d %s", code, body)
	}
	if _, metrics := httpGet(t, base+"/metrics"); !strings.Contains(metrics, "sealpost_store_up 0") {
		t.Fatalf("/metrics with the store gone:\n%s", grepLines(metrics, "sealpost_store"))
	}
	tempFail := func(what string, res sendResult) {
		t.Helper()
		var se *smtp.SMTPError
		if !errors.As(res.Err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 0}) {
			t.Fatalf("%s with the store gone: %q (%#v), want 451 4.3.0", what, res.Reply, res.Err)
		}
		if strings.Contains(res.Reply, "sql") || strings.Contains(res.Reply, "closed") {
			t.Fatalf("%s: the reply %q shows the store's error", what, res.Reply)
		}
	}
	before, _ := inst.spool.List()
	tempFail("a support message", submit(t, inst, "support@bank.example", []string{"alice@example.com"},
		"From: support@bank.example\r\nTo: alice@example.com\r\nSubject: Case 4711\r\n\r\nPlease confirm the payee.\r\n"))
	if after, err := inst.spool.List(); err != nil || len(after) != len(before) {
		t.Fatalf("the spool holds %d entries after the 451, %d before (%v)", len(after), len(before), err)
	}
	c, err := dialSMTP(inst.InboundAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tempFail("a customer's reply", send(c, "alice@example.com", []string{"support@bank.example"},
		[]byte("From: Alice <alice@example.com>\r\nTo: support@bank.example\r\nSubject: Re: Case 4711\r\nIn-Reply-To: <x@bank.example>\r\n\r\nYes.\r\n")))
	if desk, err := inst.inbound.desk.List(); err != nil || len(desk) != 0 {
		t.Fatalf("the desk's spool holds %d entries (%v)", len(desk), err)
	}
	if res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, e2eStatement); res.Err != nil {
		t.Fatalf("a statement with the store gone: %v", res.Reply)
	}
}
