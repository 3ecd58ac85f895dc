package otp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/otp"
)

// payment is the transaction of the tests' payment codes.
var payment = otp.Transaction{Amount: "1250.5", Currency: "EUR", PayeeName: "Müller GmbH", PayeeAccount: "DE89370400440532013000"}

func issue(t *testing.T, s *otp.Service, r otp.Request) otp.Issued {
	t.Helper()
	if r.Address == "" {
		r.Address = "alice@example.com"
	}
	if r.TokenID == "" {
		r.TokenID = tokenA
	}
	is, err := s.Issue(context.Background(), r)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", r, err)
	}
	return is
}

// wrong returns a code of code's length that is not code.
func wrong(code string) string {
	d := (code[0]-'0'+1)%10 + '0'
	return string(d) + code[1:]
}

// TestVerifyResults runs each outcome of Verify on both stores.
func TestVerifyResults(t *testing.T) {
	forEachStore(t, func(t *testing.T, st otp.Store, _ func(testing.TB) otp.Store, _ func(testing.TB) []byte) {
		ctx := context.Background()
		for _, tc := range []struct {
			name string
			// run issues and verifies, returning the last result.
			run  func(s *otp.Service, c *clock) (otp.Result, error)
			want otp.Result
		}{
			{"verified", func(s *otp.Service, _ *clock) (otp.Result, error) {
				is := issue(t, s, otp.Request{Purpose: "login"})
				return s.Verify(ctx, is.ID, is.Code, nil, tokenA)
			}, otp.Result{Status: otp.Verified, Purpose: "login"}},
			{"wrong code", func(s *otp.Service, _ *clock) (otp.Result, error) {
				is := issue(t, s, otp.Request{Purpose: "login"})
				return s.Verify(ctx, is.ID, wrong(is.Code), nil, tokenA)
			}, otp.Result{Status: otp.WrongCode, AttemptsLeft: 4, Purpose: "login"}},
			{"expired", func(s *otp.Service, c *clock) (otp.Result, error) {
				is := issue(t, s, otp.Request{Purpose: "login"})
				c.advance(5 * time.Minute)
				return s.Verify(ctx, is.ID, is.Code, nil, tokenA)
			}, otp.Result{Status: otp.Expired, Purpose: "login"}},
			{"just before expiry", func(s *otp.Service, c *clock) (otp.Result, error) {
				is := issue(t, s, otp.Request{Purpose: "login", TTL: time.Minute})
				c.advance(time.Minute - time.Nanosecond)
				return s.Verify(ctx, is.ID, is.Code, nil, tokenA)
			}, otp.Result{Status: otp.Verified, Purpose: "login"}},
			{"locked", func(s *otp.Service, _ *clock) (otp.Result, error) {
				is := issue(t, s, otp.Request{Purpose: "change"})
				for i := 4; i >= 0; i-- {
					r, err := s.Verify(ctx, is.ID, wrong(is.Code), nil, tokenA)
					if err != nil || r.Status != otp.WrongCode || r.AttemptsLeft != i {
						return r, fmt.Errorf("attempt %d: %+v, %v; want wrong-code with %d left", 5-i, r, err, i)
					}
				}
				return s.Verify(ctx, is.ID, is.Code, nil, tokenA)
			}, otp.Result{Status: otp.Locked, Purpose: "change"}},
			{"mismatch", func(s *otp.Service, _ *clock) (otp.Result, error) {
				is := issue(t, s, otp.Request{Purpose: "payment", Transaction: &payment})
				other := payment
				other.Amount = "1250.51"
				return s.Verify(ctx, is.ID, is.Code, &other, tokenA)
			}, otp.Result{Status: otp.Mismatch, Purpose: "payment"}},
			{"mismatch invalidates", func(s *otp.Service, _ *clock) (otp.Result, error) {
				is := issue(t, s, otp.Request{Purpose: "payment", Transaction: &payment})
				if r, err := s.Verify(ctx, is.ID, is.Code, nil, tokenA); r.Status != otp.Mismatch {
					return r, fmt.Errorf("without the transaction: %+v, %v; want mismatch", r, err)
				}
				return s.Verify(ctx, is.ID, is.Code, &payment, tokenA)
			}, otp.Result{Status: otp.Locked, Purpose: "payment"}},
			{"used", func(s *otp.Service, _ *clock) (otp.Result, error) {
				is := issue(t, s, otp.Request{Purpose: "login"})
				if r, err := s.Verify(ctx, is.ID, is.Code, nil, tokenA); r.Status != otp.Verified {
					return r, fmt.Errorf("first verify: %+v, %v", r, err)
				}
				return s.Verify(ctx, is.ID, is.Code, nil, tokenA)
			}, otp.Result{Status: otp.Used, Purpose: "login"}},
			{"not found", func(s *otp.Service, _ *clock) (otp.Result, error) {
				return s.Verify(ctx, "otp_aaaaaaaaaaaaaaaaaaaaaaaaaa", "123456", nil, tokenA)
			}, otp.Result{Status: otp.NotFound}},
			{"malformed ID", func(s *otp.Service, _ *clock) (otp.Result, error) {
				return s.Verify(ctx, "otp_'; DROP TABLE otp_codes", "123456", nil, tokenA)
			}, otp.Result{Status: otp.NotFound}},
			{"another token's", func(s *otp.Service, _ *clock) (otp.Result, error) {
				is := issue(t, s, otp.Request{Purpose: "login"})
				r, err := s.Verify(ctx, is.ID, is.Code, nil, tokenB)
				if err != nil || r.Status != otp.NotFound {
					return r, err
				}
				// Nor did that count an attempt or use it.
				if r, err := s.Verify(ctx, is.ID, wrong(is.Code), nil, tokenA); r.AttemptsLeft != 4 {
					return r, fmt.Errorf("after the foreign verify: %+v, %v; want 4 attempts left", r, err)
				}
				return r, nil
			}, otp.Result{Status: otp.NotFound}},
			{"a call verification's ID", func(s *otp.Service, _ *clock) (otp.Result, error) {
				call, err := s.NewCall(ctx, "alice@example.com", "Agent Smith", tokenA)
				if err != nil {
					return otp.Result{}, err
				}
				id := "otp_" + strings.TrimPrefix(call.ID, "call_")
				return s.Verify(ctx, id, call.CustomerCode, nil, tokenA)
			}, otp.Result{Status: otp.NotFound}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := newClock()
				cfg := otp.DefaultConfig()
				cfg.RateLimit.Count = 100
				got, err := tc.run(newService(t, cfg, st, c), c)
				if err != nil || got != tc.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
				}
			})
		}
	})
}

// TestDynamicLinking: a payment code verifies with its transaction only
// (the amount compared as a number of minor units), and the customer's
// every change is a mismatch.
func TestDynamicLinking(t *testing.T) {
	forEachStore(t, func(t *testing.T, st otp.Store, _ func(testing.TB) otp.Store, _ func(testing.TB) []byte) {
		ctx := context.Background()
		cfg := otp.DefaultConfig()
		cfg.RateLimit.Count = 100
		s := newService(t, cfg, st, newClock())
		for _, tc := range []struct {
			name   string
			change func(*otp.Transaction)
			want   otp.Status
		}{
			{"same", func(*otp.Transaction) {}, otp.Verified},
			{"same amount in other digits", func(tx *otp.Transaction) { tx.Amount = "1250.50" }, otp.Verified},
			{"amount", func(tx *otp.Transaction) { tx.Amount = "1250.05" }, otp.Mismatch},
			{"currency", func(tx *otp.Transaction) { tx.Currency = "CHF" }, otp.Mismatch},
			{"payee name", func(tx *otp.Transaction) { tx.PayeeName = "Muller GmbH" }, otp.Mismatch},
			{"payee account", func(tx *otp.Transaction) { tx.PayeeAccount = "DE89370400440532013001" }, otp.Mismatch},
			{"fields shifted", func(tx *otp.Transaction) {
				tx.PayeeName, tx.PayeeAccount = tx.PayeeName+tx.PayeeAccount[:2], tx.PayeeAccount[2:]
			}, otp.Mismatch},
		} {
			t.Run(tc.name, func(t *testing.T) {
				is := issue(t, s, otp.Request{Purpose: "payment", Transaction: &payment})
				tx := payment
				tc.change(&tx)
				r, err := s.Verify(ctx, is.ID, is.Code, &tx, tokenA)
				if err != nil || r.Status != tc.want {
					t.Fatalf("Verify with %+v: %+v, %v; want %s", tx, r, err, tc.want)
				}
			})
		}
		// A login code bound to a transaction is bound as a payment's.
		is := issue(t, s, otp.Request{Purpose: "login", Transaction: &payment})
		if r, _ := s.Verify(ctx, is.ID, is.Code, nil, tokenA); r.Status != otp.Mismatch {
			t.Fatalf("bound login code without its transaction: %+v, want mismatch", r)
		}
		is = issue(t, s, otp.Request{Purpose: "login"})
		if r, _ := s.Verify(ctx, is.ID, is.Code, &payment, tokenA); r.Status != otp.Mismatch {
			t.Fatalf("unbound code with a transaction: %+v, want mismatch", r)
		}
	})
}

// TestBadInput: each bad request is its error and stores nothing that
// counts against the rate limit.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	st, _, _ := backends[0].open(t)
	cfg := otp.DefaultConfig()
	cfg.RateLimit.Count = 1
	s := newService(t, cfg, st, newClock())
	badTx := func(f func(*otp.Transaction)) *otp.Transaction { tx := payment; f(&tx); return &tx }
	for _, tc := range []struct {
		name string
		r    otp.Request
		want error
	}{
		{"unknown purpose", otp.Request{Purpose: "wire"}, otp.ErrUnknownPurpose},
		{"ttl over maximum", otp.Request{Purpose: "login", TTL: 15*time.Minute + time.Second}, otp.ErrTTL},
		{"ttl below minimum", otp.Request{Purpose: "login", TTL: time.Second}, otp.ErrTTL},
		{"negative ttl", otp.Request{Purpose: "login", TTL: -time.Minute}, otp.ErrTTL},
		{"payment without transaction", otp.Request{Purpose: "payment"}, otp.ErrNoTransaction},
		{"amount not a decimal", otp.Request{Purpose: "payment", Transaction: badTx(func(tx *otp.Transaction) { tx.Amount = "1e3" })}, otp.ErrBadAmount},
		{"amount zero", otp.Request{Purpose: "payment", Transaction: badTx(func(tx *otp.Transaction) { tx.Amount = "0.00" })}, otp.ErrBadAmount},
		{"too many decimals", otp.Request{Purpose: "payment", Transaction: badTx(func(tx *otp.Transaction) { tx.Amount = "1.001" })}, otp.ErrBadAmount},
		{"unknown currency", otp.Request{Purpose: "payment", Transaction: badTx(func(tx *otp.Transaction) { tx.Currency = "EUX" })}, otp.ErrBadCurrency},
		{"no payee", otp.Request{Purpose: "payment", Transaction: badTx(func(tx *otp.Transaction) { tx.PayeeName = "" })}, otp.ErrBadPayee},
		{"payee with a control", otp.Request{Purpose: "payment", Transaction: badTx(func(tx *otp.Transaction) { tx.PayeeAccount = "DE\n89" })}, otp.ErrBadPayee},
		{"no address", otp.Request{Purpose: "login", Address: "alice"}, otp.ErrBadAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.r.Address == "" {
				tc.r.Address = "alice@example.com"
			}
			tc.r.TokenID = tokenA
			is, err := s.Issue(ctx, tc.r)
			if !errors.Is(err, tc.want) || is.Code != "" {
				t.Fatalf("Issue: %+v, %v; want %v", is, err, tc.want)
			}
		})
	}
	is := issue(t, s, otp.Request{Purpose: "payment", Transaction: &payment})
	for _, tc := range []struct {
		name string
		code string
		tx   *otp.Transaction
		want error
	}{
		{"non-digits", "12345a", &payment, otp.ErrBadCode},
		{"too short", "12345", &payment, otp.ErrBadCode},
		{"other length", is.Code + "0", &payment, otp.ErrBadCode},
		{"full-width digits", "１２３４５６", &payment, otp.ErrBadCode},
		{"bad amount", is.Code, badTx(func(tx *otp.Transaction) { tx.Amount = "-5" }), otp.ErrBadAmount},
	} {
		t.Run("verify "+tc.name, func(t *testing.T) {
			if r, err := s.Verify(ctx, is.ID, tc.code, tc.tx, tokenA); !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %+v, %v; want %v", r, err, tc.want)
			}
		})
	}
	// No bad input counted an attempt.
	if r, err := s.Verify(ctx, is.ID, is.Code, &payment, tokenA); err != nil || r.Status != otp.Verified {
		t.Fatalf("after bad input: %+v, %v; want verified", r, err)
	}
}

// TestRateLimit issues from two nodes: the limit is the address's across
// both, and RetryAfter says when the oldest code leaves the window.
func TestRateLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, st otp.Store, reopen func(testing.TB) otp.Store, _ func(testing.TB) []byte) {
		c := newClock()
		cfg := otp.DefaultConfig()
		nodes := []*otp.Service{newService(t, cfg, st, c), newService(t, cfg, reopen(t), c)}
		for i := range 5 {
			issue(t, nodes[i%2], otp.Request{Purpose: "login"})
			c.advance(time.Minute)
		}
		_, err := nodes[1].NewCall(context.Background(), "Alice@EXAMPLE.com", "Agent Smith", tokenA)
		var rl *otp.RateLimitedError
		if !errors.Is(err, otp.ErrRateLimited) || !errors.As(err, &rl) || rl.RetryAfter != 5*time.Minute {
			t.Fatalf("sixth issue: %v (%+v); want ErrRateLimited, retry after 5m", err, rl)
		}
		issue(t, nodes[0], otp.Request{Purpose: "login", Address: "bob@example.com"})
		c.advance(5 * time.Minute)
		issue(t, nodes[1], otp.Request{Purpose: "payment", Transaction: &payment})
		if _, err := nodes[0].Issue(context.Background(), otp.Request{Address: "alice@example.com", Purpose: "login", TokenID: tokenA}); !errors.Is(err, otp.ErrRateLimited) {
			t.Fatalf("issue once the window is full again: %v, want ErrRateLimited", err)
		}
	})
}

// TestConcurrentVerify verifies one code on two nodes at once: exactly one
// verify is Verified, every other Used.
func TestConcurrentVerify(t *testing.T) {
	forEachStore(t, func(t *testing.T, st otp.Store, reopen func(testing.TB) otp.Store, _ func(testing.TB) []byte) {
		c := newClock()
		cfg := otp.DefaultConfig()
		nodes := []*otp.Service{newService(t, cfg, st, c), newService(t, cfg, reopen(t), c)}
		is := issue(t, nodes[0], otp.Request{Purpose: "payment", Transaction: &payment})
		var mu sync.Mutex
		counts := map[otp.Status]int{}
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				r, err := nodes[i%2].Verify(context.Background(), is.ID, is.Code, &payment, tokenA)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				counts[r.Status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if counts[otp.Verified] != 1 || counts[otp.Used] != 15 {
			t.Fatalf("results of 16 verifies at once: %v; want 1 verified, 15 used", counts)
		}
	})
}

// TestConcurrentWrongCodes guesses on two nodes at once: every guess
// counts, and no more than the attempts are answered wrong-code.
func TestConcurrentWrongCodes(t *testing.T) {
	forEachStore(t, func(t *testing.T, st otp.Store, reopen func(testing.TB) otp.Store, _ func(testing.TB) []byte) {
		c := newClock()
		cfg := otp.DefaultConfig()
		nodes := []*otp.Service{newService(t, cfg, st, c), newService(t, cfg, reopen(t), c)}
		is := issue(t, nodes[0], otp.Request{Purpose: "login"})
		var mu sync.Mutex
		counts := map[otp.Status]int{}
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				r, err := nodes[i%2].Verify(context.Background(), is.ID, wrong(is.Code), nil, tokenA)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				counts[r.Status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if counts[otp.WrongCode] != 5 || counts[otp.Locked] != 7 {
			t.Fatalf("results of 12 wrong guesses at once: %v; want 5 wrong-code, 7 locked", counts)
		}
	})
}

// TestTwoNodes: a code issued on one node verifies on the other, whose
// service has the same server key; a node with another key cannot verify.
func TestTwoNodes(t *testing.T) {
	forEachStore(t, func(t *testing.T, st otp.Store, reopen func(testing.TB) otp.Store, _ func(testing.TB) []byte) {
		c := newClock()
		other := reopen(t)
		is := issue(t, newService(t, otp.DefaultConfig(), st, c), otp.Request{Purpose: "payment", Transaction: &payment})
		stranger, err := otp.New(otp.DefaultConfig(), bytes.Repeat([]byte("x"), 32), other, otp.WithClock(c.Now))
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := stranger.Verify(context.Background(), is.ID, is.Code, &payment, tokenA); r.Status != otp.WrongCode {
			t.Fatalf("node with another key: %+v, want wrong-code", r)
		}
		if r, err := newService(t, otp.DefaultConfig(), other, c).Verify(context.Background(), is.ID, is.Code, &payment, tokenA); err != nil || r.Status != otp.Verified {
			t.Fatalf("other node: %+v, %v; want verified", r, err)
		}
	})
}

func TestCallVerification(t *testing.T) {
	forEachStore(t, func(t *testing.T, st otp.Store, reopen func(testing.TB) otp.Store, _ func(testing.TB) []byte) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, otp.DefaultConfig(), st, c)
		call, err := s.NewCall(ctx, "alice@example.com", "Agent Smith", tokenA)
		if err != nil {
			t.Fatal(err)
		}
		if len(call.CustomerCode) != 6 || len(call.AgentCode) != 6 || call.CustomerCode == call.AgentCode ||
			call.MaskedAddress != "a***e@e*****e.com" || !call.ExpiresAt.Equal(c.Now().Add(10*time.Minute)) {
			t.Fatalf("NewCall = %+v", call)
		}
		if r, _ := s.CheckCustomerCode(ctx, call.ID, call.CustomerCode, tokenB); r.Status != otp.NotFound || r.AgentCode != "" {
			t.Fatalf("another token's client: %+v, want not-found", r)
		}
		if r, _ := s.CheckCustomerCode(ctx, call.ID, call.AgentCode, tokenA); r.Status != otp.WrongCode || r.AttemptsLeft != 4 || r.AgentCode != "" {
			t.Fatalf("the agent's code for the customer's: %+v, want wrong-code", r)
		}
		node2 := newService(t, otp.DefaultConfig(), reopen(t), c)
		r, err := node2.CheckCustomerCode(ctx, call.ID, call.CustomerCode, tokenA)
		if err != nil || r.Status != otp.Verified || r.AgentCode != call.AgentCode || r.Purpose != "call" {
			t.Fatalf("customer's code on another node: %+v, %v; want verified with agent code %s", r, err, call.AgentCode)
		}
		if r, _ := s.CheckCustomerCode(ctx, call.ID, call.CustomerCode, tokenA); r.Status != otp.Used || r.AgentCode != "" {
			t.Fatalf("second check: %+v, want used and no agent code", r)
		}
		// An OTP's ID is no call verification's.
		is := issue(t, s, otp.Request{Purpose: "login"})
		if r, _ := s.CheckCustomerCode(ctx, "call_"+strings.TrimPrefix(is.ID, "otp_"), is.Code, tokenA); r.Status != otp.NotFound {
			t.Fatalf("an OTP as a call: %+v, want not-found", r)
		}
		expiring, err := s.NewCall(ctx, "alice@example.com", "Agent Smith", tokenA)
		if err != nil {
			t.Fatal(err)
		}
		c.advance(10 * time.Minute)
		if r, _ := s.CheckCustomerCode(ctx, expiring.ID, expiring.CustomerCode, tokenA); r.Status != otp.Expired || r.AgentCode != "" {
			t.Fatalf("after 10 minutes: %+v, want expired", r)
		}
		for _, agent := range []string{"", "Agent\x00Smith", strings.Repeat("a", 101)} {
			if _, err := s.NewCall(ctx, "alice@example.com", agent, tokenA); !errors.Is(err, otp.ErrBadAgent) {
				t.Errorf("NewCall with agent %q: %v, want ErrBadAgent", agent, err)
			}
		}
		if _, err := s.CheckCustomerCode(ctx, call.ID, "12 456", tokenA); !errors.Is(err, otp.ErrBadCode) {
			t.Fatalf("code with a space: %v, want ErrBadCode", err)
		}
	})
}

// TestCodesNeverStored issues codes and call verifications, verifies some,
// and looks for every code in all the store keeps.
func TestCodesNeverStored(t *testing.T) {
	forEachStore(t, func(t *testing.T, st otp.Store, _ func(testing.TB) otp.Store, dump func(testing.TB) []byte) {
		ctx := context.Background()
		cfg := otp.DefaultConfig()
		// Ten digits: no run of them turns up in random bytes by chance.
		for name, p := range cfg.Purposes {
			p.Digits = 10
			cfg.Purposes[name] = p
		}
		cfg.CallVerification.Digits = 10
		cfg.RateLimit.Count = 100
		s := newService(t, cfg, st, newClock())
		var codes []string
		for i := range 10 {
			is := issue(t, s, otp.Request{Purpose: "payment", Transaction: &payment})
			call, err := s.NewCall(ctx, "alice@example.com", "Agent Smith", tokenA)
			if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, is.Code, call.CustomerCode, call.AgentCode)
			if i%2 == 0 {
				s.Verify(ctx, is.ID, is.Code, &payment, tokenA)
				s.CheckCustomerCode(ctx, call.ID, call.CustomerCode, tokenA)
			}
		}
		all := dump(t)
		if len(all) == 0 {
			t.Fatal("the dump is empty")
		}
		for _, code := range codes {
			if bytes.Contains(all, []byte(code)) {
				t.Errorf("code %s is in the store", code)
			}
		}
	})
}

// TestExpire removes what expired before the rate limit's window, no
// sooner.
func TestExpire(t *testing.T) {
	ctx := context.Background()
	st, _, _ := backends[0].open(t)
	c := newClock()
	s := newService(t, otp.DefaultConfig(), st, c)
	is := issue(t, s, otp.Request{Purpose: "login", TTL: time.Minute})
	c.advance(10 * time.Minute)
	if n, err := s.Expire(ctx); err != nil || n != 0 {
		t.Fatalf("Expire inside the window = %d, %v; want 0", n, err)
	}
	c.advance(time.Minute + time.Nanosecond)
	if n, err := s.Expire(ctx); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1", n, err)
	}
	if r, _ := s.Verify(ctx, is.ID, is.Code, nil, tokenA); r.Status != otp.NotFound {
		t.Fatalf("expired and removed: %+v, want not-found", r)
	}
}
