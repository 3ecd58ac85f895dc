package inbound

import (
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
		err := tt.cfg.Validate()
		var paths []string
		for _, fe := range config.FieldErrors(err) {
			paths = append(paths, fe.Path)
		}
		if !slices.Equal(paths, tt.paths) {
			t.Errorf("config %d: Validate = %v: problems at %q, want %q", i, err, paths, tt.paths)
		}
	}
}
