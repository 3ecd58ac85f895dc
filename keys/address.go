package keys

import "github.com/sealpost/sealpost/address"

// ErrBadAddress is returned for a string that is not a plain addr-spec: it is address.ErrInvalid,
// so errors.Is matches either name.
var ErrBadAddress = address.ErrInvalid
