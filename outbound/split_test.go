package outbound

import (
	"errors"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/keys"
)

// TestChooseSplits: alice (S/MIME) and carol (OpenPGP) each get their method's copy, an address
// without a key is refused alone, and a nil choice is a signed-only copy.
func TestChooseSplits(t *testing.T) {
	f := pipelinetest.Get(t)
	p, refused := Choose(f.Direct, []string{"carol@example.org", "nobody@example.net", "Alice@Example.com"}, keys.MethodSMIME)
	var re *keys.RecipientError
	if len(refused) != 1 || !errors.As(refused[0], &re) || re.Address != "nobody@example.net" {
		t.Fatalf("refused %v, want nobody@example.net alone", refused)
	}
	if !slices.Equal(p.SMIMEAddrs, []string{"Alice@Example.com"}) || len(p.SMIME) != 1 || !p.SMIME[0].Certificate.Equal(f.Alice.Certificate()) {
		t.Errorf("S/MIME copy to %q (%d keys), want alice's certificate", p.SMIMEAddrs, len(p.SMIME))
	}
	if !slices.Equal(p.PGPAddrs, []string{"carol@example.org"}) || len(p.PGP) != 1 ||
		keys.PGPFingerprint(p.PGP[0]) != keys.PGPFingerprint(f.Carol) {
		t.Errorf("OpenPGP copy to %q (%d keys), want carol's key", p.PGPAddrs, len(p.PGP))
	}
	if len(p.Signed) != 0 || !p.Encrypted() {
		t.Errorf("plan %+v: want encrypted copies only", p)
	}

	c, err := f.Direct.Choose("alice@example.com", keys.MethodSMIME)
	if err != nil {
		t.Fatal(err)
	}
	p = Split([]Recipient{{Addr: "x@example.net"}, {Addr: "alice@example.com", Choice: &c}, {Addr: "y@example.net"}})
	if !slices.Equal(p.Signed, []string{"x@example.net", "y@example.net"}) || !slices.Equal(p.SMIMEAddrs, []string{"alice@example.com"}) || len(p.PGP) != 0 {
		t.Errorf("plan %+v: want a signed copy to x and y, S/MIME to alice", p)
	}
	if (Plan{Signed: []string{"x@example.net"}}).Encrypted() {
		t.Error("a signed-only plan reports encryption")
	}
}
