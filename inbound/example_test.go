package inbound_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sealpost/sealpost/inbound"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// Alice, who registered her certificate with the bank, answers the support desk with an S/MIME
// signed reply (openssl cms -sign, from the committed corpus). The pipeline verifies it (signature,
// chain to the bank's customer CA, From bound to the signer, the registered certificate) and the
// desk receives it with this Sealpost-Verdict.
func ExamplePipeline_Evaluate() {
	const corpus = "../testdata/inbound"
	key := func(name string) string { return filepath.Join(corpus, "keys", name) }
	roots, err := keys.ReadCertificatesFile(key("ca.pem"))
	if err != nil {
		log.Fatal(err)
	}
	bank, err := keys.LoadPEM(key("bank.pem"), key("bank.key"))
	if err != nil {
		log.Fatal(err)
	}
	alice, err := keys.ReadCertificatesFile(key("alice.pem"))
	if err != nil {
		log.Fatal(err)
	}
	tmp, err := os.MkdirTemp("", "sealpost-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	st, err := store.OpenSQLite(filepath.Join(tmp, "sealpost.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.Register(ctx, store.Registration{Address: "alice@customer.example", Method: store.MethodSMIME,
		Fingerprint: keys.CertFingerprint(alice[0])}); err != nil {
		log.Fatal(err)
	}

	cfg := inbound.DefaultConfig()
	cfg.SupportAddresses = []string{"support@bank.example"}
	if err := cfg.Validate(); err != nil {
		log.Fatal(err)
	}
	ib, err := inbound.New(cfg, st, keys.NewDirectory(roots, nil), inbound.WithIdentities(bank))
	if err != nil {
		log.Fatal(err)
	}
	reply, err := os.ReadFile(filepath.Join(corpus, "good", "smime-detached.eml"))
	if err != nil {
		log.Fatal(err)
	}
	res, err := ib.Evaluate(ctx, reply, time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Sealpost-Verdict:", res.Verdict.Header())
	fmt.Println("action:", res.Action)
	// Output:
	// Sealpost-Verdict: verified; method=smime; signer=alice@customer.example; fingerprint=8F5AB3FD931FC24F84FAAF517662C3B146E3646E36E76780C8D51BA07C879757; registered=yes; signed-at=2026-11-22T12:00:00Z; timestamp=no
	// action: deliver
}
