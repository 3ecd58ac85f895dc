package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
)

// runBundle runs the bundle's verify.sh with sh, as a third party would: openssl, sha256sum and
// the shell, nothing of sealpost.
func runBundle(t *testing.T, dir string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "verify.sh")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestBundleVerifiesWithOpenSSL: for records at every position of trees of several sizes (a
// proof of one step, of several, of none), the exported bundle passes verify.sh — openssl verify,
// dgst -verify, ts -verify, sha256sum and the proof's hashing — and fails when the record, the
// checkpoint, a proof hash or the message is changed.
func TestBundleVerifiesWithOpenSSL(t *testing.T) {
	interop.Tool(t, "openssl")
	interop.Tool(t, "sha256sum")
	b := testBank(t)
	for _, n := range []int{1, 2, 7} {
		l, fb := openLog(t, t.TempDir())
		fill(t, l, n, 0)
		if _, err := l.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
		for seq := range n {
			p, err := Prove(fb, uint64(seq))
			if err != nil {
				t.Fatalf("n=%d seq=%d: %v", n, seq, err)
			}
			dir := t.TempDir()
			if err := WriteBundle(dir, p, []*x509.Certificate{b.ca.Certificate()}, b.tsaID.Chain, nil); err != nil {
				t.Fatal(err)
			}
			out, err := runBundle(t, dir)
			if err != nil || !strings.Contains(out, "inclusion proven") || !strings.Contains(out, "Verified OK") {
				t.Fatalf("n=%d seq=%d: verify.sh: %v\n%s", n, seq, err, out)
			}
			if n == 7 && seq == 3 {
				tamper := func(name string, f func([]byte) []byte) {
					t.Helper()
					path := filepath.Join(dir, name)
					orig, _ := os.ReadFile(path)
					os.WriteFile(path, f(bytes.Clone(orig)), 0o644)
					if out, err := runBundle(t, dir); err == nil {
						t.Errorf("%s changed, verify.sh passed:\n%s", name, out)
					}
					os.WriteFile(path, orig, 0o644)
				}
				tamper("checkpoint.txt", func(b []byte) []byte { return bytes.Replace(b, []byte("size: 7"), []byte("size: 8"), 1) })
				tamper("record.json", func(b []byte) []byte { return bytes.Replace(b, []byte("c3@"), []byte("c4@"), 1) })
				tamper("proof/01-left.bin", func(b []byte) []byte { b[0] ^= 1; return b })
				tamper("checkpoint.sig", func(b []byte) []byte { b[10] ^= 1; return b })
			}
		}
	}

	// With the message: sha256sum of message.eml must be the record's sent_sha256.
	l, fb := openLog(t, t.TempDir())
	msg := []byte("From: statements@bank.example\r\n\r\nthe bytes sent\r\n")
	d := sha256.Sum256(msg)
	r := outboundRecord(1)
	r.Outbound.SentSHA256 = hex.EncodeToString(d[:])
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	p, err := Prove(fb, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteBundle(dir, p, []*x509.Certificate{b.ca.Certificate()}, b.tsaID.Chain, msg); err != nil {
		t.Fatal(err)
	}
	if out, err := runBundle(t, dir); err != nil || !strings.Contains(out, "as recorded") {
		t.Fatalf("with the message: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "message.eml"), bytes.Replace(msg, []byte("bytes"), []byte("BYTES"), 1), 0o644)
	if out, err := runBundle(t, dir); err == nil {
		t.Fatalf("a changed message passed:\n%s", out)
	}
}

// TestFindSent: the message as received — with trace fields above it, or saved with LF line
// ends — is found by the digest of the bytes sent; other bytes are not.
func TestFindSent(t *testing.T) {
	l, fb := openLog(t, t.TempDir())
	sent := []byte("DKIM-Signature: v=1\r\nFrom: statements@bank.example\r\nTo: c@example.com\r\n\r\nbody\r\n")
	d := sha256.Sum256(sent)
	fill(t, l, 3, 0)
	r := outboundRecord(99)
	r.Outbound.SentSHA256 = hex.EncodeToString(d[:])
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	received := append([]byte("Return-Path: <statements@bank.example>\r\nReceived: from relay by mx; Tue, 1 Dec 2026 10:00:00 +0000\r\n"), sent...)
	for name, msg := range map[string][]byte{"AsSent": sent, "WithTrace": received, "SavedWithLF": bytes.ReplaceAll(received, []byte("\r\n"), []byte("\n"))} {
		seq, got, err := FindSent(fb, msg)
		if err != nil || seq != 3 || !bytes.Equal(got, sent) {
			t.Errorf("%s: %d %q %v", name, seq, got, err)
		}
	}
	if _, _, err := FindSent(fb, bytes.Replace(received, []byte("body"), []byte("BODY"), 1)); err == nil {
		t.Error("a changed message was found")
	}
}
