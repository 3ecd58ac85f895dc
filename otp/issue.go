package otp

import (
	"context"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/store"
)

// Request asks for a code.
type Request struct {
	// Address is where the caller sends the code.
	Address string
	// Purpose names one of the configuration's purposes.
	Purpose string
	// Transaction is what the code confirms; the purposes with Transaction
	// set need one, the others may have one.
	Transaction *Transaction
	// TTL is the code's lifetime: 0 for the purpose's, else 30s to its
	// MaxTTL.
	TTL time.Duration
	// TokenID is the API token of the caller: only its client may verify
	// the code.
	TokenID string
}

// Issued is a code that was issued.
type Issued struct {
	ID string
	// Code is for the mail to the customer and nothing else: it is not
	// stored, and the caller must not log or keep it.
	Code          string
	ExpiresAt     time.Time
	MaskedAddress string
}

// Issue makes a code for r and stores its HMAC (and its transaction's).
// Errors: ErrUnknownPurpose, ErrTTL, ErrNoTransaction, ErrBadAmount,
// ErrBadCurrency, ErrBadPayee, ErrBadAddress for bad input, and a
// *RateLimitedError (ErrRateLimited) when the address has had its codes
// for the window; nothing is stored then.
func (s *Service) Issue(ctx context.Context, r Request) (Issued, error) {
	p, ok := s.cfg.Purposes[r.Purpose]
	if !ok {
		return Issued{}, fmt.Errorf("%w: %q", ErrUnknownPurpose, r.Purpose)
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = time.Duration(p.TTL)
	}
	if ttl < MinTTL || ttl > time.Duration(p.MaxTTL) {
		return Issued{}, fmt.Errorf("%w: %s (want %s to %s for %s)", ErrTTL, ttl, MinTTL, time.Duration(p.MaxTTL), r.Purpose)
	}
	if p.Transaction && r.Transaction == nil {
		return Issued{}, fmt.Errorf("%w: %s", ErrNoTransaction, r.Purpose)
	}
	if _, err := store.NormalizeAddress(r.Address); err != nil {
		return Issued{}, fmt.Errorf("%w: %q", ErrBadAddress, r.Address)
	}
	id := newID(otpPrefix)
	bound, err := binding(s.bindKey, id, r.Transaction)
	if err != nil {
		return Issued{}, err
	}
	code := newCode(p.Digits)
	now := s.now()
	o := store.OTP{
		ID: id, Kind: kindOTP, TokenID: r.TokenID, Purpose: r.Purpose, Address: r.Address, Digits: p.Digits,
		CodeMAC: s.codeMAC(id, code), Binding: bound, Created: now, Expires: now.Add(ttl), AttemptsLeft: p.Attempts,
	}
	if err := s.put(ctx, o); err != nil {
		return Issued{}, err
	}
	return Issued{ID: id, Code: code, ExpiresAt: o.Expires, MaskedAddress: MaskAddress(r.Address)}, nil
}
