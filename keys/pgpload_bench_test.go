package keys

import (
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// BenchmarkLoadPGPKey: loading the bank's OpenPGP key as a data directory's first start makes it
// (passphrase-protected, the passphrase in pgp.pass): what every sealpost protect for an OpenPGP
// customer pays at start-up.
func BenchmarkLoadPGPKey(b *testing.B) {
	d := DataDir(b.TempDir())
	if err := d.Init([]string{"statements@bank.example"}); err != nil {
		b.Fatal(err)
	}
	var e *openpgp.Entity
	for b.Loop() {
		var err error
		if e, err = d.PGPKey(); err != nil {
			b.Fatal(err)
		}
	}
	_ = e
}
