package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/otp"
	"github.com/sealpost/sealpost/outbound"
)

// OTPService issues and checks codes (otp.Service implements it).
type OTPService interface {
	Issue(ctx context.Context, r otp.Request) (otp.Issued, error)
	Verify(ctx context.Context, id, code string, tx *otp.Transaction, tokenID string) (otp.Result, error)
	NewCall(ctx context.Context, address, agent, tokenID string) (otp.Call, error)
	CheckCustomerCode(ctx context.Context, id, code, tokenID string) (otp.CallResult, error)
	// Expire removes codes past their expiry (the server runs it with the idempotent calls').
	Expire(ctx context.Context) (int, error)
}

// OTPMailer sends the codes' mail through the outbound pipeline (outbound.Pipeline implements it).
type OTPMailer interface {
	// Reach says how the customer's mail would be protected, or outbound.ErrNoKey.
	Reach(addr string) (string, error)
	SendOTP(ctx context.Context, m outbound.OTPMail) ([]string, error)
	SendCall(ctx context.Context, m outbound.CallMail) ([]string, error)
}

// Observer is told what happens to codes, for metrics (ops.Metrics implements it): never a code.
type Observer interface {
	// OTPEvent counts event (issued, verified, wrong-code, expired, locked, mismatch, used,
	// rate-limited, no-key) of purpose ("call" for call verifications).
	OTPEvent(event, purpose string)
}

// WithObserver tells o about codes (default: nothing).
func WithObserver(o Observer) Option { return func(s *Server) { s.obs = o } }

type nopObserver struct{}

func (nopObserver) OTPEvent(string, string) {}

// WithOTP serves the one-time passcode and call verification calls: codes from svc, mail through
// mailer. Without it they answer 404.
func WithOTP(svc OTPService, mailer OTPMailer) Option {
	return func(s *Server) { s.otp, s.otpMail = svc, mailer }
}

// OTPRequest is the body of POST /v1/otp.
type OTPRequest struct {
	Address     string           `json:"address"`
	Purpose     string           `json:"purpose"`
	Transaction *otp.Transaction `json:"transaction,omitempty"`
	Locale      string           `json:"locale,omitempty"`
	// TTL is the code's lifetime in seconds; 0 or absent: the purpose's.
	TTL int `json:"ttl,omitempty"`
}

// OTPIssued is the answer of POST /v1/otp: never the code.
type OTPIssued struct {
	ID            string    `json:"id"`
	ExpiresAt     time.Time `json:"expires_at"`
	MaskedAddress string    `json:"masked_address"`
	Method        string    `json:"method"` // smime or pgp
}

// OTPCheck is the body of POST /v1/otp/{id}/verify and of a call's customer-code.
type OTPCheck struct {
	Code        string           `json:"code"`
	Transaction *otp.Transaction `json:"transaction,omitempty"`
}

// OTPVerdict is the answer of a check.
type OTPVerdict struct {
	Result       string `json:"result"` // verified, wrong-code, expired, locked, mismatch, used, not-found
	AttemptsLeft *int   `json:"attempts_left,omitempty"`
	// AgentCode is, for a call verification's verified customer code only, what the agent says.
	AgentCode string `json:"agent_code,omitempty"`
}

// CallRequest is the body of POST /v1/call-verifications.
type CallRequest struct {
	Address string `json:"address"`
	Agent   string `json:"agent"`
	Locale  string `json:"locale,omitempty"`
}

// otpReady is the OTP service, or the problem why there is none.
func (s *Server) otpReady() error {
	if s.otp == nil || s.otpMail == nil {
		return refuse(ProblemNotFound, "this gateway issues no codes")
	}
	return nil
}

// reachCustomer checks the address a code is for (400 bad-address), names it in the audit record,
// and says how the customer's mail would be protected: a customer without a usable key gets no
// code at all (409 no-key, counted for purpose), never plaintext, never a notice.
func (s *Server) reachCustomer(c *call, addr, purpose string) (string, error) {
	if err := checkAddress(addr); err != nil {
		return "", err
	}
	c.target = addr
	method, err := s.otpMail.Reach(addr)
	if errors.Is(err, outbound.ErrNoKey) {
		s.obs.OTPEvent("no-key", purpose)
		return "", refuse(ProblemNoKey, "the customer has no usable certificate or OpenPGP key")
	}
	return method, err
}

// issueProblem is otpProblem for a failed issue, counting a rate-limited one for purpose.
func (s *Server) issueProblem(err error, purpose string) error {
	if errors.Is(err, otp.ErrRateLimited) {
		s.obs.OTPEvent("rate-limited", purpose)
	}
	return otpProblem(err)
}

// postOTP issues a code and mails it, protected, in the OTP lane.
func (s *Server) postOTP(c *call) (response, error) {
	if err := s.otpReady(); err != nil {
		return response{}, err
	}
	var req OTPRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return response{}, err
	}
	purpose := purposeLabel(req.Purpose)
	method, err := s.reachCustomer(c, req.Address, purpose)
	if err != nil {
		return response{}, err
	}
	ctx := c.r.Context()
	issued, err := s.otp.Issue(ctx, otp.Request{Address: req.Address, Purpose: req.Purpose, Transaction: req.Transaction,
		TTL: time.Duration(req.TTL) * time.Second, TokenID: c.token.ID})
	if err != nil {
		return response{}, s.issueProblem(err, purpose)
	}
	mail := outbound.OTPMail{To: req.Address, Code: issued.Code, Purpose: req.Purpose, ExpiresAt: issued.ExpiresAt,
		Masked: issued.MaskedAddress, Locale: req.Locale}
	if tx := req.Transaction; tx != nil {
		mail.Transaction = &outbound.OTPTransaction{Amount: tx.Amount, Currency: tx.Currency, PayeeName: tx.PayeeName, PayeeAccount: tx.PayeeAccount}
	}
	if _, err := s.otpMail.SendOTP(ctx, mail); err != nil {
		return response{}, sendProblem(err)
	}
	s.obs.OTPEvent("issued", purpose)
	c.detail = "issued " + issued.ID + " (" + req.Purpose + ")"
	return jsonResponse(http.StatusCreated, OTPIssued{ID: issued.ID, ExpiresAt: issued.ExpiresAt.UTC(), MaskedAddress: issued.MaskedAddress, Method: method}), nil
}

// postOTPVerify checks a code (and the transaction a payment code is bound to).
func (s *Server) postOTPVerify(c *call) (response, error) {
	if err := s.otpReady(); err != nil {
		return response{}, err
	}
	var req OTPCheck
	if err := decodeJSON(c.body, &req); err != nil {
		return response{}, err
	}
	res, err := s.otp.Verify(c.r.Context(), c.r.PathValue("id"), req.Code, req.Transaction, c.token.ID)
	if err != nil {
		return response{}, otpProblem(err)
	}
	if res.Status == otp.NotFound {
		return response{}, refuse(ProblemNotFound, "no such code for this client")
	}
	s.obs.OTPEvent(string(res.Status), res.Purpose)
	c.detail = string(res.Status)
	return jsonResponse(http.StatusOK, verdict(res, "")), nil
}

// postCall makes a call verification and mails its two codes.
func (s *Server) postCall(c *call) (response, error) {
	if err := s.otpReady(); err != nil {
		return response{}, err
	}
	var req CallRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return response{}, err
	}
	method, err := s.reachCustomer(c, req.Address, "call")
	if err != nil {
		return response{}, err
	}
	ctx := c.r.Context()
	call, err := s.otp.NewCall(ctx, req.Address, req.Agent, c.token.ID)
	if err != nil {
		return response{}, s.issueProblem(err, "call")
	}
	if _, err := s.otpMail.SendCall(ctx, outbound.CallMail{To: req.Address, Agent: req.Agent, CustomerCode: call.CustomerCode,
		AgentCode: call.AgentCode, ExpiresAt: call.ExpiresAt, Locale: req.Locale}); err != nil {
		return response{}, sendProblem(err)
	}
	s.obs.OTPEvent("issued", "call")
	c.detail = "call " + call.ID
	return jsonResponse(http.StatusCreated, OTPIssued{ID: call.ID, ExpiresAt: call.ExpiresAt.UTC(), MaskedAddress: call.MaskedAddress, Method: method}), nil
}

// postCallCustomerCode checks the code the customer read to the agent; on success the answer
// holds the code the agent reads back.
func (s *Server) postCallCustomerCode(c *call) (response, error) {
	if err := s.otpReady(); err != nil {
		return response{}, err
	}
	var req OTPCheck
	if err := decodeJSON(c.body, &req); err != nil {
		return response{}, err
	}
	if req.Transaction != nil {
		return response{}, refuse(ProblemBadJSON, "a call verification has no transaction")
	}
	res, err := s.otp.CheckCustomerCode(c.r.Context(), c.r.PathValue("id"), req.Code, c.token.ID)
	if err != nil {
		return response{}, otpProblem(err)
	}
	if res.Status == otp.NotFound {
		return response{}, refuse(ProblemNotFound, "no such call verification for this client")
	}
	s.obs.OTPEvent(string(res.Status), "call")
	c.detail = string(res.Status)
	resp := jsonResponse(http.StatusOK, verdict(res.Result, res.AgentCode))
	// The agent's code is shown once: a replay of this call must not show it again.
	resp.secret = res.AgentCode != ""
	return resp, nil
}

// verdict is a check's answer.
func verdict(r otp.Result, agentCode string) OTPVerdict {
	v := OTPVerdict{Result: string(r.Status), AgentCode: agentCode}
	if r.Status == otp.WrongCode {
		n := r.AttemptsLeft
		v.AttemptsLeft = &n
	}
	return v
}

// otpProblem maps the OTP service's refusals to their problems; anything else is internal.
func otpProblem(err error) error {
	var rl *otp.RateLimitedError
	switch {
	case errors.As(err, &rl):
		return &problemError{typ: ProblemRateLimited, detail: "too many codes for this address", retryAfter: retryAfterSeconds(rl)}
	case errors.Is(err, otp.ErrUnknownPurpose):
		return refuse(ProblemUnknownPurpose, "")
	case errors.Is(err, otp.ErrBadAmount), errors.Is(err, otp.ErrBadCurrency), errors.Is(err, otp.ErrBadPayee), errors.Is(err, otp.ErrNoTransaction):
		return refuse(ProblemBadTransaction, safeDetail(err.Error()))
	case errors.Is(err, otp.ErrTTL):
		return refuse(ProblemBadTTL, "")
	case errors.Is(err, otp.ErrBadCode):
		return refuse(ProblemBadCode, "")
	case errors.Is(err, otp.ErrBadAddress):
		return refuse(ProblemBadAddress, "")
	case errors.Is(err, otp.ErrBadAgent):
		return refuse(ProblemBadAgent, "")
	}
	return err
}

// sendProblem maps a failure to send the code's mail: a customer without a key (the directory
// changed since Reach) is 409, anything else internal (the code is never shown).
func sendProblem(err error) error {
	if errors.Is(err, outbound.ErrNoKey) {
		return refuse(ProblemNoKey, "the customer has no usable certificate or OpenPGP key")
	}
	return fmt.Errorf("send the code's mail: %w", err)
}

// retryAfterSeconds is Retry-After for a rate limit, at least a second.
func retryAfterSeconds(rl *otp.RateLimitedError) string {
	n := int(rl.RetryAfter.Seconds() + 0.999)
	if n < 1 {
		n = 1
	}
	return strconv.Itoa(n)
}

// checkAddress refuses what is not an email address (400 bad-address) before anything else looks
// at it.
func checkAddress(a string) error {
	_, err := normalizeAddress(a)
	return err
}

// purposeLabel is a purpose as a metric label: the caller's string only when it is shaped like a
// purpose name (a configured one, or a refused one of that shape), else "other".
func purposeLabel(p string) string {
	if p == "" || len(p) > 32 || p[0] < 'a' || p[0] > 'z' || strings.Trim(p, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return "other"
	}
	return p
}
