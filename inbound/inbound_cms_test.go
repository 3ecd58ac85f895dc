package inbound

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

// These tests run replies made by openssl cms through the whole inbound pipeline (issue 11 items
// 11, 12, 13 and 15): the verdict, its Authentication-Results and the SMTP reply. The bank is the
// corpus one (testdata/inbound/README.md): alice@customer.example registered keys/alice.pem.

const cmsText = "Content-Type: text/plain; charset=us-ascii\r\n\r\nPlease block my card ending 4821.\r\n\r\nAlice\r\n"

// cmsReply is a reply to the bank around entity (openssl's S/MIME output), from from.
func cmsReply(from string, entity []byte) []byte {
	return append([]byte("From: "+from+"\r\nTo: support@bank.example\r\nSubject: Re: Your card\r\n"+
		"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\nMessage-ID: <cms-reply@customer.example>\r\n"), mime.ToCRLF(entity)...)
}

// opensslSign signs cmsText as keys/<who>.pem with openssl cms -sign and extra options.
func opensslSign(t *testing.T, who string, extra ...string) []byte {
	t.Helper()
	interop.Tool(t, "openssl")
	args := append([]string{"cms", "-sign", "-binary", "-md", "sha256", "-signer", corpusKey(t, who+".pem"), "-inkey", corpusKey(t, who+".key")}, extra...)
	return interop.Run(t, []byte(cmsText), "openssl", args...)
}

// opensslEncrypt encrypts entity to keys/<who>.pem with openssl cms -encrypt.
func opensslEncrypt(t *testing.T, entity []byte, who string, extra ...string) []byte {
	t.Helper()
	args := append(append([]string{"cms", "-encrypt", "-binary"}, extra...), corpusKey(t, who+".pem"))
	return interop.Run(t, mime.ToCRLF(entity), "openssl", args...)
}

func (env *corpusEnv) evaluate(t *testing.T, msg []byte) *Result {
	t.Helper()
	res, err := env.ib.Evaluate(context.Background(), msg, time.Now())
	if err != nil {
		t.Fatalf("Evaluate: %v (reply %q)", err, gateway.ReplyFor(err).String())
	}
	return res
}

// authResult is our Authentication-Results value in the desk's message.
func authResult(t *testing.T, res *Result) string {
	t.Helper()
	h, _, err := mime.SplitEntity(res.Message)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range h {
		if id, _, err := authServID(f.Value()); strings.EqualFold(f.Name, "Authentication-Results") && err == nil && normAuthServID(id) == normAuthServID(corpusAuthServID) {
			return f.Value()
		}
	}
	t.Fatal("no Authentication-Results of ours")
	return ""
}

func wantVerified(t *testing.T, res *Result) {
	t.Helper()
	v := res.Verdict
	if v.Status != StatusVerified || !v.Registered || v.Signer != "alice@customer.example" || res.Action != ActionDeliver {
		t.Fatalf("verdict %s, action %s, want verified and delivered\n%s", v.Header(), res.Action, strings.Join(v.Details, "\n"))
	}
	if ar := authResult(t, res); !strings.Contains(ar, "smime=pass") {
		t.Fatalf("Authentication-Results %q", ar)
	}
}

// TestInboundSubjectKeyIdentifierSigner is item 11 through the pipeline: openssl cms -sign -keyid
// got "554 5.6.0 message cannot be parsed: ... SignedData without signers".
func TestInboundSubjectKeyIdentifierSigner(t *testing.T) {
	env := newCorpusEnv(t, Config{})
	detached := opensslSign(t, "alice", "-keyid")
	wantVerified(t, env.evaluate(t, cmsReply(aliceFrom, detached)))
	opaque := opensslSign(t, "alice", "-keyid", "-nodetach")
	wantVerified(t, env.evaluate(t, cmsReply(aliceFrom, opensslEncrypt(t, opaque, "bank", "-aes-256-gcm", "-keyid"))))
}

const aliceFrom = "Alice Customer <alice@customer.example>"

// TestInboundRSAPSSVerified is the first half of item 12: an RSASSA-PSS signature by the registered
// certificate was "failed=signature" and smime=fail.
func TestInboundRSAPSSVerified(t *testing.T) {
	env := newCorpusEnv(t, Config{})
	for _, extra := range [][]string{
		{"-keyopt", "rsa_padding_mode:pss"},
		{"-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:digest", "-md", "sha512"},
	} {
		wantVerified(t, env.evaluate(t, cmsReply(aliceFrom, opensslSign(t, "alice", extra...))))
	}
}

// TestInboundUnsupportedSignatureIsNeutral is the second half of item 12: a signature sealpost
// cannot check is StatusUnsupported with smime=neutral, never the failed=signature of a forgery.
// For a registered customer it is held (it is not verified with the registered key); otherwise
// the policy treats it like unsigned mail.
func TestInboundUnsupportedSignatureIsNeutral(t *testing.T) {
	env := newCorpusEnv(t, Config{})
	check := func(t *testing.T, res *Result, action string) {
		t.Helper()
		v := res.Verdict
		if v.Status != StatusUnsupported || slices.Contains(v.Failures, FailSignature) || v.Trusted() {
			t.Fatalf("verdict %s, want unsupported without a signature failure", v.Header())
		}
		ar := authResult(t, res)
		if !strings.Contains(ar, "smime=neutral") || strings.Contains(ar, "smime=fail") || strings.Contains(ar, "=pass") {
			t.Fatalf("Authentication-Results %q, want smime=neutral", ar)
		}
		if !strings.Contains(string(res.Message), "\r\nSealpost-Verdict: unsupported; ") {
			t.Fatal("Sealpost-Verdict does not say unsupported")
		}
		if res.Action != action {
			t.Fatalf("action %s (%s), want %s", res.Action, res.Reason, action)
		}
	}
	t.Run("PSS with MGF1 over another hash", func(t *testing.T) {
		signed := opensslSign(t, "alice", "-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_mgf1_md:sha512")
		check(t, env.evaluate(t, cmsReply(aliceFrom, signed)), ActionQuarantine)
	})
	t.Run("brainpool key", func(t *testing.T) {
		dir := t.TempDir()
		cert, key := filepath.Join(dir, "bp.pem"), filepath.Join(dir, "bp.key")
		csr, ext := filepath.Join(dir, "bp.csr"), filepath.Join(dir, "bp.ext")
		interop.Run(t, nil, "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:brainpoolP256r1", "-out", key)
		interop.Run(t, nil, "openssl", "req", "-new", "-key", key, "-subj", "/CN=Bob Customer", "-out", csr)
		if err := os.WriteFile(ext, []byte("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectKeyIdentifier=hash\nsubjectAltName=email:bob@customer.example\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		interop.Run(t, nil, "openssl", "x509", "-req", "-in", csr, "-CA", corpusKey(t, "ca.pem"), "-CAkey", corpusKey(t, "ca.key"),
			"-CAserial", filepath.Join(dir, "serial"), "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", cert)
		signed := interop.Run(t, []byte(cmsText), "openssl", "cms", "-sign", "-binary", "-md", "sha256", "-signer", cert, "-inkey", key)
		check(t, env.evaluate(t, cmsReply("Bob Customer <bob@customer.example>", signed)), ActionDeliver)
	})
}

// TestInboundNoCertsRegisteredSigner is item 13: a signature without certificates (openssl cms
// -sign -nocerts) by the customer's registered certificate was "failed=signature,chain". The
// directory's certificates are now the candidates; a signer the bank holds no certificate for is an
// unknown key, not a bad signature.
func TestInboundNoCertsRegisteredSigner(t *testing.T) {
	env := newCorpusEnv(t, Config{})
	for _, extra := range [][]string{
		{"-nocerts"},
		{"-nocerts", "-keyid"},
		{"-nocerts", "-keyid", "-keyopt", "rsa_padding_mode:pss"},
	} {
		wantVerified(t, env.evaluate(t, cmsReply(aliceFrom, opensslSign(t, "alice", extra...))))
	}
	opaque := opensslSign(t, "alice", "-nocerts", "-nodetach")
	wantVerified(t, env.evaluate(t, cmsReply(aliceFrom, opensslEncrypt(t, opaque, "bank", "-aes256"))))

	t.Run("signer not in the directory", func(t *testing.T) {
		res := env.evaluate(t, cmsReply("Mallory <mallory@customer.example>", opensslSign(t, "mallory", "-nocerts")))
		v := res.Verdict
		if v.Status != StatusFailed || !slices.Contains(v.Failures, FailUnknownKey) || slices.Contains(v.Failures, FailSignature) {
			t.Fatalf("verdict %s, want failed with unknown-key and no signature failure", v.Header())
		}
	})
	t.Run("registered, but the directory lost the certificate", func(t *testing.T) {
		roots, err := keys.ReadCertificatesFile(corpusKey(t, "ca.pem"))
		if err != nil {
			t.Fatal(err)
		}
		env := newCorpusEnv(t, Config{})
		env.ib.SetDirectory(keys.NewDirectory(roots, nil))
		res := env.evaluate(t, cmsReply(aliceFrom, opensslSign(t, "alice", "-nocerts")))
		if v := res.Verdict; v.Status != StatusFailed || !slices.Contains(v.Failures, FailUnknownKey) || res.Action != ActionQuarantine {
			t.Fatalf("verdict %s, action %s, want failed (unknown-key) and held", v.Header(), res.Action)
		}
	})
}

// TestInboundNotEncryptedToBankBeforeCipher is item 15's first finding: 3DES mail to someone else
// was refused as an unsupported algorithm (554 5.6.0); that it is not for the bank is found first.
func TestInboundNotEncryptedToBankBeforeCipher(t *testing.T) {
	env := newCorpusEnv(t, Config{})
	signed := opensslSign(t, "alice")
	for _, tc := range []struct {
		name, to, reply string
		args            []string
	}{
		{"3DES to alice", "alice", "554 5.7.1 message is not encrypted to the bank's support key", []string{"-des3"}},
		{"3DES to alice by keyid", "alice", "554 5.7.1 message is not encrypted to the bank's support key", []string{"-des3", "-keyid"}},
		{"3DES to the bank", "bank", "554 5.6.0 unsupported message structure", []string{"-des3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.ib.Evaluate(context.Background(), cmsReply(aliceFrom, opensslEncrypt(t, signed, tc.to, tc.args...)), time.Now())
			var e *gateway.Error
			if !errors.As(err, &e) || !strings.HasPrefix(gateway.ReplyFor(err).String(), tc.reply) {
				t.Fatalf("reply %q (%v), want %q", gateway.ReplyFor(err).String(), err, tc.reply)
			}
		})
	}
}

// TestVerdictUnsupportedStatus: an unsupported-algorithm finding alone settles as StatusUnsupported
// (smime=neutral, with the reason); beside any real failure the status stays failed.
func TestVerdictUnsupportedStatus(t *testing.T) {
	for _, tc := range []struct {
		failures []string
		status   string
		ar       string
	}{
		{[]string{FailUnsupported}, StatusUnsupported, `smime=neutral reason="unsupported-algorithm"`},
		{[]string{FailUnsupported, FailChain}, StatusFailed, `smime=fail reason="chain unsupported-algorithm"`},
		{[]string{FailFromMismatch, FailUnsupported}, StatusFailed, `smime=fail reason="from-mismatch unsupported-algorithm"`},
	} {
		v := &Verdict{Method: "smime", Registered: true}
		for _, f := range tc.failures {
			v.fail(f, "x")
		}
		v.settle(true)
		if ar := v.AuthenticationResults("mx.bank.example"); v.Status != tc.status || !strings.Contains(ar, tc.ar) || v.Trusted() {
			t.Errorf("%v: status %s, %q; want %s, %q", tc.failures, v.Status, ar, tc.status, tc.ar)
		}
	}
}
