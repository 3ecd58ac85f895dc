package dkim

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/sealpost/sealpost/internal/interop"
)

// A verifier checks msg's one DKIM signature against the records s publishes (DNSRecord) without
// DNS. It returns nil only if the signature verifies.
type verifier struct {
	name   string
	verify func(t *testing.T, s *Signer, msg []byte) error
}

// verifiers are go-msgauth and two independent implementations: dkimpy (Debian python3-dkim) and
// libopendkim, through the opendkim filter's test mode (Debian opendkim).
var verifiers = []verifier{
	{"go-msgauth", verifyMsgauth},
	{"dkimpy", verifyDKIMPy},
	{"opendkim", verifyOpenDKIM},
}

// records returns s's DNS records, name → value.
func records(t testing.TB, s *Signer) map[string]string {
	t.Helper()
	recs := map[string]string{}
	for domain := range s.keys {
		name, value, err := s.DNSRecord(domain)
		if err != nil {
			t.Fatal(err)
		}
		recs[name] = value
	}
	return recs
}

func verifyMsgauth(t *testing.T, s *Signer, msg []byte) error {
	recs := records(t, s)
	lookup := func(name string) ([]string, error) {
		if v, ok := recs[strings.ToLower(strings.TrimSuffix(name, "."))]; ok {
			return []string{v}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		return err
	}
	// A failed signature is not an error of VerifyWithOptions: it is in each Verification.
	if len(vs) != 1 {
		return fmt.Errorf("%d signatures, want 1", len(vs))
	}
	if vs[0].Err != nil {
		return vs[0].Err
	}
	if !s.Signs(vs[0].Domain) {
		return fmt.Errorf("d=%s is not a domain of the Signer", vs[0].Domain)
	}
	return nil
}

// dkimpyScript verifies the message on stdin with dkimpy, answering key queries from argv instead
// of DNS: argv[1:] are name, value pairs. Exit 0: verified; 1: not verified.
const dkimpyScript = `
import sys, dkim
recs = {sys.argv[i].encode(): sys.argv[i+1].encode() for i in range(1, len(sys.argv), 2)}
def dnsfunc(name, timeout=5):
    return recs.get(name.rstrip(b".").lower())
msg = sys.stdin.buffer.read()
sys.exit(0 if dkim.verify(msg, dnsfunc=dnsfunc) else 1)
`

func verifyDKIMPy(t *testing.T, s *Signer, msg []byte) error {
	// Run the python3 that dkimverify (python3-dkim) names: the first python3 on PATH may be
	// another installation without the dkim module.
	python := interpreter(t, interop.Tool(t, "dkimverify"))
	args := []string{"-c", dkimpyScript}
	for name, value := range records(t, s) {
		args = append(args, name, value)
	}
	_, stderr, err := interop.Try(t, msg, python, args...)
	if err == nil {
		return nil
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return fmt.Errorf("dkimpy: not verified %s", stderr)
	}
	t.Fatalf("dkimpy: %v\n%s", err, stderr)
	return nil
}

// interpreter returns the program named by script's #! line.
func interpreter(t *testing.T, script string) string {
	t.Helper()
	f, err := os.Open(script)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) == 0 {
		t.Fatalf("%s: no #! line", script)
	}
	if filepath.Base(fields[0]) == "env" && len(fields) > 1 {
		return fields[1]
	}
	return fields[0]
}

// verifyOpenDKIM runs `opendkim -x CONF -t -`: the filter's test mode verifies the message on stdin
// and reads public keys from the TestPublicKeys file instead of DNS. It always exits 0, so the
// verdict is read from its report line.
func verifyOpenDKIM(t *testing.T, s *Signer, msg []byte) error {
	bin := interop.Tool(t, "opendkim")
	dir := t.TempDir()
	var keyList strings.Builder
	for name, value := range records(t, s) {
		keyList.WriteString(name + " " + value + "\n")
	}
	keyFile := filepath.Join(dir, "keys")
	conf := filepath.Join(dir, "opendkim.conf")
	if err := os.WriteFile(keyFile, []byte(keyList.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("Mode v\nSyslog no\nTestPublicKeys "+keyFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := interop.Try(t, msg, bin, "-x", conf, "-t", "-")
	if err != nil {
		t.Fatalf("opendkim: %v\n%s%s", err, out, stderr)
	}
	report := strings.TrimSpace(string(out) + string(stderr))
	lines := strings.Split(report, "\n")
	if len(lines) == 1 && strings.Contains(report, ": verification (") && strings.HasSuffix(report, ") succeeded") {
		return nil
	}
	return fmt.Errorf("opendkim: %s", report)
}

// signatureFields returns the h= list of msg's first DKIM-Signature, lower case.
func signatureFields(t *testing.T, msg []byte) []string {
	t.Helper()
	h, err := parseHeader(msg)
	if err != nil || len(h) == 0 || !strings.EqualFold(h[0].name, "DKIM-Signature") {
		t.Fatalf("no leading DKIM-Signature field (%v)", err)
	}
	for tag := range strings.SplitSeq(strings.ReplaceAll(string(h[0].value), "\r\n", ""), ";") {
		k, v, _ := strings.Cut(tag, "=")
		if strings.TrimSpace(k) == "h" {
			var names []string
			for n := range strings.SplitSeq(v, ":") {
				names = append(names, strings.ToLower(strings.TrimSpace(n)))
			}
			return names
		}
	}
	t.Fatal("no h= tag")
	return nil
}

func count(list []string, s string) int {
	n := 0
	for _, e := range list {
		if e == s {
			n++
		}
	}
	return n
}

func mustVerify(t *testing.T, v verifier, s *Signer, msg []byte) {
	t.Helper()
	if err := v.verify(t, s, msg); err != nil {
		t.Fatalf("%s: %v", v.name, err)
	}
}

func mustNotVerify(t *testing.T, v verifier, s *Signer, msg []byte) {
	t.Helper()
	err := v.verify(t, s, msg)
	if err == nil {
		t.Fatalf("%s verified a message it must reject", v.name)
	}
	t.Logf("%s rejects it: %v", v.name, err)
}
