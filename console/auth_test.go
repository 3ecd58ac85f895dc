package console

import (
	"bytes"
	"strings"
	"testing"
)

// TestDummyHashCostsAsAPassword: the hash an unknown name is checked against has the format and
// argon2 parameters of a real one (so it takes as long to refuse), and no password matches it.
func TestDummyHashCostsAsAPassword(t *testing.T) {
	real, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	params := func(h []byte) string { // "$argon2id$v=19$m=…,t=…,p=…": all but salt and key
		parts := strings.Split(string(h), "$")
		if len(parts) != 6 {
			t.Fatalf("hash %q has %d parts", h, len(parts))
		}
		return strings.Join(parts[:4], "$")
	}
	if got, want := params(dummyHash), params(real); got != want {
		t.Errorf("dummy hash parameters %q; a password's are %q", got, want)
	}
	if len(dummyHash) != len(real) {
		t.Errorf("dummy hash is %d bytes, a password's %d: its salt or key length differs", len(dummyHash), len(real))
	}
	for _, pw := range []string{"", "not-a-password-of-anyone", "correct horse"} {
		if VerifyPassword(dummyHash, pw) {
			t.Errorf("password %q matches the dummy hash", pw)
		}
	}
	if !VerifyPassword(real, "correct horse") || bytes.Equal(real, dummyHash) {
		t.Error("the real hash does not verify its own password")
	}
}
