package inbound

import (
	"reflect"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/config"
)

// TestInboundConfigValidate: every problem of the inbound settings is reported at its key.
func TestInboundConfigValidate(t *testing.T) {
	tests := []struct {
		cfg   Config
		paths []string
	}{
		{Config{SupportAddresses: []string{"support@bank.example"}}, nil},
		{Config{}, []string{"support_addresses"}},
		{Config{SupportAddresses: []string{"support@bank.example", "desk"}}, []string{"support_addresses[1]"}},
		{Config{SupportAddresses: []string{"s@b.example"}, AuthServID: "sealpost bank"}, []string{"authserv_id"}},
		{Config{SupportAddresses: []string{"s@b.example"}, OnFailed: "ignore", OnUnsigned: "drop"}, []string{"on_unsigned", "on_failed"}},
		{Config{SupportAddresses: []string{"s@b.example"}, Lifetime: -1}, []string{"lifetime"}},
	}
	for i, tt := range tests {
		err := overDefaults(tt.cfg).Validate()
		var paths []string
		for _, fe := range config.FieldErrors(err) {
			paths = append(paths, fe.Path)
		}
		if !slices.Equal(paths, tt.paths) {
			t.Errorf("config %d: Validate = %v: problems at %q, want %q", i, err, paths, tt.paths)
		}
	}
}

// TestInboundConfigZero: Validate fills in nothing, so a zero Config is refused wherever its zero
// means nothing (the defaults are DefaultConfig's).
func TestInboundConfigZero(t *testing.T) {
	var paths []string
	for _, fe := range config.FieldErrors(Config{SupportAddresses: []string{"s@b.example"}}.Validate()) {
		paths = append(paths, fe.Path)
	}
	if want := []string{"authserv_id", "on_unsigned", "on_unregistered", "on_failed", "on_unauthenticated", "lifetime"}; !slices.Equal(paths, want) {
		t.Fatalf("problems at %q, want %q", paths, want)
	}
}

// overDefaults is DefaultConfig with the fields that c sets laid over it, as a configuration
// file's inbound section is.
func overDefaults(c Config) Config {
	out := DefaultConfig()
	src, dst := reflect.ValueOf(c), reflect.ValueOf(&out).Elem()
	for i := range src.NumField() {
		if f := src.Field(i); !f.IsZero() {
			dst.Field(i).Set(f)
		}
	}
	return out
}

// withActions gives the actions and the lifetime that c leaves zero DefaultConfig's, and keeps
// everything else, the Subject tags ("" is off) included: the tests' configurations name only
// what they are about.
func withActions(c Config) Config {
	d := DefaultConfig()
	for _, f := range []struct {
		v   *string
		def string
	}{{&c.OnUnsigned, d.OnUnsigned}, {&c.OnUnregistered, d.OnUnregistered},
		{&c.OnFailed, d.OnFailed}, {&c.OnUnauthenticated, d.OnUnauthenticated}} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	if c.Lifetime == 0 {
		c.Lifetime = d.Lifetime
	}
	return c
}
