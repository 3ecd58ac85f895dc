package main

import (
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/smime"
)

// inspectSMIME and inspectPGP check sealpost's output from the customer's side through the
// verifier customers' mail goes through, its findings as one error (Inbound.Err).
func inspectSMIME(msg []byte, opts smime.InboundOptions) (*smime.Inbound, error) {
	in, err := smime.Inspect(msg, opts)
	if err != nil {
		return nil, err
	}
	return in, in.Err()
}

func inspectPGP(msg []byte, opts pgp.InboundOptions) (*pgp.Inbound, error) {
	in, err := pgp.Inspect(msg, opts)
	if err != nil {
		return nil, err
	}
	return in, in.Err()
}
