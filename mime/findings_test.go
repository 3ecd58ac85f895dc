package mime

import (
	"errors"
	"testing"
)

// TestFindings: only a signed message whose signed part is the root, with a signer and no
// finding, passes; everything else wraps the protocol's sentinel and each finding.
func TestFindings(t *testing.T) {
	errSig, errChain := errors.New("signature"), errors.New("chain")
	for _, c := range []struct {
		name                 string
		signed, root, signer bool
		errs                 []error
		pass                 bool
		wraps                error
	}{
		{"verified", true, true, true, []error{nil, nil}, true, nil},
		{"unsigned", false, true, true, nil, false, errSig},
		{"signed part inside a multipart", true, false, true, nil, false, errSig},
		{"no signer", true, true, false, nil, false, errSig},
		{"a finding", true, true, true, []error{nil, errChain}, false, errChain},
	} {
		err := Findings(errSig, c.signed, c.root, c.signer, "no signer", c.errs...)
		if (err == nil) != c.pass || (c.wraps != nil && !errors.Is(err, c.wraps)) || (!c.pass && !errors.Is(err, errSig)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
