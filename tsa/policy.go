package tsa

import (
	"encoding/asn1"
	"fmt"
	"strconv"
	"strings"
)

// DefaultPolicy is the TSA policy OID an Authority puts in its tokens unless WithPolicy says
// otherwise: 1.3.6.1.4.1.32473.3161.1, under the private enterprise number IANA reserves for
// documentation (RFC 5612). It names no real policy: the embedded Authority is for development,
// and a bank that runs it sets the OID of its own published time-stamping policy.
const DefaultPolicy = "1.3.6.1.4.1.32473.3161.1"

// maxPolicyLen bounds a dotted OID read from configuration; real policy OIDs are far shorter.
const maxPolicyLen = 256

// ParsePolicy reads a TSA policy OID in dotted decimal form ("1.2.3.4"), as configuration spells
// it: at least two arcs, the first 0, 1 or 2 (and then the second below 40 unless the first is 2),
// decimal digits without leading zeros. Errors wrap ErrConfig.
func ParsePolicy(s string) (asn1.ObjectIdentifier, error) {
	if len(s) > maxPolicyLen {
		return nil, fmt.Errorf("%w: OID longer than %d characters", ErrConfig, maxPolicyLen)
	}
	arcs := strings.Split(s, ".")
	if len(arcs) < 2 {
		return nil, fmt.Errorf("%w: %q is not a dotted OID such as 1.3.6.1.4.1.NNNN.1", ErrConfig, s)
	}
	oid := make(asn1.ObjectIdentifier, len(arcs))
	for i, a := range arcs {
		if a == "" || strings.Trim(a, "0123456789") != "" || (len(a) > 1 && a[0] == '0') {
			return nil, fmt.Errorf("%w: %q: arc %q is not a decimal number", ErrConfig, s, a)
		}
		n, err := strconv.ParseInt(a, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: arc %s is too large", ErrConfig, s, a)
		}
		oid[i] = int(n)
	}
	if oid[0] > 2 || (oid[0] < 2 && oid[1] >= 40) {
		return nil, fmt.Errorf("%w: %q: the first arc must be 0, 1 or 2, and the second below 40 unless the first is 2", ErrConfig, s)
	}
	if _, err := asn1.Marshal(oid); err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrConfig, s, err)
	}
	return oid, nil
}
