package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/api"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/logtest"
	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

// originLine is the WICG origin-bound line that ends an OTP mail's text.
var originLine = regexp.MustCompile(`(?m)^@bank\.example #([0-9]{6})\r?$`)

// TestServeOTPEndToEnd: online banking asks for a payment code over the API; the code goes out
// encrypted to alice in the OTP lane, openssl opens it and finds the code, the amount and the
// payee inside (and the code in no outer header field); verifying with another amount is
// mismatch and spends the code; a fresh code verifies once and is then used; a keyless customer
// gets 409 and no mail; the code is in no log line, spool file or store file.
func TestServeOTPEndToEnd(t *testing.T) {
	log, logs := logtest.New()
	inst, cfg, alice, carol := testInstanceLogging(t, nil, log)
	secret := testAPIToken(t, inst, api.ScopeOTP)
	tx := map[string]string{"amount": "1250.00", "currency": "EUR", "payee_name": "Erika Mustermann", "payee_account": "DE02120300000000202051"}
	issue := func() (api.OTPIssued, string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"address": "alice@example.com", "purpose": "payment", "transaction": tx})
		before, _ := os.ReadDir(filepath.Join(cfg.Delivery.Maildir, "new"))
		var got api.OTPIssued
		if code := apiCall(t, inst, "POST", "/v1/otp", secret, "application/json", body, &got); code != http.StatusCreated {
			t.Fatalf("issue: %d", code)
		}
		if got.Method != "smime" || got.MaskedAddress != "a***e@e*****e.com" {
			t.Fatalf("issue answer: %+v", got)
		}
		if _, err := waitForMaildir(cfg.Delivery.Maildir, len(before)+1, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		mail := newest(t, cfg)
		outer, _, _ := bytes.Cut(mail, []byte("\r\n\r\n"))
		opened := opensslOpen(t, cfg, alice, mail)
		m := originLine.FindSubmatch(opened)
		if m == nil {
			t.Fatalf("no origin-bound line in the opened OTP mail:\n%s", opened)
		}
		code := string(m[1])
		if bytes.Contains(outer, []byte(code)) || bytes.Contains(mail, []byte(code)) {
			t.Fatal("the code is readable outside the encryption")
		}
		for _, want := range []string{"Erika Mustermann", "DE02120300000000202051", "1250"} {
			if !bytes.Contains(opened, []byte(want)) {
				t.Errorf("the OTP mail does not show %q", want)
			}
		}
		return got, code
	}
	verify := func(id, code string, tx map[string]string) api.OTPVerdict {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"code": code, "transaction": tx})
		var v api.OTPVerdict
		if status := apiCall(t, inst, "POST", "/v1/otp/"+id+"/verify", secret, "application/json", body, &v); status != http.StatusOK {
			t.Fatalf("verify: %d", status)
		}
		return v
	}
	first, code1 := issue()
	changed := map[string]string{}
	for k, v := range tx {
		changed[k] = v
	}
	changed["amount"] = "9250.00"
	if v := verify(first.ID, code1, changed); v.Result != "mismatch" {
		t.Fatalf("a changed amount: %+v", v)
	}
	if v := verify(first.ID, code1, tx); v.Result == "verified" {
		t.Fatal("a code verified after a mismatch: a changed transaction needs a new code")
	}
	second, code2 := issue()
	wrong := "000000"
	if wrong == code2 {
		wrong = "111111"
	}
	if v := verify(second.ID, wrong, tx); v.Result != "wrong-code" || v.AttemptsLeft == nil || *v.AttemptsLeft != 4 {
		t.Fatalf("a wrong code: %+v", v)
	}
	if v := verify(second.ID, code2, tx); v.Result != "verified" {
		t.Fatalf("the right code: %+v", v)
	}
	if v := verify(second.ID, code2, tx); v.Result != "used" {
		t.Fatalf("the code again: %+v", v)
	}
	// An OpenPGP customer's code opens with gpg, signed by the bank (GOODSIG, GOODMDC).
	body, _ := json.Marshal(map[string]any{"address": "carol@example.org", "purpose": "login", "locale": "de"})
	before, _ := os.ReadDir(filepath.Join(cfg.Delivery.Maildir, "new"))
	var pgpIssued api.OTPIssued
	if status := apiCall(t, inst, "POST", "/v1/otp", secret, "application/json", body, &pgpIssued); status != http.StatusCreated || pgpIssued.Method != "pgp" {
		t.Fatalf("a code for carol: %d %+v", status, pgpIssued)
	}
	if _, err := waitForMaildir(cfg.Delivery.Maildir, len(before)+1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	pub, err := keys.DataDir(cfg.Data).Export("pgp")
	if err != nil {
		t.Fatal(err)
	}
	out, status, err := interop.Try(t, armoredMessage(newest(t, cfg)), "gpg", append(gnupgHome(t, carol, pub), "--decrypt")...)
	if err != nil || !bytes.Contains(status, []byte("[GNUPG:] GOODSIG")) || !bytes.Contains(status, []byte("[GNUPG:] GOODMDC")) {
		t.Fatalf("gpg: %v\n%s", err, status)
	}
	if m := originLine.FindSubmatch(mime.ToCRLF(out)); m == nil {
		t.Fatalf("no code in carol's OTP mail as gpg opened it:\n%s", out)
	} else if v := verify(pgpIssued.ID, string(m[1]), nil); v.Result != "verified" {
		t.Fatalf("carol's code: %+v", v)
	}

	body, _ = json.Marshal(map[string]any{"address": "bob@example.net", "purpose": "login"})
	if status := apiCall(t, inst, "POST", "/v1/otp", secret, "application/json", body, nil); status != http.StatusConflict {
		t.Fatalf("a code for keyless bob: %d, want 409", status)
	}
	other := testAPIToken(t, inst, api.ScopeOTP)
	b, _ := json.Marshal(map[string]any{"code": code2})
	if status := apiCall(t, inst, "POST", "/v1/otp/"+second.ID+"/verify", other, "application/json", b, nil); status != http.StatusNotFound {
		t.Fatalf("another client's code: %d, want 404", status)
	}

	// Counted per event and purpose, never with a code.
	_, metrics := httpGet(t, "http://"+inst.ops.Addr().String()+"/metrics")
	for _, want := range []string{`sealpost_otp_events_total{event="issued",purpose="payment"} 2`, `sealpost_otp_events_total{event="mismatch",purpose="payment"} 1`,
		`sealpost_otp_events_total{event="verified",purpose="login"} 1`, `sealpost_otp_events_total{event="no-key",purpose="login"} 1`,
		// the codes' latency to the next hop, in buckets fine enough for the 20 ms target
		`sealpost_delivery_duration_seconds_bucket{class="otp",queue="outbound",le="0.005"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, code := range []string{code1, code2} {
		if strings.Contains(metrics, code) {
			t.Error("the metrics hold a code")
		}
	}

	// The codes are nowhere but in the encrypted mail.
	for _, code := range []string{code1, code2} {
		if strings.Contains(logs.String(), code) {
			t.Errorf("the log holds a code")
		}
		filepath.Walk(cfg.Data, func(path string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() || strings.HasPrefix(path, filepath.Join(cfg.Data, "outbox")) {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(code)) {
				t.Errorf("%s holds a code", path)
			}
			return nil
		})
	}
}

// TestServeOTPRateLimit: the sixth code for an address within ten minutes is 429 with Retry-After,
// and no mail goes out for it.
func TestServeOTPRateLimit(t *testing.T) {
	inst, cfg, _, _ := testInstance(t, nil)
	secret := testAPIToken(t, inst, api.ScopeOTP)
	body, _ := json.Marshal(map[string]any{"address": "alice@example.com", "purpose": "login"})
	for i := range 5 {
		if status := apiCall(t, inst, "POST", "/v1/otp", secret, "application/json", body, nil); status != http.StatusCreated {
			t.Fatalf("code %d: %d", i+1, status)
		}
	}
	req, _ := http.NewRequest("POST", "http://"+inst.api.Addr().String()+"/v1/otp", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the sixth code: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if msgs, err := waitForMaildir(cfg.Delivery.Maildir, 5, 30*time.Second); err != nil || len(msgs) != 5 {
		t.Fatalf("%d OTP mails, want 5: %v", len(msgs), err)
	}
}

// TestServeCallVerification: the customer gets one encrypted mail with both codes; the agent's
// console sends what the customer read out: a wrong code is wrong-code, the right one returns
// the agent's code exactly as the mail shows it, once.
func TestServeCallVerification(t *testing.T) {
	inst, cfg, alice, _ := testInstance(t, nil)
	secret := testAPIToken(t, inst, api.ScopeOTP)
	body, _ := json.Marshal(map[string]any{"address": "alice@example.com", "agent": "Jana Novak"})
	var call api.OTPIssued
	if status := apiCall(t, inst, "POST", "/v1/call-verifications", secret, "application/json", body, &call); status != http.StatusCreated {
		t.Fatalf("call verification: %d", status)
	}
	if _, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	opened := opensslOpen(t, cfg, alice, newest(t, cfg))
	codes := regexp.MustCompile(`(?m)^ +([0-9]{6})\r?$`).FindAllSubmatch(opened, -1)
	if len(codes) != 2 || !bytes.Contains(opened, []byte("Jana Novak")) {
		t.Fatalf("the call mail does not show two codes and the agent:\n%s", opened)
	}
	customer, agent := string(codes[0][1]), string(codes[1][1])
	check := func(code string) api.OTPVerdict {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"code": code})
		var v api.OTPVerdict
		if status := apiCall(t, inst, "POST", "/v1/call-verifications/"+call.ID+"/customer-code", secret, "application/json", b, &v); status != http.StatusOK {
			t.Fatalf("customer code: %d", status)
		}
		return v
	}
	if v := check(agent); v.Result != "wrong-code" || v.AgentCode != "" {
		t.Fatalf("the agent's code as the customer's: %+v", v)
	}
	if v := check(customer); v.Result != "verified" || v.AgentCode != agent {
		t.Fatalf("the customer's code: %+v, want the agent code %s", v, agent)
	}
	if v := check(customer); v.Result != "used" || v.AgentCode != "" {
		t.Fatalf("the customer's code again: %+v", v)
	}
}

// TestOTPIssuedOnOneNodeVerifiesOnTheOther: two nodes on one PostgreSQL with the same otp.key: a
// code node A mailed verifies through node B's API, once.
func TestOTPIssuedOnOneNodeVerifiesOnTheOther(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.PasswordDSN(pg.NewDatabase(t), pgtest.Password)
	a, cfgA, _, aliceA := pgNodeWith(t, dsn, nil)
	key, err := os.ReadFile(filepath.Join(cfgA.Data, keys.OTPKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	b, _, _, _ := pgNodeWith(t, dsn, map[string][]byte{keys.OTPKeyFile: key})
	secret := testAPIToken(t, a, api.ScopeOTP)
	body, _ := json.Marshal(map[string]any{"address": "alice@example.com", "purpose": "login"})
	var got api.OTPIssued
	if status := apiCall(t, a, "POST", "/v1/otp", secret, "application/json", body, &got); status != http.StatusCreated {
		t.Fatalf("issue on A: %d", status)
	}
	if _, err := waitForMaildir(cfgA.Delivery.Maildir, 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	m := originLine.FindSubmatch(opensslOpen(t, cfgA, aliceA, newest(t, cfgA)))
	if m == nil {
		t.Fatal("no code in A's mail")
	}
	check, _ := json.Marshal(map[string]any{"code": string(m[1])})
	var v api.OTPVerdict
	if status := apiCall(t, b, "POST", "/v1/otp/"+got.ID+"/verify", secret, "application/json", check, &v); status != http.StatusOK || v.Result != "verified" {
		t.Fatalf("verify on B: %d %+v", status, v)
	}
	if status := apiCall(t, a, "POST", "/v1/otp/"+got.ID+"/verify", secret, "application/json", check, &v); status != http.StatusOK || v.Result != "used" {
		t.Fatalf("the same code on A after B: %d %+v", status, v)
	}
}

// TestServeOTPBadInput: hostile or wrong requests get their problem and no mail goes out.
func TestServeOTPBadInput(t *testing.T) {
	inst, cfg, _, _ := testInstance(t, nil)
	secret := testAPIToken(t, inst, api.ScopeOTP)
	tx := map[string]string{"amount": "12.50", "currency": "EUR", "payee_name": "P", "payee_account": "DE02120300000000202051"}
	with := func(k, v string) map[string]string {
		c := map[string]string{}
		for a, b := range tx {
			c[a] = b
		}
		c[k] = v
		return c
	}
	for name, c := range map[string]struct {
		body any
		want int
	}{
		"unknown purpose":      {map[string]any{"address": "alice@example.com", "purpose": "lunch"}, 422},
		"payment without a tx": {map[string]any{"address": "alice@example.com", "purpose": "payment"}, 422},
		"amount not decimal":   {map[string]any{"address": "alice@example.com", "purpose": "payment", "transaction": with("amount", "12,50")}, 422},
		"amount negative":      {map[string]any{"address": "alice@example.com", "purpose": "payment", "transaction": with("amount", "-1")}, 422},
		"unknown currency":     {map[string]any{"address": "alice@example.com", "purpose": "payment", "transaction": with("currency", "XXY")}, 422},
		"ttl over the maximum": {map[string]any{"address": "alice@example.com", "purpose": "login", "ttl": 3600}, 422},
		"not an address":       {map[string]any{"address": "alice", "purpose": "login"}, 400},
		"unknown field":        {map[string]any{"address": "alice@example.com", "purpose": "login", "code": "123456"}, 400},
	} {
		b, _ := json.Marshal(c.body)
		if status := apiCall(t, inst, "POST", "/v1/otp", secret, "application/json", b, nil); status != c.want {
			t.Errorf("%s: %d, want %d", name, status, c.want)
		}
	}
	for name, code := range map[string]string{"letters": "12ab56", "too short": "123", "empty": ""} {
		b, _ := json.Marshal(map[string]any{"code": code})
		if status := apiCall(t, inst, "POST", "/v1/otp/otp_aaaaaaaaaaaaaaaaaaaaaaaaaa/verify", secret, "application/json", b, nil); status != 400 && status != 404 {
			t.Errorf("verify with %s: %d, want 400", name, status)
		}
	}
	// A code's mail is queued (fsynced) before its 201: none is queued or delivered now.
	queued, _ := os.ReadDir(filepath.Join(cfg.Data, "spool", "queue"))
	delivered, _ := os.ReadDir(filepath.Join(cfg.Delivery.Maildir, "new"))
	if len(queued)+len(delivered) != 0 {
		t.Fatalf("%d mails queued and %d delivered for refused requests", len(queued), len(delivered))
	}
}
