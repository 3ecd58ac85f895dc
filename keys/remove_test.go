package keys_test

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/sealpost/sealpost/keys"
)

// TestRemoveRecipient: a certificate and an OpenPGP key leave the recipient directory by their
// fingerprints; what is not there, or is not a fingerprint, is an error and removes nothing.
func TestRemoveRecipient(t *testing.T) {
	dir := keys.DataDir(t.TempDir())
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	ca, _ := dir.Identity("ca")
	alice, err := ca.NewDevCustomer("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	carol, err := keys.NewDevPGPKey("Carol", []string{"carol@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := keys.EncodePGPPublicKeys(carol)
	for _, data := range [][]byte{keys.EncodeCertificates(alice.Certificate()), pub} {
		if _, err := dir.Import(data, keys.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dir.RemoveRecipient("not hex"); err == nil {
		t.Fatal("a fingerprint that is not hex was accepted")
	}
	for _, fp := range []string{keys.CertFingerprint(alice.Certificate()), keys.PGPFingerprint(carol)} {
		if err := dir.RemoveRecipient(fp); err != nil {
			t.Fatalf("remove %s: %v", fp, err)
		}
		if err := dir.RemoveRecipient(fp); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("remove %s again: %v, want fs.ErrNotExist", fp, err)
		}
	}
	d, err := dir.Directory()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.Entries()); n != 0 {
		t.Fatalf("%d entries left in the recipient directory", n)
	}
}
