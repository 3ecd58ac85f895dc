package otp

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/store"
)

// maxAgent bounds an agent's name.
const maxAgent = 100

// Call is a call verification that was made.
type Call struct {
	ID string
	// CustomerCode is what the customer reads to the agent, and AgentCode
	// what the agent must read back: both for the mail to the customer and
	// nothing else (AgentCode comes again from CheckCustomerCode).
	CustomerCode  string
	AgentCode     string
	ExpiresAt     time.Time
	MaskedAddress string
}

// CallResult is what CheckCustomerCode found.
type CallResult struct {
	Result
	// AgentCode is the code for the agent to say, set with Verified only.
	AgentCode string
}

// NewCall makes a call verification for the customer at address, whom
// agent (1 to 100 printable characters, the caller's to put in the mail)
// calls for the client of tokenID. It counts against the address's rate
// limit. Errors: ErrBadAddress, ErrBadAgent, a *RateLimitedError.
func (s *Service) NewCall(ctx context.Context, address, agent, tokenID string) (Call, error) {
	if _, err := store.NormalizeAddress(address); err != nil {
		return Call{}, fmt.Errorf("%w: %q", ErrBadAddress, address)
	}
	if !printable(agent, maxAgent) {
		return Call{}, ErrBadAgent
	}
	cv := s.cfg.CallVerification
	id := newID(callPrefix)
	customer, agentCode := newCode(cv.Digits), newCode(cv.Digits)
	for agentCode == customer {
		agentCode = newCode(cv.Digits)
	}
	nonce := make([]byte, s.seal.NonceSize(), s.seal.NonceSize()+len(agentCode)+s.seal.Overhead())
	rand.Read(nonce)
	now := s.now()
	o := store.OTP{
		ID: id, Kind: kindCall, TokenID: tokenID, Purpose: purposeCall, Address: address, Digits: cv.Digits,
		CodeMAC: s.codeMAC(id, customer), Sealed: s.seal.Seal(nonce, nonce, []byte(agentCode), []byte(id)),
		Created: now, Expires: now.Add(time.Duration(cv.TTL)), AttemptsLeft: cv.Attempts,
	}
	if err := s.put(ctx, o); err != nil {
		return Call{}, err
	}
	return Call{ID: id, CustomerCode: customer, AgentCode: agentCode, ExpiresAt: o.Expires, MaskedAddress: MaskAddress(address)}, nil
}

// CheckCustomerCode checks the code the customer read to the agent, for
// call verification id made by the client of tokenID: Verified (once) with
// the agent's code to say, or WrongCode, Expired, Locked, Used or NotFound
// as Verify's. ErrBadCode for what is not a code of its length.
func (s *Service) CheckCustomerCode(ctx context.Context, id, code, tokenID string) (CallResult, error) {
	if err := checkCode(code); err != nil {
		return CallResult{}, err
	}
	if !validID(id, callPrefix) {
		return CallResult{Result: Result{Status: NotFound}}, nil
	}
	r, stored, err := s.attempt(ctx, kindCall, id, code, nil, tokenID)
	if err != nil || r.Status != Verified {
		return CallResult{Result: r}, err
	}
	ns := s.seal.NonceSize()
	if len(stored.Sealed) < ns {
		return CallResult{}, fmt.Errorf("otp: call verification %s: sealed agent code of %d bytes", id, len(stored.Sealed))
	}
	agent, err := s.seal.Open(nil, stored.Sealed[:ns], stored.Sealed[ns:], []byte(id))
	if err != nil {
		return CallResult{}, fmt.Errorf("otp: call verification %s: open the agent code (another server key?): %w", id, err)
	}
	return CallResult{Result: r, AgentCode: string(agent)}, nil
}
