package keys

import (
	"crypto/x509"
	"testing"
)

// TestEntriesFor: the entries of one address are those Entries lists naming it (any case of the
// address), and none of another address's.
func TestEntriesFor(t *testing.T) {
	ca, err := NewDevCA("entries CA")
	if err != nil {
		t.Fatal(err)
	}
	alice, err := ca.NewDevCustomer("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := ca.NewDevCustomer("bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDirectory(ca.Chain, []*x509.Certificate{alice.Certificate(), bob.Certificate()})
	got, err := d.EntriesFor("ALICE@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Certificate.Equal(alice.Certificate()) || got[0].Problem != nil {
		t.Fatalf("EntriesFor(ALICE@example.com) = %+v, want alice's usable certificate", got)
	}
	if got, _ := d.EntriesFor("carol@example.com"); len(got) != 0 {
		t.Fatalf("EntriesFor(carol) = %+v, want none", got)
	}
	if _, err := d.EntriesFor("not an address"); err == nil {
		t.Fatal("EntriesFor(not an address): no error")
	}
}
