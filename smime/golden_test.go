package smime

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The golden files pin the wire output of Sign and Protect for a fixed clock and fixed boundaries:
// a change to the framing, the canonical form or the signed attributes shows as a diff.
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

// goldenProtector signs as the corpus's bank key (support@bank.example), with no timestamper.
func goldenProtector(t *testing.T) *Protector {
	t.Helper()
	id, err := keys.LoadPEM(filepath.Join(goldenKeys, "bank.pem"), filepath.Join(goldenKeys, "bank.key"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProtector(id, WithClock(func() time.Time { return goldenClock }), WithBoundaries(goldenBoundaries()))
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
		if err := os.WriteFile(path, append([]byte("# golden: "+header+"; regenerate with go test ./smime -run Golden -update\n"), got...), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./smime -run Golden -update)", err)
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

func goldenName(op, in string, hp bool) string {
	if hp {
		return op + "-" + in + "-hp.eml"
	}
	return op + "-" + in + ".eml"
}

func goldenWhat(op, in string, hp bool) string {
	return fmt.Sprintf("smime.%s of ../testdata/golden/%s.eml (header protection %v) signed by ../testdata/inbound/keys/bank.pem, "+
		"clock %s, boundaries sealpost-golden-N, no timestamper", op, in, hp, goldenClock.Format(time.RFC3339))
}

// TestGoldenSign: Sign's output, byte for byte.
func TestGoldenSign(t *testing.T) {
	for _, in := range goldenInputs {
		for _, hp := range []bool{false, true} {
			t.Run(goldenName("sign", in, hp), func(t *testing.T) {
				out, err := goldenProtector(t).SignMessage(ctx, goldenInput(t, in), Options{HeaderProtection: hp})
				if err != nil {
					t.Fatal(err)
				}
				checkGolden(t, goldenName("sign", in, hp), goldenWhat("Sign", in, hp), out)
			})
		}
	}
}

// encryptedPlaceholder stands for the base64 EnvelopedData, which is random.
const encryptedPlaceholder = "[base64 EnvelopedData: random, checked by decrypting]\r\n"

// TestGoldenProtect: Protect's outer header and framing byte for byte with the (random) ciphertext
// replaced by a placeholder, and the decrypted content byte for byte.
func TestGoldenProtect(t *testing.T) {
	alice, err := keys.LoadPEM(filepath.Join(goldenKeys, "alice.pem"), filepath.Join(goldenKeys, "alice.key"))
	if err != nil {
		t.Fatal(err)
	}
	to := []Recipient{{Certificate: alice.Certificate()}}
	for _, in := range goldenInputs {
		for _, hp := range []bool{false, true} {
			t.Run(goldenName("protect", in, hp), func(t *testing.T) {
				out, err := goldenProtector(t).ProtectMessage(ctx, goldenInput(t, in), to, Options{HeaderProtection: hp})
				if err != nil {
					t.Fatal(err)
				}
				h, body, err := mime.SplitEntity(out)
				if err != nil {
					t.Fatal(err)
				}
				der, err := mime.DecodeBase64(body)
				if err != nil {
					t.Fatal(err)
				}
				d, err := Decrypt(der, alice)
				if err != nil {
					t.Fatal(err)
				}
				var framing bytes.Buffer
				h.WriteTo(&framing)
				framing.WriteString("\r\n" + encryptedPlaceholder)
				checkGolden(t, goldenName("protect", in, hp), goldenWhat("Protect", in, hp)+
					" to ../testdata/inbound/keys/alice.pem; outer framing, the ciphertext replaced", framing.Bytes())
				checkGolden(t, goldenName("protect", in, hp)+".inner", goldenWhat("Protect", in, hp)+
					"; the content decrypted with alice.key", d.Content)
			})
		}
	}
}
