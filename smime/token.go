package smime

import "fmt"

// TimestampOf returns the signature value of the single signer of a DER CMS SignedData and the RFC
// 3161 token in its id-aa-timeStampToken attribute (nil if it has none), without verifying either:
// for handing both to another verifier, e.g. openssl ts -verify.
func TimestampOf(signedData []byte) (sigValue, token []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			sigValue, token, err = nil, nil, fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	der, err := BERToDER(signedData)
	if err != nil {
		return nil, nil, err
	}
	sd, err := parseSignedData(der)
	if err != nil {
		return nil, nil, err
	}
	if len(sd.signers) != 1 {
		return nil, nil, fmt.Errorf("%w: %d signers", ErrMalformed, len(sd.signers))
	}
	si := sd.signers[0]
	if t := si.timestampTokens(); len(t) > 0 {
		return si.signature, t[0], nil
	}
	return si.signature, nil, nil
}
