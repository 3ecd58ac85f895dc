package keys

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealerRoundTripAndRefusals(t *testing.T) {
	d := DataDir(t.TempDir())
	key, err := d.MailboxKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(key, "sealpost-test-v1\r\n")
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("Your balance is 1 234,56 EUR")
	sealed, err := s.Seal("item1", plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain[:12]) {
		t.Fatal("sealed bytes hold the plaintext")
	}
	if got, err := s.Open("item1", sealed); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q, %v", got, err)
	}
	other, _ := d.HeldKey()
	wrongKey, _ := NewSealer(other, "sealpost-test-v1\r\n")
	damaged := bytes.Clone(sealed)
	damaged[len(damaged)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"another ID":  func() ([]byte, error) { return s.Open("item2", sealed) },
		"another key": func() ([]byte, error) { return wrongKey.Open("item1", sealed) },
		"damaged":     func() ([]byte, error) { return s.Open("item1", damaged) },
		"truncated":   func() ([]byte, error) { return s.Open("item1", sealed[:25]) },
		"clear":       func() ([]byte, error) { return s.Open("item1", plain) },
	} {
		if _, err := open(); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: %v, want ErrSealed", name, err)
		}
	}
	if _, err := NewSealer(key[:16], "x\r\n"); err == nil {
		t.Error("a 16-byte key was taken")
	}
}
