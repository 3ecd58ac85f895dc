package pgp

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/sealpost/sealpost/keys"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The golden files pin the wire output of Sign and Protect for a fixed clock and fixed boundaries.
// go-crypto salts every v4 signature (a random notation), so the armored signature is replaced by a
// placeholder and checked instead; everything else, the signed bytes included, is compared byte for
// byte.
var (
	goldenClock  = time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	goldenInputs = []string{"plain", "alternative", "subject8bit"}
	goldenKeys   = filepath.Join("..", "testdata", "inbound", "keys")
)

// goldenBoundaries returns a boundary source that counts: sealpost-golden-1, -2, …
func goldenBoundaries() func() (string, error) {
	n := 0
	return func() (string, error) {
		n++
		return fmt.Sprintf("sealpost-golden-%d", n), nil
	}
}

type goldenKeyring struct {
	bank, alice *openpgp.Entity
}

func loadGoldenKeys(t *testing.T) goldenKeyring {
	t.Helper()
	bank, err := keys.LoadPGPKey(filepath.Join(goldenKeys, "bank-pgp.asc"), keys.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(goldenKeys, "alice-pgp.asc"))
	if err != nil {
		t.Fatal(err)
	}
	alice, err := keys.ParsePGPKeys(data)
	if err != nil || len(alice) != 1 {
		t.Fatalf("alice-pgp.asc: %v", err)
	}
	return goldenKeyring{bank: bank, alice: alice[0]}
}

func (k goldenKeyring) protector(t *testing.T) *Protector {
	t.Helper()
	p, err := NewProtector(k.bank, WithClock(func() time.Time { return goldenClock }), WithBoundaries(goldenBoundaries()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func goldenInput(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "golden", name+".eml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGolden compares got with testdata/golden/name, whose first line (the header, ending in LF)
// says what the file holds; with -update it rewrites the file.
func checkGolden(t *testing.T, name, header string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, append([]byte("# golden: "+header+"; regenerate with go test ./pgp -run Golden -update\n"), got...), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pgp -run Golden -update)", err)
	}
	if i := bytes.IndexByte(want, '\n'); i >= 0 && bytes.HasPrefix(want, []byte("# golden: ")) {
		want = want[i+1:]
	} else {
		t.Fatalf("%s: no golden header line", path)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file %s:\n%s", name, path, firstDiff(got, want))
	}
}

// firstDiff shows the first differing line of got and want.
func firstDiff(got, want []byte) string {
	g, w := strings.SplitAfter(string(got), "\n"), strings.SplitAfter(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got  %q\n want %q", i+1, gl, wl)
		}
	}
	return "same lines, different bytes"
}

// cutArmor replaces the armored block of type typ in msg by a placeholder and returns both.
func cutArmor(t *testing.T, msg []byte, typ string) (framing, block []byte) {
	t.Helper()
	begin, end := []byte("-----BEGIN "+typ+"-----"), []byte("-----END "+typ+"-----\r\n")
	i, j := bytes.Index(msg, begin), bytes.Index(msg, end)
	if i < 0 || j < i {
		t.Fatalf("no armored %s in the output", typ)
	}
	j += len(end)
	framing = append(append(append([]byte(nil), msg[:i]...), "[armored "+typ+": randomised, checked]\r\n"...), msg[j:]...)
	return framing, msg[i:j]
}

func goldenName(op, in string, hp bool) string {
	if hp {
		return op + "-" + in + "-hp.eml"
	}
	return op + "-" + in + ".eml"
}

func goldenWhat(op, in string, hp bool) string {
	return fmt.Sprintf("pgp.%s of ../testdata/golden/%s.eml (header protection %v) signed by ../testdata/inbound/keys/bank-pgp.asc, "+
		"clock %s, boundaries sealpost-golden-N, no timestamper", op, in, hp, goldenClock.Format(time.RFC3339))
}

func (k goldenKeyring) config() *packet.Config {
	return &packet.Config{Time: func() time.Time { return goldenClock }}
}

// TestGoldenSign: Sign's output byte for byte but for the signature, which must verify over the
// first part.
func TestGoldenSign(t *testing.T) {
	k := loadGoldenKeys(t)
	for _, in := range goldenInputs {
		for _, hp := range []bool{false, true} {
			t.Run(goldenName("sign", in, hp), func(t *testing.T) {
				out, err := k.protector(t).SignMessage(ctx, goldenInput(t, in), Options{HeaderProtection: hp})
				if err != nil {
					t.Fatal(err)
				}
				framing, sig := cutArmor(t, out, "PGP SIGNATURE")
				signed, _, _ := parts(t, out)
				if _, err := openpgp.CheckArmoredDetachedSignature(openpgp.EntityList{k.bank}, bytes.NewReader(signed), bytes.NewReader(sig), k.config()); err != nil {
					t.Errorf("signature: %v", err)
				}
				checkGolden(t, goldenName("sign", in, hp), goldenWhat("Sign", in, hp)+"; the signature replaced", framing)
			})
		}
	}
}

// TestGoldenProtect: Protect's outer header and framing byte for byte with the (random) OpenPGP
// message replaced by a placeholder, and the literal data decrypted byte for byte.
func TestGoldenProtect(t *testing.T) {
	k := loadGoldenKeys(t)
	for _, in := range goldenInputs {
		for _, hp := range []bool{false, true} {
			t.Run(goldenName("protect", in, hp), func(t *testing.T) {
				out, err := k.protector(t).ProtectMessage(ctx, goldenInput(t, in), []*openpgp.Entity{k.alice}, Options{HeaderProtection: hp})
				if err != nil {
					t.Fatal(err)
				}
				framing, armored := cutArmor(t, out, "PGP MESSAGE")
				block, err := armor.Decode(bytes.NewReader(armored))
				if err != nil {
					t.Fatal(err)
				}
				md, err := openpgp.ReadMessage(block.Body, openpgp.EntityList{k.alice, k.bank}, nil, k.config())
				if err != nil {
					t.Fatal(err)
				}
				content, err := io.ReadAll(md.UnverifiedBody)
				if err != nil {
					t.Fatal(err)
				}
				if !md.IsSigned || md.SignatureError != nil {
					t.Errorf("signed %v, signature error %v", md.IsSigned, md.SignatureError)
				}
				checkGolden(t, goldenName("protect", in, hp), goldenWhat("Protect", in, hp)+
					" to ../testdata/inbound/keys/alice-pgp.asc; outer framing, the OpenPGP message replaced", framing)
				checkGolden(t, goldenName("protect", in, hp)+".inner", goldenWhat("Protect", in, hp)+
					"; the literal data decrypted with alice-pgp.asc", content)
			})
		}
	}
}
