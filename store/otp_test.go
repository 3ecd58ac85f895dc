package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// testOTP is a valid OTP with ID id for address, created at created.
func testOTP(id, address string, created time.Time) OTP {
	return OTP{
		ID: id, Kind: "otp", TokenID: "tok_abcdefghijklmnop", Purpose: "payment", Address: address, Digits: 6,
		CodeMAC: bytes.Repeat([]byte{1}, 32), Binding: bytes.Repeat([]byte{2}, 32),
		Created: created, Expires: created.Add(5 * time.Minute), AttemptsLeft: 5,
	}
}

func TestOTPPutAndUpdate(t *testing.T) {
	forEachStore(t, func(t *testing.T, s contract, reopen func(testing.TB) contract) {
		ctx := context.Background()
		at := time.Unix(1_800_000_000, 0).UTC()
		o := testOTP("otp_one", "Alice@Example.com", at)
		o.Sealed = []byte("sealed")
		if _, err := s.PutOTP(ctx, o, 5, at.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutOTP(ctx, o, 5, at.Add(-time.Hour)); !errors.Is(err, ErrConflict) {
			t.Fatalf("PutOTP of a taken ID: %v, want ErrConflict", err)
		}
		got, err := reopen(t).UpdateOTP(ctx, o.ID, func(*OTP) (bool, error) { return false, nil })
		if err != nil {
			t.Fatal(err)
		}
		want := o
		want.Address = ""
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("stored\n%+v\nwant\n%+v", got, want)
		}
		used := at.Add(time.Minute)
		got, err = s.UpdateOTP(ctx, o.ID, func(o *OTP) (bool, error) {
			o.AttemptsLeft, o.Used = 4, used
			return true, nil
		})
		if err != nil || got.AttemptsLeft != 4 || !got.Used.Equal(used) {
			t.Fatalf("UpdateOTP = %+v, %v; want 4 attempts left, used at %v", got, err, used)
		}
		for name, f := range map[string]func(*OTP){
			"more attempts": func(o *OTP) { o.AttemptsLeft = 5 },
			"used again":    func(o *OTP) { o.Used = used.Add(time.Second) },
			"unused":        func(o *OTP) { o.Used = time.Time{} },
		} {
			if _, err := s.UpdateOTP(ctx, o.ID, func(o *OTP) (bool, error) { f(o); return true, nil }); !errors.Is(err, ErrInvalid) {
				t.Errorf("UpdateOTP %s: %v, want ErrInvalid", name, err)
			}
		}
		stop := errors.New("stop")
		if _, err := s.UpdateOTP(ctx, o.ID, func(o *OTP) (bool, error) { o.AttemptsLeft = 0; return true, stop }); !errors.Is(err, stop) {
			t.Fatalf("UpdateOTP with f failing: %v", err)
		}
		if got, _ := s.UpdateOTP(ctx, o.ID, func(*OTP) (bool, error) { return false, nil }); got.AttemptsLeft != 4 {
			t.Fatalf("f's failed change was stored: %+v", got)
		}
		if _, err := s.UpdateOTP(ctx, "otp_none", func(*OTP) (bool, error) { return false, nil }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("UpdateOTP of an unknown ID: %v, want ErrNotFound", err)
		}
	})
}

func TestOTPInvalid(t *testing.T) {
	forEachStore(t, func(t *testing.T, s contract, _ func(testing.TB) contract) {
		at := time.Unix(1_800_000_000, 0)
		for name, f := range map[string]func(*OTP){
			"ID":        func(o *OTP) { o.ID = "OTP-1" },
			"token":     func(o *OTP) { o.TokenID = "tok_x" },
			"kind":      func(o *OTP) { o.Kind = "" },
			"purpose":   func(o *OTP) { o.Purpose = "pay\n" },
			"address":   func(o *OTP) { o.Address = "alice" },
			"digits":    func(o *OTP) { o.Digits = 11 },
			"code MAC":  func(o *OTP) { o.CodeMAC = o.CodeMAC[:31] },
			"binding":   func(o *OTP) { o.Binding = []byte{1} },
			"sealed":    func(o *OTP) { o.Sealed = make([]byte, 257) },
			"attempts":  func(o *OTP) { o.AttemptsLeft = -1 },
			"expires":   func(o *OTP) { o.Expires = o.Created },
			"no expiry": func(o *OTP) { o.Expires = time.Time{} },
		} {
			o := testOTP("otp_bad", "alice@example.com", at)
			f(&o)
			if _, err := s.PutOTP(context.Background(), o, 5, at.Add(-time.Hour)); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutOTP with a bad %s: %v, want ErrInvalid", name, err)
			}
		}
		if n := countRows(t, s, "otp_codes"); n != 0 {
			t.Fatalf("%d invalid OTPs stored", n)
		}
	})
}

// TestOTPRateLimit issues from two handles (two nodes): the limit holds
// across them and by AddressKey.
func TestOTPRateLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, s contract, reopen func(testing.TB) contract) {
		ctx := context.Background()
		other := reopen(t)
		at := time.Unix(1_800_000_000, 0).UTC()
		handles := []contract{s, other, s}
		for i, h := range handles {
			if _, err := h.PutOTP(ctx, testOTP(fmt.Sprintf("otp_%d", i), "alice@example.com", at.Add(time.Duration(i)*time.Minute)), 3, at.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		retry, err := other.PutOTP(ctx, testOTP("otp_x", "ALICE@example.COM", at.Add(3*time.Minute)), 3, at.Add(-time.Hour))
		if !errors.Is(err, ErrOTPRateLimited) || !retry.Equal(at) {
			t.Fatalf("fourth PutOTP = %v, %v; want ErrOTPRateLimited, retry from %v", retry, err, at)
		}
		// A lower limit waits for the newer code to leave the window.
		if retry, _ := s.PutOTP(ctx, testOTP("otp_x", "alice@example.com", at.Add(3*time.Minute)), 2, at.Add(-time.Hour)); !retry.Equal(at.Add(time.Minute)) {
			t.Fatalf("limit 2: retry from %v, want %v", retry, at.Add(time.Minute))
		}
		if _, err := s.PutOTP(ctx, testOTP("otp_x", "alice@example.com", at.Add(3*time.Minute)), 3, at); err != nil {
			t.Fatalf("PutOTP once the first left the window: %v", err)
		}
		if _, err := s.PutOTP(ctx, testOTP("otp_y", "bob@example.com", at), 3, at.Add(-time.Hour)); err != nil {
			t.Fatalf("another address: %v", err)
		}
		if n := countRows(t, s, "otp_codes"); n != 5 {
			t.Fatalf("%d codes stored, want 5", n)
		}
	})
}

// TestOTPRateLimitConcurrent issues at once from two handles: no more than
// the limit get in.
func TestOTPRateLimitConcurrent(t *testing.T) {
	forEachStore(t, func(t *testing.T, s contract, reopen func(testing.TB) contract) {
		handles := []contract{s, reopen(t)}
		at := time.Now()
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				o := testOTP(fmt.Sprintf("otp_%d", i), "alice@example.com", at)
				if _, err := handles[i%2].PutOTP(context.Background(), o, 5, at.Add(-time.Hour)); err != nil && !errors.Is(err, ErrOTPRateLimited) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := countRows(t, s, "otp_codes"); n != 5 {
			t.Fatalf("%d codes stored by concurrent issues, want 5", n)
		}
	})
}

// TestOTPUpdateConcurrent marks one OTP used from two handles at once:
// exactly one update sees it unused.
func TestOTPUpdateConcurrent(t *testing.T) {
	forEachStore(t, func(t *testing.T, s contract, reopen func(testing.TB) contract) {
		ctx := context.Background()
		handles := []contract{s, reopen(t)}
		at := time.Now()
		if _, err := s.PutOTP(ctx, testOTP("otp_once", "alice@example.com", at), 5, at.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		winners := 0
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				_, err := handles[i%2].UpdateOTP(ctx, "otp_once", func(o *OTP) (bool, error) {
					if !o.Used.IsZero() {
						return false, nil
					}
					mu.Lock()
					winners++
					mu.Unlock()
					o.Used = time.Now()
					return true, nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		// A winner whose transaction failed would be counted and not stored:
		// the errors above say so.
		if winners != 1 {
			t.Fatalf("%d updates saw the OTP unused, want 1", winners)
		}
	})
}

func TestExpireOTPs(t *testing.T) {
	forEachStore(t, func(t *testing.T, s contract, _ func(testing.TB) contract) {
		ctx := context.Background()
		at := time.Unix(1_800_000_000, 0)
		for i, a := range []string{"alice@example.com", "bob@example.com"} {
			if _, err := s.PutOTP(ctx, testOTP(fmt.Sprintf("otp_%d", i), a, at.Add(time.Duration(i)*time.Hour)), 5, at.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.ExpireOTPs(ctx, at.Add(30*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("ExpireOTPs = %d, %v; want 1", n, err)
		}
		if _, err := s.UpdateOTP(ctx, "otp_0", func(*OTP) (bool, error) { return false, nil }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired OTP: %v, want ErrNotFound", err)
		}
		if r := countRows(t, s, "otp_rate"); r != 1 {
			t.Fatalf("%d rate rows, want 1 (bob's)", r)
		}
	})
}
