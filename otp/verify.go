package otp

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"

	"github.com/sealpost/sealpost/store"
)

// Status is the outcome of a verification.
type Status string

// The outcomes of Verify and CheckCustomerCode.
const (
	Verified  Status = "verified"
	WrongCode Status = "wrong-code"
	Expired   Status = "expired"
	Locked    Status = "locked"
	Mismatch  Status = "mismatch"
	Used      Status = "used"
	NotFound  Status = "not-found"
)

// Result is what a verification found.
type Result struct {
	Status Status
	// AttemptsLeft is how many wrong codes may still be tried: set with
	// WrongCode (0 when that one locked it).
	AttemptsLeft int
	// Purpose is the code's (for metrics per purpose); empty with NotFound.
	Purpose string
}

// Verify checks code, and tx against the transaction the code was issued
// for (nil for none), of the OTP id issued by the client of tokenID; the
// code is used when it verifies. A wrong code counts an attempt, and a
// right code with another transaction is Mismatch and invalidates it.
// Errors: ErrBadCode for what is not a code of the OTP's length (no
// attempt counted), ErrBadAmount, ErrBadCurrency or ErrBadPayee for a bad
// tx, and the store's.
func (s *Service) Verify(ctx context.Context, id, code string, tx *Transaction, tokenID string) (Result, error) {
	if err := checkCode(code); err != nil {
		return Result{}, err
	}
	bound, err := binding(s.bindKey, id, tx)
	if err != nil {
		return Result{}, err
	}
	if !validID(id, otpPrefix) {
		return Result{Status: NotFound}, nil
	}
	r, _, err := s.attempt(ctx, kindOTP, id, code, bound, tokenID)
	return r, err
}

// errCodeLength stops an attempt with a code of another length than the
// stored one's.
var errCodeLength = errors.New("otp: code of the wrong length")

// attempt checks code and binding against the stored OTP of kind in one
// store operation and returns the result and the OTP as stored after it.
func (s *Service) attempt(ctx context.Context, kind, id, code string, bound []byte, tokenID string) (Result, store.OTP, error) {
	mac := s.codeMAC(id, code)
	now := s.now()
	var r Result
	var digits int
	stored, err := s.st.UpdateOTP(ctx, id, func(o *store.OTP) (bool, error) {
		if o.Kind != kind || o.TokenID != tokenID {
			r = Result{Status: NotFound}
			return false, nil
		}
		if digits = o.Digits; len(code) != digits {
			return false, errCodeLength
		}
		r = Result{Purpose: o.Purpose}
		switch {
		case !o.Used.IsZero():
			r.Status = Used
			return false, nil
		case !now.Before(o.Expires):
			r.Status = Expired
			return false, nil
		case o.AttemptsLeft == 0:
			r.Status = Locked
			return false, nil
		}
		// Both compared in constant time, whatever the first found.
		codeOK, boundOK := hmac.Equal(mac, o.CodeMAC), hmac.Equal(bound, o.Binding)
		switch {
		case codeOK && boundOK:
			r.Status, o.Used = Verified, now
		case codeOK:
			r.Status, o.AttemptsLeft = Mismatch, 0
		default:
			o.AttemptsLeft--
			r.Status, r.AttemptsLeft = WrongCode, o.AttemptsLeft
		}
		return true, nil
	})
	switch {
	case errors.Is(err, errCodeLength):
		return Result{}, store.OTP{}, fmt.Errorf("%w: want %d digits", ErrBadCode, digits)
	case errors.Is(err, store.ErrNotFound):
		return Result{Status: NotFound}, store.OTP{}, nil
	case err != nil:
		return Result{}, store.OTP{}, fmt.Errorf("otp: %w", err)
	case r.Status == NotFound:
		return r, store.OTP{}, nil
	}
	return r, stored, nil
}
