package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/sealpost/sealpost/otp"
	"github.com/sealpost/sealpost/outbound"
)

// otpMailbox is the OTP mail the server handed to the outbound pipeline: the codes it carried, so
// that a test can tell whether a call sent mail and whether an answer gave a code away. Addresses
// at nokey.example have no key. (The pipeline itself — signing, encryption, SMTP — is tested
// end to end against openssl and gpg in cmd/sealpost's OTP tests.)
type otpMailbox struct {
	mu    sync.Mutex
	codes []string // every code mailed, in order
}

func (*otpMailbox) Reach(addr string) (string, error) {
	if strings.HasSuffix(strings.ToLower(addr), "@nokey.example") {
		return "", outbound.ErrNoKey
	}
	return "smime", nil
}

func (b *otpMailbox) SendOTP(_ context.Context, m outbound.OTPMail) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.codes = append(b.codes, m.Code)
	return []string{"q"}, nil
}

func (b *otpMailbox) SendCall(_ context.Context, m outbound.CallMail) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.codes = append(b.codes, m.CustomerCode, m.AgentCode)
	return []string{"q"}, nil
}

// mailed is how many codes were mailed so far, and all of them.
func (b *otpMailbox) mailed() (int, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.codes), append([]string(nil), b.codes...)
}

// The OTP routes the fuzz target posts to; an {id} route gets a code issued just before (fresh)
// or the fuzzed id.
var otpFuzzRoutes = []struct{ issue, check string }{
	{issue: "/v1/otp"},
	{issue: "/v1/otp", check: "/v1/otp/%s/verify"},
	{issue: "/v1/call-verifications"},
	{issue: "/v1/call-verifications", check: "/v1/call-verifications/%s/customer-code"},
}

// FuzzOTPCalls: whatever the body (and the id in the path), the OTP and call-verification calls
// answer 200/201 or a 4xx problem document, never 500 and never a panic; mail goes out only with
// a 201 from an issuing call, one mail per code (nothing sent on bad input); and no answer
// carries a code that was mailed, except the agent's code after the customer's was verified.
func FuzzOTPCalls(f *testing.F) {
	for _, seed := range []struct {
		route int
		fresh bool
		id    string
		body  string
	}{
		{0, false, "", `{"address":"alice@example.com","purpose":"login"}`},
		{0, false, "", `{"address":"alice@example.com","purpose":"payment","transaction":{"amount":"12.50","currency":"EUR","payee_name":"ACME","payee_account":"DE89370400440532013000"}}`},
		{0, false, "", `{"address":"alice@example.com","purpose":"payment","transaction":{"amount":"1e3","currency":"EUR","payee_name":"x","payee_account":"y"}}`},
		{0, false, "", `{"address":"alice@example.com","purpose":"payment","transaction":{"amount":"1","currency":"XXX","payee_name":"x","payee_account":"y"}}`},
		{0, false, "", `{"address":"alice@example.com","purpose":"login","ttl":999999}`},
		{0, false, "", `{"address":"alice@example.com","purpose":"nope"}`},
		{0, false, "", `{"address":"c@nokey.example","purpose":"login"}`},
		{0, false, "", `{"address":"alice@example.com\r\nBcc: x@y","purpose":"login"}`},
		{0, false, "", `{"address":"alice@example.com","purpose":"login","locale":"de"}`},
		{0, false, "", `{"address":"alice@example.com","purpose":"login","extra":1}`},
		{1, true, "", `{"code":"123456"}`},
		{1, true, "", `{"code":"12345a"}`},
		{1, true, "", `{"code":"","transaction":{"amount":"12.50","currency":"EUR","payee_name":"ACME","payee_account":"x"}}`},
		{1, false, "otp_AAAAAAAAAAAAAAAAAAAAAAAAAA", `{"code":"123456"}`},
		{1, false, "../../v1/tokens", `{"code":"123456"}`},
		{2, false, "", `{"address":"alice@example.com","agent":"Jo at the bank"}`},
		{2, false, "", `{"address":"alice@example.com","agent":"<script>alert(1)</script>\u0000"}`},
		{3, true, "", `{"code":"654321"}`},
		{3, true, "", `{"code":"654321","transaction":{"amount":"1","currency":"EUR","payee_name":"x","payee_account":"y"}}`},
		{3, false, "call_x", `{"code":"1"}`},
		{0, false, "", `{`},
		{0, false, "", `[]`},
		{0, false, "", `{"address":["a"],"purpose":{}}`},
	} {
		f.Add(seed.route, seed.fresh, seed.id, []byte(seed.body))
	}
	mail := &otpMailbox{}
	h, secret := fuzzServer(f, ScopeOTP, func(st Store) Option {
		key := make([]byte, 32)
		rand.Read(key)
		svc, err := otp.New(otp.DefaultConfig(), key, st.(otp.Store))
		if err != nil {
			f.Fatal(err)
		}
		return WithOTP(svc, mail)
	})
	post := func(path string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	n := 0 // a fresh code goes to a fresh customer, below the rate limit
	f.Fuzz(func(t *testing.T, route int, fresh bool, id string, body []byte) {
		r := otpFuzzRoutes[(route%len(otpFuzzRoutes)+len(otpFuzzRoutes))%len(otpFuzzRoutes)]
		path, issuing := r.issue, r.check == ""
		if !issuing {
			if fresh {
				n++
				fields := map[string]string{"address": fmt.Sprintf("fresh-%d@example.com", n), "purpose": "login"}
				if r.issue != "/v1/otp" {
					fields = map[string]string{"address": fields["address"], "agent": "Jo"}
				}
				issue, _ := json.Marshal(fields)
				w := post(r.issue, issue)
				var got OTPIssued
				if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &got) != nil {
					t.Fatalf("issuing a fresh code: %d %s", w.Code, w.Body.Bytes())
				}
				id = got.ID
			}
			path = fmt.Sprintf(r.check, url.PathEscape(id))
		}
		before, _ := mail.mailed()
		w := post(path, body)
		after, codes := mail.mailed()
		switch {
		case w.Code == http.StatusCreated && issuing:
			if want := map[bool]int{true: 1, false: 2}[r.issue == "/v1/otp"]; after-before != want {
				t.Fatalf("201 from %s with %d codes mailed, want %d", path, after-before, want)
			}
		case w.Code == http.StatusOK && !issuing:
			if after != before {
				t.Fatalf("a check (%s) mailed %d codes", path, after-before)
			}
		case w.Code >= 400 && w.Code < 500:
			if ct := w.Header().Get("Content-Type"); ct != problemContentType {
				t.Fatalf("%d from %s as %q: %s", w.Code, path, ct, w.Body.Bytes())
			}
			if after != before {
				t.Fatalf("%d from %s, yet %d codes were mailed", w.Code, path, after-before)
			}
		default:
			t.Fatalf("%d from %s: %s", w.Code, path, w.Body.Bytes())
		}
		// Every answer is JSON; its expiry's fractional seconds are digits that are no code.
		var answer map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatalf("%d from %s is not JSON: %s", w.Code, path, w.Body.Bytes())
		}
		if _, ok := answer["agent_code"]; ok && (w.Code != http.StatusOK || r.issue != "/v1/call-verifications") {
			t.Fatalf("%d from %s shows an agent's code: %s", w.Code, path, w.Body.Bytes())
		}
		delete(answer, "expires_at")
		delete(answer, "agent_code")
		rest, _ := json.Marshal(answer)
		for _, code := range codes {
			if bytes.Contains(rest, []byte(code)) {
				t.Fatalf("the answer from %s holds a mailed code: %s", path, w.Body.Bytes())
			}
		}
	})
}
