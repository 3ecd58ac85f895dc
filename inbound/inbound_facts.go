package inbound

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/smime"
)

// facts is what the S/MIME and OpenPGP layers found in one walk, in the terms of the verdict.
type facts struct {
	method        string
	content       *mime.Entity // the innermost entity: what the desk receives
	encryption    string
	authenticated bool
	signed        bool
	signerKnown   bool     // the signer's certificate or key was found (its addresses are meaningful)
	signerAddrs   []string // the addresses the certificate or key names
	fingerprint   string
	sigDigest     string // SHA-256 of the signature value, hex
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

// inspect walks the message once with both protocols' layers (so S/MIME and OpenPGP layers may
// nest in any order) and returns the facts, and what S/MIME found (for the capabilities).
func (ib *Pipeline) inspect(root *mime.Entity, arrival time.Time) (facts, *smime.Inbound, error) {
	tr := ib.trust.Load()
	sl := smime.NewLayer(smime.InboundOptions{Identities: ib.d.Identities, Roots: tr.roots, TSARoots: tr.tsaRoots, Arrival: arrival,
		Certificates: tr.smime.certs, Intermediates: tr.smime.intermediates, Chains: tr.chains})
	pl := pgp.NewLayer(pgp.InboundOptions{Decrypt: ib.d.PGPKeys, Signers: tr.signers, TSARoots: tr.tsaRoots, Arrival: arrival})
	walked, err := mime.Walk(root, mime.MaxLayers, sl, pl)
	if err != nil {
		return facts{}, nil, inspectError(err)
	}
	sm, pm := sl.Result(walked), pl.Result(walked)
	var f facts
	switch s, p := len(sm.Layers) > 0, len(pm.Layers) > 0; {
	case s && p:
		f = nestedFacts(walked, sl, smimeFacts(sm), pgpFacts(pm))
	case s:
		f = smimeFacts(sm)
	case p:
		f = pgpFacts(pm)
	default:
		f = facts{coversRoot: true}
	}
	f.content = walked.Content
	return f, sm, nil
}

// nestedFacts joins the facts of a message with both S/MIME and OpenPGP layers. The signer facts
// (method, fingerprint, addresses, signing time) are the innermost signature's, the author's, as
// within one protocol; the failures of both are kept, so that a bad outer signature never hides
// behind a good inner one. The encryption named is the outermost; it counts as authenticated only
// when every protocol's encryption was.
func nestedFacts(walked *mime.Walked, sl mime.Layer, sf, pf facts) facts {
	outer, inner := sf, pf
	if walked.Steps[0].By != sl {
		outer, inner = pf, sf
	}
	f := outer // unsigned: the outermost protocol names the method
	for i := len(walked.Steps) - 1; i >= 0; i-- {
		if walked.Steps[i].Signed {
			f = pf
			if walked.Steps[i].By == sl {
				f = sf
			}
			break
		}
	}
	f.layers = walked.Layers()
	f.signed = sf.signed || pf.signed
	f.coversRoot = sf.coversRoot && pf.coversRoot
	f.encryption = outer.encryption
	if f.encryption == "" {
		f.encryption = inner.encryption
	}
	f.authenticated = sf.encryption != "" || pf.encryption != ""
	for _, x := range []facts{sf, pf} {
		if x.encryption != "" && !x.authenticated {
			f.authenticated = false
		}
	}
	f.failures = nil
	for _, x := range slices.Concat(sf.failures, pf.failures) {
		if !slices.Contains(f.failures, x) {
			f.failures = append(f.failures, x)
		}
	}
	return f
}

// verdict starts the verdict from the facts: method, encryption, and for a signed message the
// signer facts and the failures found so far.
func (f facts) verdict() *Verdict {
	v := &Verdict{Method: f.method, Encryption: f.encryption, Authenticated: f.authenticated, Layers: f.layers}
	if f.signed {
		v.Fingerprint, v.SignedAt, v.Timestamped, v.SignatureSHA256 = f.fingerprint, f.signedAt, f.timestamped, f.sigDigest
		for _, e := range f.failures {
			v.fail(e.code, e.detail)
		}
	}
	return v
}

func smimeFacts(in *smime.Inbound) facts {
	f := facts{method: "smime", signed: in.Signed, coversRoot: in.CoversRoot,
		authenticated: in.Authenticated, layers: in.Layers, signedAt: in.SignedAt, timestamped: in.Timestamp != nil,
		sigDigest: digestHex(in.SignatureValue)}
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
	f := facts{method: "pgp", signed: in.Signed, coversRoot: in.CoversRoot,
		authenticated: in.Encrypted, layers: in.Layers, signedAt: in.SignedAt, timestamped: in.Timestamp != nil}
	if in.Signature != nil {
		if value, err := pgp.SignatureValue(in.Signature); err == nil {
			f.sigDigest = digestHex(value)
		}
	}
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

// digestHex is the SHA-256 of b in hex, "" for none.
func digestHex(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}
