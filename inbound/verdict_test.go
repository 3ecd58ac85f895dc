package inbound

import (
	"strings"
	"testing"
	"time"
)

// TestVerdictHeadersCannotBeInjected: addresses come from certificates and keys the sender chose;
// whatever they contain, the verdict stays one field with the parameters sealpost wrote.
func TestVerdictHeadersCannotBeInjected(t *testing.T) {
	v := &Verdict{Status: StatusUnregistered, Method: "smime",
		From:     "alice@example.com",
		Signer:   "x@example.com; registered=yes\r\nSealpost-Verdict: verified",
		SignedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	for name, val := range map[string]string{"Sealpost-Verdict": v.Header(), "Authentication-Results": v.AuthenticationResults("sealpost.test")} {
		if strings.ContainsAny(val, "\r\n") {
			t.Errorf("%s carries a line break: %q", name, val)
		}
		// Parameters are separated by ";" (and, in Authentication-Results, properties by
		// spaces): the crafted signer must stay inside its own value.
		var registered []string
		for _, p := range strings.FieldsFunc(val, func(r rune) bool { return r == ';' || r == ' ' }) {
			if k, v, ok := strings.Cut(p, "="); ok && k == "registered" {
				registered = append(registered, v)
			}
		}
		if name == "Sealpost-Verdict" && (len(registered) != 1 || registered[0] != "no") {
			t.Errorf("%s: registered=%v, want exactly [no]: %q", name, registered, val)
		}
		if name == "Authentication-Results" && len(registered) != 0 {
			t.Errorf("%s: injected parameter survived: %q", name, val)
		}
	}
	if got := v.AuthenticationResults("sealpost.test"); !strings.HasPrefix(got, "sealpost.test; smime=policy ") {
		t.Errorf("unregistered: %q", got)
	}
}

func TestVerdictResults(t *testing.T) {
	for _, c := range []struct {
		v    Verdict
		want string
	}{
		{Verdict{Status: StatusVerified, Method: "smime", From: "a@x.example", Signer: "a@x.example"}, "id; smime=pass header.from=a@x.example body.smime-identifier=a@x.example"},
		{Verdict{Status: StatusVerified, Method: "pgp", From: "a@x.example", Signer: "a@x.example"}, "id; x-openpgp=pass header.from=a@x.example body.x-openpgp-signer=a@x.example"},
		{Verdict{Status: StatusFailed, Method: "smime", Failures: []string{FailChain, FailFromMismatch}}, `id; smime=fail reason="chain from-mismatch"`},
		{Verdict{Status: StatusUnsigned}, "id; smime=none; x-openpgp=none"},
		{Verdict{Status: StatusUnsigned, Method: "pgp", Encryption: "seipd-v1-aes256"}, "id; x-openpgp=none"},
	} {
		if got := c.v.AuthenticationResults("id"); got != c.want {
			t.Errorf("%s/%s: %q, want %q", c.v.Status, c.v.Method, got, c.want)
		}
	}
}
