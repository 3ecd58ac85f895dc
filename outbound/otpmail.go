package outbound

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/templates"
)

// ErrNoKey is what Reach, SendOTP and SendCall wrap for a customer without a usable key (it is
// gateway.ErrNoKey, named here for the pipeline's callers).
var ErrNoKey = gateway.ErrNoKey

// OTPTransaction is what a payment code's mail shows: the payment it confirms.
type OTPTransaction struct {
	Amount, Currency, PayeeName, PayeeAccount string
}

// ErrNoOTPSender: no rule gives the otp class an address to send from.
var ErrNoOTPSender = errors.New("outbound: no rule names an address of the otp class to send codes from")

// OTPMail is a one-time passcode's mail: the code goes inside the protected message only.
type OTPMail struct {
	To          string
	Code        string
	Purpose     string
	ExpiresAt   time.Time
	Transaction *OTPTransaction
	Masked      string
	Locale      string
}

// CallMail is a call verification's mail: the code the customer reads to the agent and the one
// the agent must read back.
type CallMail struct {
	To           string
	Agent        string
	CustomerCode string
	AgentCode    string
	ExpiresAt    time.Time
	Locale       string
}

// otpSender is the address codes are sent from: the first rule's of the otp class that names an
// address (not a domain).
func (c *Config) otpSender() (string, error) {
	for _, r := range c.Rules {
		if r.Class == ClassOTP && !strings.HasPrefix(r.Sender, "@") {
			return r.Sender, nil
		}
	}
	return "", ErrNoOTPSender
}

// Reach says how a customer's mail would be protected now ("smime" or "pgp"), or why it cannot
// be (an error wrapping gateway.ErrNoKey): the OTP service asks before it makes a code, so that
// no code exists for a customer who could not receive it.
func (g *Pipeline) Reach(addr string) (string, error) {
	c, err := g.directory.Load().Choose(addr, g.prefer)
	if err == nil && c.Method == keys.MethodPGP && g.pgp == nil {
		err = &keys.RecipientError{Address: addr}
	}
	if err != nil {
		return "", errors.Join(gateway.ErrNoKey, err)
	}
	if c.Method == keys.MethodPGP {
		return "pgp", nil
	}
	return "smime", nil
}

// SendOTP writes the code's mail from the bank's templates and sends it through the pipeline in the
// otp class (signed, timestamped, encrypted, header protection as the class says, the OTP lane).
func (g *Pipeline) SendOTP(ctx context.Context, m OTPMail) ([]string, error) {
	from, err := g.cfg.otpSender()
	if err != nil {
		return nil, err
	}
	var tx *templates.Transaction
	if t := m.Transaction; t != nil {
		tx = &templates.Transaction{Amount: t.Amount, Currency: t.Currency, PayeeName: t.PayeeName, PayeeAccount: t.PayeeAccount}
	}
	r, err := g.templates.Render(templates.OTPMessage{Bank: g.cfg.Notice.Bank, Code: m.Code, Purpose: m.Purpose,
		ExpiresIn: time.Until(m.ExpiresAt).Round(time.Second), ExpiresAt: m.ExpiresAt, Transaction: tx,
		MaskedAddress: m.Masked, Domain: address.Domain(from), Locale: templates.Fallback(m.Locale)})
	if err != nil {
		return nil, err
	}
	return g.sendRendered(ctx, from, m.To, r)
}

// SendCall writes a call verification's mail and sends it as SendOTP does.
func (g *Pipeline) SendCall(ctx context.Context, m CallMail) ([]string, error) {
	from, err := g.cfg.otpSender()
	if err != nil {
		return nil, err
	}
	r, err := g.templates.Render(templates.CallVerificationMessage{Bank: g.cfg.Notice.Bank, Agent: m.Agent,
		CustomerCode: m.CustomerCode, AgentCode: m.AgentCode, ExpiresIn: time.Until(m.ExpiresAt).Round(time.Second),
		Locale: templates.Fallback(m.Locale)})
	if err != nil {
		return nil, err
	}
	return g.sendRendered(ctx, from, m.To, r)
}

// sendRendered builds the message and submits it.
func (g *Pipeline) sendRendered(ctx context.Context, from, to string, r templates.Rendered) ([]string, error) {
	id, err := newMessageID("otp", from)
	if err != nil {
		return nil, err
	}
	msg, err := r.Message(from, to, g.now(), id)
	if err != nil {
		return nil, fmt.Errorf("outbound: %w", err)
	}
	return g.Submit(ctx, from, []string{to}, msg)
}
