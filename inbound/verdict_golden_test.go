package inbound

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// verdictGoldenHeader opens the golden file; it says what the file holds and how it is made.
const verdictGoldenHeader = "# golden: Authentication-Results (authserv-id sealpost.test) and Sealpost-Verdict for each verdict shape; regenerate with go test ./inbound -run TestVerdictFieldsGolden -update\n"

// TestVerdictFieldsGolden: the two fields the desk trusts, for every status and method, with
// failures, timestamps, threads and hostile signer addresses. Any change to what the desk reads is
// a change to this file, reviewed as such.
func TestVerdictFieldsGolden(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		v    Verdict
	}{
		{"smime verified, timestamped, on a thread", Verdict{Status: StatusVerified, Method: "smime", From: "alice@example.com", Signer: "alice@example.com",
			Fingerprint: "3f1c0a", SignedAt: at, Timestamped: true, Registered: true, Encryption: "aes256-gcm", Authenticated: true, Thread: "T0K3N"}},
		{"pgp verified", Verdict{Status: StatusVerified, Method: "pgp", From: "carol@example.org", Signer: "carol@example.org",
			Fingerprint: "A1B2C3", SignedAt: at, Registered: true, Encryption: "seipd-v1-aes256", Authenticated: true}},
		{"smime unregistered", Verdict{Status: StatusUnregistered, Method: "smime", From: "bob@example.net", Signer: "bob@example.net", SignedAt: at}},
		{"pgp unregistered", Verdict{Status: StatusUnregistered, Method: "pgp", From: "dave@example.org", Signer: "dave@example.org", SignedAt: at}},
		{"smime failed twice", Verdict{Status: StatusFailed, Method: "smime", Failures: []string{FailChain, FailFromMismatch},
			From: "alice@example.com", Signer: "mallory@example.com", SignedAt: at, Registered: true}},
		{"pgp unknown key", Verdict{Status: StatusFailed, Method: "pgp", Failures: []string{FailUnknownKey}, From: "carol@example.org"}},
		{"wrong key on a thread of another customer", Verdict{Status: StatusFailed, Method: "smime", Failures: []string{FailWrongKey},
			From: "alice@example.com", Signer: "alice@example.com", Registered: true, Thread: "T0K3N", ThreadMismatch: "signer"}},
		{"unsupported algorithm", Verdict{Status: StatusUnsupported, Method: "smime", Failures: []string{FailUnsupported}, From: "alice@example.com"}},
		{"unsigned clear", Verdict{Status: StatusUnsigned, From: "alice@example.com"}},
		{"unsigned but encrypted", Verdict{Status: StatusUnsigned, Method: "pgp", Encryption: "seipd-v1-aes256", From: "carol@example.org"}},
		{"hostile signer", Verdict{Status: StatusUnregistered, Method: "smime", From: "alice@example.com",
			Signer: "x@example.com; registered=yes\r\nSealpost-Verdict: verified", SignedAt: at}},
	}
	var b bytes.Buffer
	b.WriteString(verdictGoldenHeader)
	for _, c := range cases {
		fmt.Fprintf(&b, "\n[%s]\nAuthentication-Results: %s\nSealpost-Verdict: %s\n", c.name, c.v.AuthenticationResults("sealpost.test"), c.v.Header())
	}
	path := filepath.Join("testdata", "golden", "verdicts.txt")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (make it with -update)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("verdict fields changed; got:\n%s\nwant:\n%s", b.Bytes(), want)
	}
}
