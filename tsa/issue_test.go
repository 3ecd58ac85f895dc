package tsa

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/asn1"
	"slices"
	"testing"

	"github.com/digitorus/timestamp"
)

// libraryToken is the token digitorus/timestamp makes for the Authority's key and chain, as the
// Authority did before it wrote its own.
func libraryToken(t *testing.T, a *Authority, digest []byte) *parsedToken {
	t.Helper()
	ts := timestamp.Timestamp{HashAlgorithm: crypto.SHA256, HashedMessage: digest, Time: a.now().UTC(),
		Accuracy: tokenAccuracy, Policy: a.policy, AddTSACertificate: true, Certificates: a.parents}
	resp, err := ts.CreateResponseWithOpts(a.cert, a.signer, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := tokenFromResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseToken(der)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTokenShapeAsLibrary: the tokens the Authority writes itself have every field of the ones
// digitorus/timestamp wrote (only the serial number, the times, the signature and, for RSA, the
// NULL parameters of the signature algorithm may differ), and they verify.
func TestTokenShapeAsLibrary(t *testing.T) {
	inter, _ := newTestTSAViaIntermediate(t, newP256(t))
	for name, ts := range map[string]*testTSA{"p256": newTestTSA(t, nil), "rsa2048": newTestTSA(t, rsaKey()), "intermediate": inter} {
		t.Run(name, func(t *testing.T) {
			msg := []byte("the signature value a token covers")
			digest := sha256.Sum256(msg)
			tok, err := ts.a.Timestamp(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseToken(tok.DER)
			if err != nil {
				t.Fatal(err)
			}
			want := libraryToken(t, ts.a, digest[:])
			check := func(field string, g, w any) {
				t.Helper()
				gb, _ := asn1.Marshal(g)
				wb, _ := asn1.Marshal(w)
				if string(gb) != string(wb) {
					t.Errorf("%s: % x, the library's % x", field, gb, wb)
				}
			}
			check("SignedData version", got.sd.Version, want.sd.Version)
			check("digestAlgorithms", got.sd.DigestAlgorithms, want.sd.DigestAlgorithms)
			check("eContentType", got.sd.EncapContentInfo.EContentType, want.sd.EncapContentInfo.EContentType)
			check("certificates", got.sd.Certificates, want.sd.Certificates)
			check("signer version", got.signer.Version, want.signer.Version)
			check("sid", got.signer.SID, want.signer.SID)
			check("digestAlgorithm", got.signer.DigestAlgorithm, want.signer.DigestAlgorithm)
			check("signatureAlgorithm", got.signer.SignatureAlgorithm.Algorithm, want.signer.SignatureAlgorithm.Algorithm)
			check("TSTInfo version", got.info.Version, want.info.Version)
			check("policy", got.info.Policy, want.info.Policy)
			check("messageImprint", got.info.MessageImprint, want.info.MessageImprint)
			check("accuracy", got.info.Accuracy, want.info.Accuracy)
			check("tsa", got.info.TSA, want.info.TSA)
			if got.info.Nonce != nil || got.info.Ordering || len(got.info.Extensions) != 0 {
				t.Errorf("nonce %v, ordering %v, extensions %v: none asked for", got.info.Nonce, got.info.Ordering, got.info.Extensions)
			}
			if g, w := attrTypes(t, got), attrTypes(t, want); !slices.Equal(g, w) {
				t.Errorf("signed attributes %v, the library's %v", g, w)
			}
			if got.info.SerialNumber.Sign() <= 0 || got.info.SerialNumber.BitLen() > 159 || !got.info.GenTime.Equal(tok.Time) || got.info.SerialNumber.Cmp(tok.Serial) != 0 {
				t.Errorf("serial %v (%d bits), genTime %v: the Token says %v, %v", got.info.SerialNumber, got.info.SerialNumber.BitLen(), got.info.GenTime, tok.Serial, tok.Time)
			}
			if _, err := Verify(tok.DER, msg, ts.ca.roots); err != nil {
				t.Fatalf("the token does not verify: %v", err)
			}
		})
	}
}

func attrTypes(t *testing.T, p *parsedToken) []string {
	t.Helper()
	var attrs []attribute
	if _, err := asn1.UnmarshalWithParams(p.signer.SignedAttrs.FullBytes, &attrs, "set,tag:0"); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, a := range attrs {
		types = append(types, a.Type.String())
	}
	return types
}

// TestTokensReadBack: a thousand tokens (so serial numbers with leading zero octets and every
// signature length come up) parse back to what Timestamp said they hold, in DER.
func TestTokensReadBack(t *testing.T) {
	ts := newTestTSA(t, nil)
	seen := map[string]bool{}
	for i := range 1000 {
		tok, err := ts.a.Timestamp(context.Background(), []byte{byte(i), byte(i >> 8)})
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseToken(tok.DER)
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if p.info.SerialNumber.Cmp(tok.Serial) != 0 || !p.info.GenTime.Equal(tok.Time) || !p.info.Policy.Equal(tok.Policy) {
			t.Fatalf("token %d holds serial %v, time %v, policy %v; Timestamp said %v, %v, %v", i,
				p.info.SerialNumber, p.info.GenTime, p.info.Policy, tok.Serial, tok.Time, tok.Policy)
		}
		if seen[tok.Serial.String()] {
			t.Fatalf("serial %v issued twice", tok.Serial)
		}
		seen[tok.Serial.String()] = true
	}
}
