package dkim

import (
	"errors"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/config"
)

// TestValidateKeys: each key's settings are reported at their place in the dkim section, every
// problem at once, without reading any file.
func TestValidateKeys(t *testing.T) {
	good := KeyConfig{Domain: "bank.example", Selector: "s1", KeyFile: "/nonexistent/dkim.key"}
	tests := []struct {
		name  string
		keys  []KeyConfig
		paths []string
		want  error
	}{
		{"none", nil, nil, nil},
		{"good", []KeyConfig{good}, nil, nil},
		{"no domain", []KeyConfig{{Selector: "s1", KeyFile: "k"}}, []string{"keys[0].domain"}, ErrConfig},
		{"address as domain", []KeyConfig{good, {Domain: "x@bank.example", Selector: "s1", KeyFile: "k"}}, []string{"keys[1].domain"}, ErrConfig},
		{"bad selector", []KeyConfig{{Domain: "bank.example", Selector: "s 1;", KeyFile: "k"}}, []string{"keys[0].selector"}, ErrConfig},
		{"everything", []KeyConfig{{}}, []string{"keys[0].domain", "keys[0].selector", "keys[0].key_file"}, ErrConfig},
		{"duplicate domain", []KeyConfig{good, {Domain: "BANK.example", Selector: "s2", KeyFile: "k"}}, []string{"keys[1].domain"}, ErrDuplicateDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateKeys(tt.keys)
			var paths []string
			for _, fe := range config.FieldErrors(err) {
				paths = append(paths, fe.Path)
			}
			if !slices.Equal(paths, tt.paths) || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("ValidateKeys = %v: problems at %q, want %q (%v)", err, paths, tt.paths, tt.want)
			}
		})
	}
}
