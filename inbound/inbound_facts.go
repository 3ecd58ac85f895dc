package inbound

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"strings"
	"time"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/smime"
)

// facts is what smime.Inspect or pgp.Inspect found, in the terms of the verdict.
type facts struct {
	method        string
	content       []byte
	encryption    string
	authenticated bool
	signed        bool
	signerKnown   bool     // the signer's certificate or key was found (its addresses are meaningful)
	signerAddrs   []string // the addresses the certificate or key names
	fingerprint   string
	signedAt      time.Time
	timestamped   bool
	coversRoot    bool
	layers        []string
	failures      []failure
}

type failure struct{ code, detail string }

func (f *facts) check(code string, err error) {
	if err != nil {
		f.failures = append(f.failures, failure{code, gateway.Printable(err.Error())})
	}
}

func smimeFacts(in *smime.Inbound) facts {
	f := facts{method: "smime", content: in.Content, signed: in.Signed, coversRoot: in.CoversRoot,
		authenticated: in.Authenticated, layers: in.Layers, signedAt: in.SignedAt, timestamped: in.Timestamp != nil}
	for _, l := range in.Layers {
		if kind, alg, ok := strings.Cut(l, " "); ok && strings.HasSuffix(kind, "enveloped-data") {
			f.encryption = strings.ToLower(alg)
			break
		}
	}
	if !in.Signed {
		return f
	}
	// A signer the bank knows no certificate for is an unknown key, as for OpenPGP: nothing was
	// verified, so it is not called a bad signature unless another layer's is.
	unknown, bad := smimeSignatureFailures(in.SignatureErr)
	if unknown {
		f.failures = append(f.failures, failure{FailUnknownKey, gateway.Printable(in.SignatureErr.Error())})
	}
	if bad {
		f.check(FailSignature, in.SignatureErr)
	}
	f.check(FailUnsupported, in.Unsupported)
	f.check(FailChain, in.ChainErr)
	f.check(FailWeakAlgorithm, in.WeakAlgorithm)
	f.check(FailTimestamp, in.TimestampErr)
	if !in.CoversRoot {
		f.failures = append(f.failures, failure{FailNotRoot, "the signed part sits inside an unsigned multipart; the unsigned parts were dropped"})
	}
	if in.Signer != nil {
		f.signerKnown = true
		f.fingerprint = keys.CertFingerprint(in.Signer)
		f.signerAddrs = certAddresses(in.Signer)
	} else if in.SignatureErr == nil && in.Unsupported == nil {
		f.failures = append(f.failures, failure{FailSignature, "no signer certificate"})
	}
	return f
}

// smimeSignatureFailures tells apart, in smime's signature errors (joined over the layers), a
// signer without a known certificate and a signature that does not verify.
func smimeSignatureFailures(err error) (unknownSigner, bad bool) {
	if err == nil {
		return false, false
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		if errors.Is(e, smime.ErrUnknownSigner) {
			unknownSigner = true
		} else {
			bad = true
		}
	}
	return unknownSigner, bad
}

// oidEmailAddress is the legacy emailAddress attribute in a subject DN (PKCS #9), still used by
// some CAs instead of, or beside, an rfc822Name (RFC 8550 3.1 allows both).
var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// certAddresses returns the rfc822Name SANs, then any subject emailAddress values.
func certAddresses(c *x509.Certificate) []string {
	out := append([]string(nil), c.EmailAddresses...)
	for _, n := range c.Subject.Names {
		if s, ok := n.Value.(string); ok && n.Type.Equal(oidEmailAddress) {
			out = append(out, s)
		}
	}
	return out
}

func pgpFacts(in *pgp.Inbound) facts {
	f := facts{method: "pgp", content: in.Content, signed: in.Signed, coversRoot: in.CoversRoot,
		authenticated: in.Encrypted, layers: in.Layers, signedAt: in.SignedAt, timestamped: in.Timestamp != nil}
	for _, l := range in.Layers {
		if rest, ok := strings.CutPrefix(l, "pgp-encrypted "); ok {
			f.encryption = strings.ReplaceAll(rest, " ", "-") // e.g. seipd-v1-aes256, seipd-v2-aes256-ocb
			break
		}
	}
	if !in.Signed {
		return f
	}
	// Several signature layers join their errors: an unknown key in one must not hide a bad
	// signature in another.
	if errors.Is(in.SignatureErr, pgp.ErrUnknownKey) {
		f.failures = append(f.failures, failure{FailUnknownKey, gateway.Printable(in.SignatureErr.Error())})
	}
	if in.SignatureErr != nil && (errors.Is(in.SignatureErr, pgp.ErrSignature) || !errors.Is(in.SignatureErr, pgp.ErrUnknownKey)) {
		f.failures = append(f.failures, failure{FailSignature, gateway.Printable(in.SignatureErr.Error())})
	}
	f.check(FailChain, in.KeyErr)
	f.check(FailWeakAlgorithm, in.WeakAlgorithm)
	f.check(FailTimestamp, in.TimestampErr)
	if !in.CoversRoot {
		f.failures = append(f.failures, failure{FailNotRoot, "the signed part sits inside an unsigned multipart; the unsigned parts were dropped"})
	}
	if in.Signer != nil && in.SignatureErr == nil {
		f.signerKnown = true
		f.fingerprint = in.Fingerprint
		f.signerAddrs = keys.PGPAddresses(in.Signer, in.SignedAt)
	}
	return f
}

// knownSigners is what a directory offers smime.Inspect for a signature whose certificates the
// message does not carry (openssl cms -nocerts): the customers' certificates (every registered one
// is among them: keys import puts it there) and the CA certificates to chain them with.
type knownSigners struct {
	certs         []*x509.Certificate
	intermediates *x509.CertPool
}

func directorySigners(d *keys.Directory) knownSigners {
	k := knownSigners{intermediates: d.Intermediates()}
	for _, e := range d.Entries() {
		if e.Certificate != nil {
			k.certs = append(k.certs, e.Certificate)
		}
	}
	return k
}
