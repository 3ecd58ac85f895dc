package outbound

import (
	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/smime"
)

// Recipient is one recipient of a message with the key the directory chose for it; a nil Choice
// means a signed-only copy (no usable key, and the class's policy allows it), or with Notify a
// notice while the message waits in the secure mailbox (the class's policy is keyless: notify).
type Recipient struct {
	Addr   string
	Choice *keys.Choice
	Notify bool
}

// Plan is how one message goes to its recipients: one copy per method. The S/MIME recipients share
// one envelope, the OpenPGP recipients another, the signed-only recipients a signed copy in clear.
// Each list of keys runs parallel to its list of addresses.
type Plan struct {
	SMIME      []smime.Recipient // certificates only: the caller sets each envelope's GCM and OAEP
	SMIMEAddrs []string
	PGP        []*openpgp.Entity
	PGPAddrs   []string
	Signed     []string
	Notify     []string // keyless: their message goes to the secure mailbox, a notice to them
}

// Encrypted reports whether any recipient gets an encrypted copy.
func (p Plan) Encrypted() bool { return len(p.SMIME) > 0 || len(p.PGP) > 0 }

// Split sorts rcpts into a Plan by the method chosen for each, keeping their order within each
// copy. This is the one place the split is made: the pipeline's DATA and sealpost protect both
// use it.
func Split(rcpts []Recipient) Plan {
	var p Plan
	for _, r := range rcpts {
		switch {
		case r.Notify:
			p.Notify = append(p.Notify, r.Addr)
		case r.Choice == nil:
			p.Signed = append(p.Signed, r.Addr)
		case r.Choice.Method == keys.MethodPGP:
			p.PGP, p.PGPAddrs = append(p.PGP, r.Choice.PGPKey), append(p.PGPAddrs, r.Addr)
		default:
			p.SMIME, p.SMIMEAddrs = append(p.SMIME, smime.Recipient{Certificate: r.Choice.Certificate}), append(p.SMIMEAddrs, r.Addr)
		}
	}
	return p
}

// Choose looks up each of addrs in d, preferring prefer for a customer with keys of both methods,
// and splits them into a Plan. refused holds one error (a *keys.RecipientError or the directory's
// reason) for each address without a usable key, in order; the Plan then lacks those addresses.
func Choose(d *keys.Directory, addrs []string, prefer keys.Method) (p Plan, refused []error) {
	rcpts := make([]Recipient, 0, len(addrs))
	for _, a := range addrs {
		c, err := d.Choose(a, prefer)
		if err != nil {
			refused = append(refused, err)
			continue
		}
		rcpts = append(rcpts, Recipient{Addr: a, Choice: &c})
	}
	return Split(rcpts), refused
}
