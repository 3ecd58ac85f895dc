package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKeys are made once: RSA generation dominates these tests' time.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	other, err := NewRSAKey()
	if err != nil {
		panic(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return map[string]crypto.Signer{"rsa1024": rsa1024, "other": other, "p256": p256, "p384": p384, "p521": p521, "ed25519": ed}
})

// roleTemplate is a certificate that fits role, valid now.
func roleTemplate(role Role) *x509.Certificate {
	t := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "Example Bank " + string(role), Organization: []string{"Example Bank AG"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true,
	}
	switch role {
	case RoleSigner:
		t.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}
		t.EmailAddresses = []string{"statements@bank.example"}
	case RoleSupport:
		t.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}
		t.EmailAddresses = []string{"support@bank.example"}
	case RoleTSA:
		t.KeyUsage = x509.KeyUsageDigitalSignature
		t.ExtraExtensions = []pkix.Extension{TimeStampingExtension()}
	case RoleCustomerCA:
		t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		t.IsCA, t.MaxPathLenZero = true, true
	}
	return t
}

// ekuExtension is an extendedKeyUsage extension with the given purposes and criticality.
func ekuExtension(critical bool, oids ...asn1.ObjectIdentifier) pkix.Extension {
	v, _ := asn1.Marshal(oids)
	return pkix.Extension{Id: oidExtKeyUsage, Critical: critical, Value: v}
}

var oidKPEmailProtection = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 4}

func TestCheckIdentity(t *testing.T) {
	ca, other, key := fixtures(t)
	keys := testKeys()
	sameNameCA, err := NewDevCA(ca.Certificate().Subject.CommonName)
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		name string
		role Role
		key  crypto.Signer                  // certified key; sharedKey when nil
		edit func(*x509.Certificate)        // changes the role's template
		id   func(leaf *Identity) *Identity // changes the identity; leaf + ca when nil
		want []error                        // nil: accepted
	}
	past := func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	}
	for _, tt := range []tc{
		{name: "SignerAccepted", role: RoleSigner},
		{name: "SupportAccepted", role: RoleSupport},
		{name: "TSAAccepted", role: RoleTSA},
		{name: "TSAWithNonRepudiationOnlyAccepted", role: RoleTSA, edit: func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageContentCommitment }},
		{name: "SignerECDSAP256Accepted", role: RoleSigner, key: keys["p256"]},
		{name: "TSAECDSAP384Accepted", role: RoleTSA, key: keys["p384"]},
		{name: "LeafAloneAccepted", role: RoleSigner, id: func(l *Identity) *Identity { return l }},
		{name: "NoKeyUsageExtensionAccepted", role: RoleSupport, edit: func(c *x509.Certificate) { c.KeyUsage = 0 }},

		{name: "KeyMismatch", role: RoleSigner, id: func(l *Identity) *Identity {
			return &Identity{Signer: keys["other"], Chain: append(l.Chain, ca.Certificate())}
		}, want: []error{ErrKeyMismatch}},
		{name: "NoPrivateKey", role: RoleSigner, id: func(l *Identity) *Identity {
			return &Identity{Chain: l.Chain}
		}, want: []error{ErrNoPrivateKey}},
		{name: "RSA1024", role: RoleSigner, key: keys["rsa1024"], want: []error{ErrUnsupportedKey}},
		{name: "SupportECDSA", role: RoleSupport, key: keys["p256"], edit: func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
		}, want: []error{ErrUnsupportedKey, ErrNoKeyEncipherment}},
		{name: "ECDSAP521", role: RoleTSA, key: keys["p521"], want: []error{ErrUnsupportedKey}},
		{name: "Ed25519", role: RoleSigner, key: keys["ed25519"], want: []error{ErrUnsupportedKey}},
		{name: "Expired", role: RoleSupport, edit: past, want: []error{ErrExpired}},
		{name: "NotYetValid", role: RoleTSA, edit: func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(48*time.Hour)
		}, want: []error{ErrNotYetValid}},
		{name: "ChainOfAnotherCA", role: RoleSigner, id: func(l *Identity) *Identity {
			return &Identity{Signer: l.Signer, Chain: append(l.Chain, other.Certificate())}
		}, want: []error{ErrChainBroken}},
		{name: "ChainSameNameOtherKey", role: RoleSigner, id: func(l *Identity) *Identity {
			return &Identity{Signer: l.Signer, Chain: append(l.Chain, sameNameCA.Certificate())}
		}, want: []error{ErrChainBroken}},
		{name: "ChainIssuerNotCA", role: RoleSupport, id: func(l *Identity) *Identity {
			// A leaf "issued" by another leaf: the names link, but a non-CA cannot sign.
			tmpl := roleTemplate(RoleSupport)
			tmpl.Subject = pkix.Name{CommonName: "not a CA"}
			fake, err := (&Identity{Signer: key}).Issue(tmpl, key.Public())
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := (&Identity{Signer: key, Chain: []*x509.Certificate{fake}}).Issue(roleTemplate(RoleSupport), key.Public())
			if err != nil {
				t.Fatal(err)
			}
			return &Identity{Signer: key, Chain: []*x509.Certificate{leaf, fake}}
		}, want: []error{ErrChainBroken}},
		{name: "SignerWithoutDigitalSignature", role: RoleSigner, edit: func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageKeyEncipherment
		}, want: []error{ErrNoDigitalSignature}},
		{name: "SignerWithoutEmailProtection", role: RoleSigner, edit: func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}, want: []error{ErrNoEmailProtection}},
		{name: "SignerWithoutExtKeyUsage", role: RoleSigner, edit: func(c *x509.Certificate) { c.ExtKeyUsage = nil },
			want: []error{ErrNoEmailProtection}},
		{name: "SignerWithoutEmailAddress", role: RoleSigner, edit: func(c *x509.Certificate) { c.EmailAddresses = nil },
			want: []error{ErrNoEmailAddress}},
		{name: "SupportWithoutKeyEncipherment", role: RoleSupport, edit: func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
		}, want: []error{ErrNoKeyEncipherment}},
		{name: "SupportWithoutEmailProtection", role: RoleSupport, edit: func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}, want: []error{ErrNoEmailProtection}},
		{name: "SupportWithoutEmailAddress", role: RoleSupport, edit: func(c *x509.Certificate) { c.EmailAddresses = nil },
			want: []error{ErrNoEmailAddress}},
		{name: "TSAWithoutTimeStamping", role: RoleTSA, edit: func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{ekuExtension(true, oidKPEmailProtection)}
		}, want: []error{ErrNoTimeStamping}},
		{name: "TSATimeStampingNotCritical", role: RoleTSA, edit: func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{ekuExtension(false, oidKPTimeStamping)}
		}, want: []error{ErrTimeStampingNotCritical}},
		{name: "TSATimeStampingNotOnly", role: RoleTSA, edit: func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{ekuExtension(true, oidKPTimeStamping, oidKPEmailProtection)}
		}, want: []error{ErrTimeStampingNotOnly}},
		{name: "TSAWithoutSigningKeyUsage", role: RoleTSA, edit: func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageKeyEncipherment
		}, want: []error{ErrNoDigitalSignature}},
		{name: "EveryProblemReported", role: RoleSigner, key: keys["rsa1024"], edit: func(c *x509.Certificate) {
			past(c)
			c.EmailAddresses = nil
			c.KeyUsage = x509.KeyUsageKeyEncipherment
		}, want: []error{ErrUnsupportedKey, ErrExpired, ErrNoEmailAddress, ErrNoDigitalSignature}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := tt.key
			if k == nil {
				k = key
			}
			tmpl := roleTemplate(tt.role)
			if tt.edit != nil {
				tt.edit(tmpl)
			}
			cert, err := ca.Issue(tmpl, k.Public())
			if err != nil {
				t.Fatal(err)
			}
			leaf := &Identity{Signer: k, Chain: []*x509.Certificate{cert}}
			id := &Identity{Signer: k, Chain: []*x509.Certificate{cert, ca.Certificate()}}
			if tt.id != nil {
				id = tt.id(leaf)
			}
			err = CheckIdentity(tt.role, id, time.Now())
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %v", tt.want)
			}
			t.Log(err)
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			var ierr *IdentityError
			if !errors.As(err, &ierr) || ierr.Role != tt.role {
				t.Fatalf("want an *IdentityError for role %s, got %#v", tt.role, err)
			}
			if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != len(tt.want) {
				t.Errorf("%d problems reported, want %d: %v", n, len(tt.want), err)
			}
		})
	}
}

func TestCheckIdentityArguments(t *testing.T) {
	if err := CheckIdentity("postmaster", &Identity{}, time.Now()); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("unknown role: got %v", err)
	}
	if err := CheckIdentity(RoleSigner, &Identity{}, time.Now()); !errors.Is(err, ErrNoCertificateInFile) {
		t.Fatalf("no certificate: got %v", err)
	}
	if err := CheckIdentity(RoleSigner, nil, time.Now()); !errors.Is(err, ErrNoCertificateInFile) {
		t.Fatalf("nil identity: got %v", err)
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range Roles() {
		if got, err := ParseRole(" " + string(r) + " "); err != nil || got != r {
			t.Fatalf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	_, err := ParseRole("ca")
	if !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("ParseRole(ca): got %v", err)
	}
	for _, r := range Roles() {
		if !strings.Contains(err.Error(), string(r)) {
			t.Fatalf("error %q should list the role %s", err, r)
		}
	}
}
