package otp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a transaction's fields.
const (
	maxAmountDigits = 18 // of the integer part
	maxPayeeName    = 140
	maxPayeeAccount = 64
)

// Transaction is what a payment code confirms (dynamic linking): the code
// verifies only with the same transaction.
type Transaction struct {
	// Amount is a decimal string: digits (no leading zeros), and '.' with 1
	// to the currency's minor units of decimals where it has any; above 0.
	// "12.5" and "12.50" are the same amount.
	Amount string `json:"amount"`
	// Currency is an upper-case ISO 4217 code ("EUR").
	Currency string `json:"currency"`
	// PayeeName is 1 to 140 printable characters, compared exactly.
	PayeeName string `json:"payee_name"`
	// PayeeAccount (an IBAN, say) is 1 to 64 printable characters, compared
	// exactly.
	PayeeAccount string `json:"payee_account"`
}

// ParseAmount checks amount in currency and returns it canonical: with
// exactly the currency's minor units of decimals ("12.5" EUR is "12.50").
// Errors are ErrBadCurrency and ErrBadAmount.
func ParseAmount(amount, currency string) (string, error) {
	minor, ok := MinorUnits(currency)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrBadCurrency, currency)
	}
	whole, frac, dot := strings.Cut(amount, ".")
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q %s", ErrBadAmount, amount, why)
	}
	switch {
	case !decimalDigits(whole) || len(whole) > maxAmountDigits:
		return bad(fmt.Sprintf("(want 1 to %d digits before any '.')", maxAmountDigits))
	case len(whole) > 1 && whole[0] == '0':
		return bad("has a leading zero")
	case dot && minor == 0:
		return bad(fmt.Sprintf("has decimals, which %s has not", currency))
	case dot && (!decimalDigits(frac) || len(frac) > minor):
		return bad(fmt.Sprintf("(want 1 to %d decimals after '.' in %s)", minor, currency))
	case strings.Trim(whole+frac, "0") == "":
		return bad("is not above 0")
	}
	if minor == 0 {
		return whole, nil
	}
	return whole + "." + frac + strings.Repeat("0", minor-len(frac)), nil
}

// decimalDigits reports whether s is one or more of 0-9.
func decimalDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// printable reports whether s is valid UTF-8 of 1 to max printable
// characters.
func printable(s string, max int) bool {
	n := utf8.RuneCountInString(s)
	return utf8.ValidString(s) && n >= 1 && n <= max && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// canonical checks tx and returns its fields as bound: the amount canonical,
// the others as given.
func (tx Transaction) canonical() ([4]string, error) {
	amount, err := ParseAmount(tx.Amount, tx.Currency)
	switch {
	case err != nil:
		return [4]string{}, err
	case !printable(tx.PayeeName, maxPayeeName):
		return [4]string{}, fmt.Errorf("%w: payee name is not 1 to %d printable characters", ErrBadPayee, maxPayeeName)
	case !printable(tx.PayeeAccount, maxPayeeAccount):
		return [4]string{}, fmt.Errorf("%w: payee account is not 1 to %d printable characters", ErrBadPayee, maxPayeeAccount)
	}
	return [4]string{amount, tx.Currency, tx.PayeeName, tx.PayeeAccount}, nil
}

// bindingLabel makes the binding's encoding its own: no other HMAC under
// the key begins with it.
const bindingLabel = "sealpost otp transaction v1"

// binding returns the HMAC binding OTP id to tx, nil for no transaction:
// over the ID and the canonical fields, each prefixed with its length, so
// that no two transactions encode alike.
func binding(key []byte, id string, tx *Transaction) ([]byte, error) {
	if tx == nil {
		return nil, nil
	}
	fields, err := tx.canonical()
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(bindingLabel))
	for _, f := range append([]string{id}, fields[:]...) {
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
		m.Write([]byte(f))
	}
	return m.Sum(nil), nil
}
