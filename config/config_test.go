package config

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"testing"
)

func TestFieldError(t *testing.T) {
	fe := &FieldError{Path: "smtp.tls_cert", Problem: "cannot read it", Err: fs.ErrNotExist}
	if fe.Error() != "smtp.tls_cert: cannot read it" {
		t.Fatalf("Error() = %q", fe)
	}
	if !errors.Is(fe, fs.ErrNotExist) {
		t.Fatal("the cause is not reachable with errors.Is")
	}
	if (&FieldError{Problem: "the file must hold an object, not a list"}).Error() != "the file must hold an object, not a list" {
		t.Fatal("a problem of the whole document has no path in front")
	}
}

func TestPrefix(t *testing.T) {
	sentinel := errors.New("listener address is not loopback")
	tests := []struct {
		name  string
		err   error
		paths []string
	}{
		{"FieldError", &FieldError{Path: "tls_cert", Problem: "x"}, []string{"smtp.tls_cert"}},
		{"Index", &FieldError{Path: "[0].domain", Problem: "x"}, []string{"smtp[0].domain"}},
		{"WholeSection", &FieldError{Problem: "x"}, []string{"smtp"}},
		{"Joined", errors.Join(&FieldError{Path: "addr", Problem: "x"}, nil, &FieldError{Path: "users.bob", Problem: "y"}),
			[]string{"smtp.addr", "smtp.users.bob"}},
		{"NestedJoins", errors.Join(errors.Join(&FieldError{Path: "a", Problem: "x"}), errors.Join(&FieldError{Path: "b", Problem: "y"}, errors.New("z"))),
			[]string{"smtp.a", "smtp.b", "smtp"}},
		{"NotAFieldError", fmt.Errorf("wrapped: %w", sentinel), []string{"smtp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var paths []string
			for _, fe := range FieldErrors(Prefix("smtp", tt.err)) {
				paths = append(paths, fe.Path)
			}
			if !slices.Equal(paths, tt.paths) {
				t.Fatalf("paths %q, want %q", paths, tt.paths)
			}
		})
	}
	if Prefix("smtp", nil) != nil {
		t.Fatal("Prefix of nil is not nil")
	}
	err := Prefix("ops", errors.Join(&FieldError{Path: "addr", Problem: "not loopback", Err: sentinel}))
	if !errors.Is(err, sentinel) {
		t.Fatalf("%v: the cause was lost", err)
	}
	if err := Prefix("inbound", Prefix("listener", &FieldError{Path: "tls_key", Problem: "x"})); err.Error() != "inbound.listener.tls_key: x" {
		t.Fatalf("twice: %q", err)
	}
	var fe *FieldError
	if err := Prefix("smtp", fmt.Errorf("open: %w", fs.ErrNotExist)); !errors.As(err, &fe) || fe.Problem != "open: file does not exist" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("another error: %#v", err)
	}
}

func TestMapKey(t *testing.T) {
	for _, tt := range []struct{ path, key, want string }{
		{"gateway.policies", "otp", "gateway.policies.otp"},
		{"", "smtp", "smtp"},
		{"smtp.users", "bank-mta_1", "smtp.users.bank-mta_1"},
		{"smtp.users", "mta@bank.example", `smtp.users["mta@bank.example"]`},
		{"extra", "", `extra[""]`},
		{"extra", `a"b`, `extra["a\"b"]`},
	} {
		if got := MapKey(tt.path, tt.key); got != tt.want {
			t.Errorf("MapKey(%q, %q) = %q, want %q", tt.path, tt.key, got, tt.want)
		}
	}
}

func TestDuration(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1h30m")); err != nil || d != Duration(90*60e9) {
		t.Fatalf("1h30m: %v, %v", d, err)
	}
	if b, _ := Duration(5 * 60e9).MarshalText(); string(b) != "5m0s" {
		t.Fatalf("MarshalText = %s", b)
	}
	err := d.UnmarshalText([]byte("5 minutes"))
	if err == nil || err.Error() != `"5 minutes" is not a duration (use e.g. 5m, 90s, 120h)` {
		t.Fatalf("5 minutes: %v", err)
	}
	if d != Duration(90*60e9) {
		t.Fatal("a failed UnmarshalText changed the value")
	}
}
