package main

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/tsa"
)

// TestServeTSAPolicy is the regression test for item 15's TSA finding: the embedded TSA's policy
// OID was fixed to IANA's documentation number. tsa.policy now sets it, and the tokens on mail
// that serve relays carry it; the default stays tsa.DefaultPolicy.
func TestServeTSAPolicy(t *testing.T) {
	if got := defaultConfig().TSA.Policy; got != tsa.DefaultPolicy {
		t.Fatalf("default tsa.policy %q, want %q", got, tsa.DefaultPolicy)
	}
	const policy = "1.3.6.1.4.1.99999.3161.2"
	inst, cfg, alice, _ := testInstance(t, func(c *Config) { c.TSA.Policy = policy })
	msg := "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Statement\r\n" +
		"Message-ID: <tsa-policy-1@bank.example>\r\n\r\nYour balance is 1 234,56 EUR.\r\n"
	if res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, msg); res.Err != nil || !strings.Contains(res.Reply, "queued as") {
		t.Fatalf("submission: %v %q", res.Err, res.Reply)
	}
	msgs, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := keys.DataDir(cfg.Data).Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	o, err := pipelinetest.InspectSMIME(msgs[0], smime.InboundOptions{Roots: roots, TSARoots: roots, Identities: []*keys.Identity{alice}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Timestamp == nil || o.Timestamp.Policy.String() != policy {
		t.Fatalf("token %+v, want policy %s", o.Timestamp, policy)
	}
}

// TestTSAPolicyValidated: a policy that is not a dotted OID is a configuration error on
// tsa.policy, named like every other field.
func TestTSAPolicyValidated(t *testing.T) {
	for _, bad := range []string{"", "bank-policy", "1.2.", "3.1.2", "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.99999999999"} {
		cfg := defaultConfig()
		cfg.TSA.Policy = bad
		err := cfg.Validate()
		var fe *config.FieldError
		found := false
		for _, e := range flatten(err) {
			if errors.As(e, &fe) && fe.Path == "tsa.policy" {
				found = true
			}
		}
		if !found {
			t.Errorf("tsa.policy %q: %v, want a tsa.policy field error", bad, err)
		}
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
