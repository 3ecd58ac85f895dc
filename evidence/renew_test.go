package evidence

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/tsa"
)

// shortLivedTSA is a TSA of the test bank's CA whose certificate expires at notAfter: the TSA
// whose certificate ages out.
func shortLivedTSA(t *testing.T, notAfter time.Time) *tsa.Authority {
	t.Helper()
	b := testBank(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := b.ca.Issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "ageing TSA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtraExtensions:       []pkix.Extension{keys.TimeStampingExtension()},
		BasicConstraintsValid: true,
	}, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	a, err := tsa.NewAuthority(key, []*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRenewalKeepsAnAgedTSAVerifiable: a checkpoint timestamped by a TSA whose certificate then
// expires is reported as not renewed; evidence renew with the TSA of the day covers it (and a
// second renewal chains over the first); a renewal edited, moved or made to no checkpoint is
// named by Verify; the bundle of a renewed checkpoint passes verify.sh with openssl, and fails
// when a renewal token is changed.
func TestRenewalKeepsAnAgedTSAVerifiable(t *testing.T) {
	ctx := context.Background()
	b := testBank(t)
	expires := time.Now().Add(2 * time.Hour)
	later := b.trust
	later.Now = expires.Add(time.Hour)

	dir := t.TempDir()
	fb, err := OpenFileBackend(dir)
	if err != nil {
		t.Fatal(err)
	}
	old, err := Open(fb, "node-a", b.signer, shortLivedTSA(t, expires))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Renew(ctx); !errors.Is(err, ErrNothingToRenew) {
		t.Fatalf("renew of an empty log: %v; want ErrNothingToRenew", err)
	}
	fill(t, old, 10, 0)
	if _, err := old.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(fb, b.trust); err != nil || rep.Problem != nil || rep.Expired != 0 {
		t.Fatalf("today: %+v, %v", rep, err)
	}
	if rep, err := Verify(fb, later); err != nil || rep.Problem != nil || rep.Expired != 1 || rep.Unrenewed != 1 {
		t.Fatalf("after the TSA's certificate expired, without a renewal: %+v, %v; want 1 expired, 1 not renewed", rep, err)
	}
	fb.Close()

	// The bank moves to the TSA of the day and renews before the old certificate expires.
	l, fb := openLog(t, dir)
	for i := range 2 {
		r, err := l.Renew(ctx)
		if err != nil || r.Head.Size != 10 || r.Time.IsZero() {
			t.Fatalf("renewal %d: %+v, %v", i+1, r, err)
		}
	}
	rep, err := Verify(fb, later)
	if err != nil || rep.Problem != nil || rep.Renewals != 2 || rep.Renewed.Size != 10 || rep.Expired != 1 || rep.Unrenewed != 0 {
		t.Fatalf("renewed: %+v, %v; want 2 renewals covering the expired one", rep, err)
	}
	// The log goes on after renewals: they are not checkpoints of their own.
	fill(t, l, 3, 0)
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(fb, later); err != nil || rep.Problem != nil || rep.Checkpoints != 2 || rep.Renewals != 2 || rep.Verified != 13 {
		t.Fatalf("after renewals and more records: %+v, %v", rep, err)
	}

	// Tampering with renewals is named.
	cpPath := filepath.Join(dir, "checkpoints.log")
	orig, err := os.ReadFile(cpPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(orig, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty string after the last newline
	if len(lines) != 4 {
		t.Fatalf("%d checkpoint lines; want 4 (checkpoint, 2 renewals, checkpoint)", len(lines))
	}
	for _, c := range []struct {
		name, want string
		lines      [][]byte
	}{
		{"renewals swapped", "renewal", [][]byte{lines[0], lines[2], lines[1], lines[3]}},
		{"a renewal before its checkpoint", "does not follow", [][]byte{lines[1], lines[0], lines[2], lines[3]}},
		{"a renewal after a later checkpoint", "does not follow", [][]byte{lines[0], lines[1], lines[3], lines[2]}},
		{"a renewal's token changed", "renewal", [][]byte{lines[0], flipInToken(t, lines[1]), lines[2], lines[3]}},
	} {
		os.WriteFile(cpPath, bytes.Join(c.lines, nil), 0o600)
		rep, err := Verify(fb, later)
		if err != nil || rep.Problem == nil || !strings.Contains(rep.Problem.What, c.want) {
			t.Errorf("%s: %+v, %v; want a problem naming %q", c.name, rep.Problem, err, c.want)
		}
	}
	// Without the renewals the aged checkpoint is not covered again.
	os.WriteFile(cpPath, bytes.Join([][]byte{lines[0], lines[3]}, nil), 0o600)
	if rep, err := Verify(fb, later); err != nil || rep.Problem != nil || rep.Unrenewed != 1 {
		t.Errorf("renewals removed: %+v, %v; want the aged checkpoint not renewed", rep, err)
	}
	os.WriteFile(cpPath, orig, 0o600)

	// The bundle of a record under the renewed checkpoint (its newest: the last line removed).
	os.WriteFile(cpPath, bytes.Join(lines[:3], nil), 0o600)
	defer os.WriteFile(cpPath, orig, 0o600)
	p, err := Prove(fb, 4)
	if err != nil || len(p.Renewals) != 2 || p.Head.Size != 10 {
		t.Fatalf("proof: %d renewals, head %+v, %v", len(p.Renewals), p.Head, err)
	}
	interop.Tool(t, "openssl")
	interop.Tool(t, "sha256sum")
	bundle := t.TempDir()
	if err := WriteBundle(bundle, p, []*x509.Certificate{b.ca.Certificate()}, b.tsaID.Chain, nil); err != nil {
		t.Fatal(err)
	}
	out, err := runBundle(t, bundle)
	if err != nil || strings.Count(out, "Verification: OK") != 3 || !strings.Contains(out, "inclusion proven") {
		t.Fatalf("verify.sh of a renewed checkpoint: %v\n%s", err, out)
	}
	for _, name := range []string{"renewal-1.tst", "renewal-2.tst"} {
		path := filepath.Join(bundle, name)
		tok, _ := os.ReadFile(path)
		bad := bytes.Clone(tok)
		bad[len(bad)/2] ^= 1
		os.WriteFile(path, bad, 0o644)
		if out, err := runBundle(t, bundle); err == nil {
			t.Errorf("%s changed, verify.sh passed:\n%s", name, out)
		}
		os.WriteFile(path, tok, 0o644)
	}
}

// flipInToken changes one byte in the middle of a checkpoint line's token.
func flipInToken(t *testing.T, line []byte) []byte {
	t.Helper()
	cp, err := decodeCheckpoint(line)
	if err != nil {
		t.Fatal(err)
	}
	cp.Token = bytes.Clone(cp.Token)
	cp.Token[len(cp.Token)/2] ^= 1
	out, err := encodeCheckpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}
