package otp

import "testing"

// TestCodeDigitsUniform draws 2,000,000 digits: each of 0-9 is within 0.9%
// of a tenth, 4.2 standard deviations. A modulo of whole bytes would draw
// 0-5 1.56% more often than a tenth (26 of 256 bytes), which fails it.
func TestCodeDigitsUniform(t *testing.T) {
	var counts [10]int
	const codes, digits = 200_000, 10
	for range codes {
		c := newCode(digits)
		if len(c) != digits || !decimalDigits(c) {
			t.Fatalf("newCode(%d) = %q", digits, c)
		}
		for i := 0; i < len(c); i++ {
			counts[c[i]-'0']++
		}
	}
	const want = codes * digits / 10
	for d, n := range counts {
		if n < want*991/1000 || n > want*1009/1000 {
			t.Errorf("digit %d drawn %d times of %d, want about %d", d, n, codes*digits, want)
		}
	}
}

func TestIDs(t *testing.T) {
	id := newID(otpPrefix)
	if !validID(id, otpPrefix) || validID(id, callPrefix) || len(id) != len(otpPrefix)+idChars {
		t.Fatalf("newID = %q", id)
	}
	for _, bad := range []string{"otp_", "otp_AAAAAAAAAAAAAAAAAAAAAAAAAA", "otp_aaaaaaaaaaaaaaaaaaaaaaaaa1", "otp_aaaaaaaaaaaaaaaaaaaaaaaaaaa"} {
		if validID(bad, otpPrefix) {
			t.Errorf("validID(%q) = true", bad)
		}
	}
}
