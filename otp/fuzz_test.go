package otp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/otp"
)

// FuzzVerify verifies a fresh payment code with a fuzzed code and
// transaction (or the right code, when right is set): Verified exactly
// when both are the issued ones, Mismatch for the right code with another
// valid transaction, WrongCode otherwise; errors only for bad input.
func FuzzVerify(f *testing.F) {
	f.Add("123456", false, payment.Amount, payment.Currency, payment.PayeeName, payment.PayeeAccount)
	f.Add("", true, payment.Amount, payment.Currency, payment.PayeeName, payment.PayeeAccount)
	f.Add("", true, "1250.50", "EUR", payment.PayeeName, payment.PayeeAccount)
	f.Add("", true, "1250.5", "EUR", payment.PayeeName+"\x00", payment.PayeeAccount)
	f.Add("", true, "1250.5", "JPY", payment.PayeeName, payment.PayeeAccount)
	f.Add("12345a", false, "1", "EUR", "x", "y")
	f.Add("1234567890", false, "00", "EUR", "x", "y")
	st, _, _ := backends[0].open(f)
	cfg := otp.DefaultConfig()
	cfg.RateLimit.Count = 100
	s := newService(f, cfg, st, newClock())
	n := 0
	f.Fuzz(func(t *testing.T, code string, right bool, amount, currency, payee, account string) {
		ctx := context.Background()
		n++
		is, err := s.Issue(ctx, otp.Request{Address: fmt.Sprintf("c%d@example.com", n), Purpose: "payment", Transaction: &payment, TokenID: tokenA})
		if err != nil {
			t.Fatal(err)
		}
		if right {
			code = is.Code
		}
		tx := otp.Transaction{Amount: amount, Currency: currency, PayeeName: payee, PayeeAccount: account}
		r, err := s.Verify(ctx, is.ID, code, &tx, tokenA)
		canon, amountErr := otp.ParseAmount(amount, currency)
		sameTx := amountErr == nil && canon == "1250.50" && currency == "EUR" && payee == payment.PayeeName && account == payment.PayeeAccount
		switch {
		case err != nil:
			if !errors.Is(err, otp.ErrBadCode) && !errors.Is(err, otp.ErrBadAmount) && !errors.Is(err, otp.ErrBadCurrency) && !errors.Is(err, otp.ErrBadPayee) {
				t.Fatalf("Verify(%q, %+v): %v, not an error of bad input", code, tx, err)
			}
			if sameTx && code == is.Code {
				t.Fatalf("the issued code and transaction: %v", err)
			}
		case code == is.Code && sameTx:
			if r.Status != otp.Verified {
				t.Fatalf("the issued code and transaction: %+v", r)
			}
		case code == is.Code:
			if r.Status != otp.Mismatch {
				t.Fatalf("the issued code with %+v: %+v, want mismatch", tx, r)
			}
		case r.Status != otp.WrongCode || r.AttemptsLeft != 4:
			t.Fatalf("code %q for %s: %+v, want wrong-code", code, is.Code, r)
		}
	})
}

// FuzzParseAmount: an accepted amount is canonical (it parses to itself,
// with exactly the currency's decimals) and names the same number as the
// input; what is refused is ErrBadAmount or ErrBadCurrency.
func FuzzParseAmount(f *testing.F) {
	for _, seed := range [][2]string{
		{"12.5", "EUR"}, {"0.01", "EUR"}, {"1500", "JPY"}, {"1.5", "JPY"}, {"1.234", "KWD"}, {"012", "EUR"},
		{"0", "EUR"}, {"-1", "EUR"}, {"1e3", "EUR"}, {"1.", "EUR"}, {"", ""}, {"999999999999999999.99", "USD"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, amount, currency string) {
		got, err := otp.ParseAmount(amount, currency)
		if err != nil {
			if !errors.Is(err, otp.ErrBadAmount) && !errors.Is(err, otp.ErrBadCurrency) {
				t.Fatalf("ParseAmount(%q, %q): %v", amount, currency, err)
			}
			return
		}
		minor, _ := otp.MinorUnits(currency)
		if again, err := otp.ParseAmount(got, currency); err != nil || again != got {
			t.Fatalf("canonical %q of %q parses to %q, %v", got, amount, again, err)
		}
		_, frac, dot := strings.Cut(got, ".")
		if len(frac) != minor || dot != (minor > 0) {
			t.Fatalf("canonical %q has not %d decimals", got, minor)
		}
		trim := func(s string) string {
			if strings.Contains(s, ".") {
				s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
			}
			return s
		}
		if trim(got) != trim(amount) {
			t.Fatalf("canonical %q of %q is another number", got, amount)
		}
	})
}
