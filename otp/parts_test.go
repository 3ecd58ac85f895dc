package otp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/otp"
)

func TestMaskAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@example.com", "a***e@e*****e.com"},
		{"al@example.com", "a*@e*****e.com"},
		{"a@b.example.org", "*@*.e*****e.org"},
		{"bo@ex.co.uk", "b*@e*.c*.uk"},
		{"jürgen@bank.de", "j****n@b**k.de"},
		{"x@localhost", "*@l*******t"},
		{"no-at-sign", "n********n"},
		{"", ""},
	} {
		if got := otp.MaskAddress(tc.in); got != tc.want {
			t.Errorf("MaskAddress(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		amount, currency, want string
		err                    error
	}{
		{"12.5", "EUR", "12.50", nil},
		{"12.50", "EUR", "12.50", nil},
		{"12", "EUR", "12.00", nil},
		{"0.01", "EUR", "0.01", nil},
		{"1500", "JPY", "1500", nil},
		{"1.234", "KWD", "1.234", nil},
		{"1.2345", "CLF", "1.2345", nil},
		{"999999999999999999.99", "USD", "999999999999999999.99", nil},
		{"1.5", "JPY", "", otp.ErrBadAmount},
		{"1.", "JPY", "", otp.ErrBadAmount},
		{"1.001", "EUR", "", otp.ErrBadAmount},
		{"12.", "EUR", "", otp.ErrBadAmount},
		{".5", "EUR", "", otp.ErrBadAmount},
		{"012", "EUR", "", otp.ErrBadAmount},
		{"0", "EUR", "", otp.ErrBadAmount},
		{"0.00", "EUR", "", otp.ErrBadAmount},
		{"-1", "EUR", "", otp.ErrBadAmount},
		{"+1", "EUR", "", otp.ErrBadAmount},
		{"1,50", "EUR", "", otp.ErrBadAmount},
		{"1e3", "EUR", "", otp.ErrBadAmount},
		{" 1", "EUR", "", otp.ErrBadAmount},
		{"1.5.0", "EUR", "", otp.ErrBadAmount},
		{"", "EUR", "", otp.ErrBadAmount},
		{"١٢", "EUR", "", otp.ErrBadAmount},
		{"1000000000000000000", "EUR", "", otp.ErrBadAmount},
		{"1", "eur", "", otp.ErrBadCurrency},
		{"1", "XAU", "", otp.ErrBadCurrency},
		{"1", "XXX", "", otp.ErrBadCurrency},
		{"1", "HRK", "", otp.ErrBadCurrency},
		{"1", "", "", otp.ErrBadCurrency},
	} {
		got, err := otp.ParseAmount(tc.amount, tc.currency)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("ParseAmount(%q, %q) = %q, %v; want %q, %v", tc.amount, tc.currency, got, err, tc.want, tc.err)
		}
	}
}

func TestMinorUnits(t *testing.T) {
	for c, want := range map[string]int{"EUR": 2, "USD": 2, "CHF": 2, "GBP": 2, "JPY": 0, "KRW": 0, "BHD": 3, "TND": 3, "UYW": 4, "XCG": 2} {
		if n, ok := otp.MinorUnits(c); !ok || n != want {
			t.Errorf("MinorUnits(%s) = %d, %v; want %d", c, n, ok, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := otp.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for _, tc := range []struct {
		path   string
		change func(*otp.Config)
	}{
		{`purposes.login`, func(c *otp.Config) { delete(c.Purposes, "login") }},
		{`purposes["Wire Transfer"]`, func(c *otp.Config) { c.Purposes["Wire Transfer"] = c.Purposes["login"] }},
		{`purposes.call`, func(c *otp.Config) { c.Purposes["call"] = c.Purposes["login"] }},
		{`purposes.login.digits`, func(c *otp.Config) { setPurpose(c, "login", func(p *otp.Purpose) { p.Digits = 5 }) }},
		{`purposes.login.digits`, func(c *otp.Config) { setPurpose(c, "login", func(p *otp.Purpose) { p.Digits = 11 }) }},
		{`purposes.login.ttl`, func(c *otp.Config) {
			setPurpose(c, "login", func(p *otp.Purpose) { p.TTL = config.Duration(time.Second) })
		}},
		{`purposes.login.ttl`, func(c *otp.Config) {
			setPurpose(c, "login", func(p *otp.Purpose) { p.TTL = config.Duration(20 * time.Minute) })
		}},
		{`purposes.login.max_ttl`, func(c *otp.Config) {
			setPurpose(c, "login", func(p *otp.Purpose) { p.MaxTTL = config.Duration(2 * time.Hour) })
		}},
		{`purposes.change.attempts`, func(c *otp.Config) { setPurpose(c, "change", func(p *otp.Purpose) { p.Attempts = 0 }) }},
		{`purposes.payment.transaction`, func(c *otp.Config) { setPurpose(c, "payment", func(p *otp.Purpose) { p.Transaction = false }) }},
		{`rate_limit.count`, func(c *otp.Config) { c.RateLimit.Count = 0 }},
		{`rate_limit.window`, func(c *otp.Config) { c.RateLimit.Window = 0 }},
		{`call_verification.ttl`, func(c *otp.Config) { c.CallVerification.TTL = 0 }},
		{`call_verification.attempts`, func(c *otp.Config) { c.CallVerification.Attempts = 11 }},
		{`call_verification.digits`, func(c *otp.Config) { c.CallVerification.Digits = 0 }},
	} {
		c := otp.DefaultConfig()
		tc.change(&c)
		fes := config.FieldErrors(c.Validate())
		if len(fes) != 1 || fes[0].Path != tc.path {
			t.Errorf("want one problem at %s, got %v", tc.path, fes)
		}
	}
	c := otp.DefaultConfig()
	c.Purposes["wire-transfer_2"] = otp.Purpose{Digits: 8, TTL: config.Duration(time.Minute), MaxTTL: config.Duration(time.Hour), Attempts: 3, Transaction: true}
	if err := c.Validate(); err != nil {
		t.Fatalf("a configured purpose: %v", err)
	}
	if _, err := otp.New(c, make([]byte, 31), nil); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("New with a 31-byte key: %v", err)
	}
}

func setPurpose(c *otp.Config, name string, f func(*otp.Purpose)) {
	p := c.Purposes[name]
	f(&p)
	c.Purposes[name] = p
}
