package smime

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/payload"
)

// gpgsmHome makes a throw-away GnuPG home holding Alice's PKCS#12 (her key and certificate), Bob's
// certificate (standing in for the bank's support identity) and the fixture CA, trusted for S/MIME
// through trustlist.txt.
func gpgsmHome(t *testing.T, e *inboundEnv) {
	t.Helper()
	interop.Tool(t, "gpgsm")
	interop.Tool(t, "gpgconf")
	home, err := os.MkdirTemp("", "gs") // short: the agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GNUPGHOME", home)
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--kill", "all").Run()
		_ = os.RemoveAll(home)
	})
	write(t, filepath.Join(home, "gpg-agent.conf"), []byte("allow-loopback-pinentry\n"))
	p12 := filepath.Join(home, "alice.p12")
	// gpgsm 2.2 reads only the legacy PKCS#12 encryption (3DES, SHA-1 MAC).
	interop.Run(t, nil, "openssl", "pkcs12", "-export", "-in", e.files.certs[0], "-inkey", e.files.keys[0],
		"-passout", "pass:pw", "-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1", "-out", p12)
	gpgsm(t, []byte("pw\n"), "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", p12, e.files.ca, e.files.certs[1])
	fpr := ""
	for _, line := range strings.Split(string(gpgsm(t, nil, "--with-colons", "--list-keys", e.f.ca.Certificate().Subject.CommonName)), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			fpr = f[9]
			break
		}
	}
	if fpr == "" {
		t.Fatal("CA not imported into gpgsm")
	}
	var colons []string
	for i := 0; i+2 <= len(fpr); i += 2 {
		colons = append(colons, fpr[i:i+2])
	}
	write(t, filepath.Join(home, "trustlist.txt"), []byte(strings.Join(colons, ":")+" S relax\n"))
	_ = exec.Command("gpgconf", "--reload", "gpg-agent").Run()
}

func gpgsm(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	return interop.Run(t, stdin, "gpgsm", append([]string{"--batch", "--disable-crl-checks", "--disable-policy-checks"}, args...)...)
}

// TestInspectGPGSM: GnuPG's S/MIME tool as the customer's client: opaque and detached signatures,
// and a detached signature encrypted to the bank.
func TestInspectGPGSM(t *testing.T) {
	e := newInboundEnv(t)
	e.noCaps = true
	gpgsmHome(t, e)
	entity := []byte(customerEntity)
	signArgs := []string{"--pinentry-mode", "loopback", "--passphrase-fd", "0", "-u", "alice@example.com", "--base64"}

	opaque := gpgsm(t, []byte("pw\n"), append(signArgs, "--sign", writeTemp(t, entity))...)
	detached := gpgsm(t, []byte("pw\n"), append(signArgs, "--detach-sign", writeTemp(t, entity))...)
	multipartSigned := []byte("MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"gpgsm\"\r\n\r\n" +
		"--gpgsm\r\n" + customerEntity + "\r\n--gpgsm\r\n" +
		"Content-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		string(payload.ToCRLF(detached)) + "\r\n--gpgsm--\r\n")
	enveloped := gpgsm(t, nil, "--base64", "--encrypt", "-r", "bob@example.net", writeTemp(t, multipartSigned))

	t.Run("opaque", func(t *testing.T) {
		in := e.inspect(t, reply(pkcs7Mime("signed-data", opaque)))
		e.assertClean(t, in, "signed-opaque")
	})
	t.Run("detached", func(t *testing.T) {
		in := e.inspect(t, reply(multipartSigned))
		e.assertClean(t, in, "signed-detached")
	})
	t.Run("signed then encrypted", func(t *testing.T) {
		in := e.inspect(t, reply(pkcs7Mime("enveloped-data", enveloped)))
		e.assertClean(t, in, "enveloped-data aes128-CBC", "signed-detached")
		if !in.Encrypted || in.Authenticated {
			t.Fatalf("Encrypted %v Authenticated %v", in.Encrypted, in.Authenticated)
		}
	})
}

func pkcs7Mime(smimeType string, b64 []byte) []byte {
	return append([]byte("MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type="+smimeType+"; name=smime.p7m\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n"), payload.ToCRLF(b64)...)
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "in")
	write(t, name, b)
	return name
}
