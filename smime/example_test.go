package smime_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"strings"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/smime"
)

// The bank signs and encrypts a statement to alice's certificate; alice's side opens it with the
// inbound verifier (Inspect) that customers' replies to the bank also go through: decrypted with
// her key, the signature checked, the signer chained to the CA they both trust.
func ExampleProtector_ProtectMessage() {
	ca, err := keys.NewDevCA("example CA")
	if err != nil {
		log.Fatal(err)
	}
	bank, err := ca.NewDevSigner([]string{"statements@bank.example"})
	if err != nil {
		log.Fatal(err)
	}
	alice, err := ca.NewDevCustomer("alice@example.com")
	if err != nil {
		log.Fatal(err)
	}
	p, err := smime.NewProtector(bank)
	if err != nil {
		log.Fatal(err)
	}
	msg := "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: your statement\r\n\r\nBalance: 42.00 EUR\r\n"
	out, err := p.ProtectMessage(context.Background(), []byte(msg), []smime.Recipient{{Certificate: alice.Certificate()}}, smime.Options{})
	if err != nil {
		log.Fatal(err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	in, err := smime.Inspect(out, smime.InboundOptions{Identities: []*keys.Identity{alice}, Roots: roots})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("encrypted:", in.Encrypted, "signed:", in.Signed)
	fmt.Println("signature valid:", in.SignatureErr == nil && in.Unsupported == nil, "chain valid:", in.ChainErr == nil)
	fmt.Println("signer:", in.Signer.EmailAddresses)
	fmt.Println("layers:", strings.Join(in.Layers, " > "))
	fmt.Println("content has the balance:", strings.Contains(string(in.Content), "Balance: 42.00 EUR"))
	// Output:
	// encrypted: true signed: true
	// signature valid: true chain valid: true
	// signer: [statements@bank.example]
	// layers: enveloped-data aes256-CBC > signed-detached
	// content has the balance: true
}
