package templates

import (
	"fmt"
	"strings"
	"time"
)

// OTPMessage is what a one-time passcode's mail says. Templates see its fields and the funcs
// minutes (a duration in whole minutes, rounded up) and utc (a time as "2006-01-02 15:04 UTC").
type OTPMessage struct {
	Bank          string        // the bank's name, as customers know it
	Code          string        // the passcode: ASCII digits
	Purpose       string        // login, payment, change, or one the bank configured
	ExpiresIn     time.Duration // how long the code is good for
	ExpiresAt     time.Time     // when it expires; zero: not shown
	Transaction   *Transaction  // what a payment code confirms; nil for other codes
	MaskedAddress string        // where the code was sent, masked (a***e@e*****e.com)
	Domain        string        // the bank's domain, for the origin-bound last line
	Locale        string        // one of Locales; empty: the default
}

// Transaction is the payment a code is bound to (PSD2 dynamic linking): the customer must see it.
type Transaction struct {
	Amount       string // decimal, as the bank sent it
	Currency     string // ISO 4217
	PayeeName    string
	PayeeAccount string
}

// OriginLine is the WICG origin-bound one-time-code line that ends the text part.
func (m OTPMessage) OriginLine() string { return "@" + m.Domain + " #" + m.Code }

func (m OTPMessage) template() (Name, string) { return OTP, m.Locale }

func (m OTPMessage) values() []string {
	v := []string{m.Bank, m.Code, m.Purpose, m.MaskedAddress, m.Domain}
	if t := m.Transaction; t != nil {
		v = append(v, t.Amount, t.Currency, t.PayeeName, t.PayeeAccount)
	}
	return v
}

func (m OTPMessage) rules() rules {
	r := rules{secrets: []string{m.Code}, shown: []string{m.Code}, lastLine: m.OriginLine()}
	if t := m.Transaction; t != nil {
		r.secrets = append(r.secrets, t.Amount)
		r.shown = append(r.shown, t.Amount, t.Currency, t.PayeeName, t.PayeeAccount)
	}
	return r
}

// check refuses an OTP whose code, domain or transaction cannot be written as the format needs.
func (m OTPMessage) check() error {
	if !digits(m.Code) {
		return fmt.Errorf("%w: a code is ASCII digits", ErrData)
	}
	if m.Domain == "" || strings.ContainsAny(m.Domain, " #@") {
		return fmt.Errorf("%w: %q is not a domain", ErrData, m.Domain)
	}
	if m.Purpose == "" || m.ExpiresIn <= 0 {
		return fmt.Errorf("%w: an OTP has a purpose and a lifetime", ErrData)
	}
	if t := m.Transaction; t != nil && (t.Amount == "" || t.Currency == "" || t.PayeeName == "" || t.PayeeAccount == "") {
		return fmt.Errorf("%w: a transaction has an amount, a currency, a payee and the payee's account", ErrData)
	}
	return nil
}

// CallVerificationMessage is what the mail for a phone call says: the code the customer reads to
// the agent, and the code the agent must read back.
type CallVerificationMessage struct {
	Bank         string
	Agent        string        // the agent's name, as they introduced themselves
	CustomerCode string        // the customer reads this to the agent: ASCII digits
	AgentCode    string        // the agent must read this back: ASCII digits
	ExpiresIn    time.Duration // how long the codes are good for
	Locale       string
}

func (m CallVerificationMessage) template() (Name, string) { return CallVerification, m.Locale }

func (m CallVerificationMessage) values() []string {
	return []string{m.Bank, m.Agent, m.CustomerCode, m.AgentCode}
}

func (m CallVerificationMessage) rules() rules {
	return rules{secrets: []string{m.CustomerCode, m.AgentCode}, shown: []string{m.CustomerCode, m.AgentCode, m.Agent}}
}

func (m CallVerificationMessage) check() error {
	if !digits(m.CustomerCode) || !digits(m.AgentCode) || m.CustomerCode == m.AgentCode {
		return fmt.Errorf("%w: a call's two codes are different ASCII digits", ErrData)
	}
	if m.ExpiresIn <= 0 {
		return fmt.Errorf("%w: a call verification has a lifetime", ErrData)
	}
	return nil
}

// Notice is what a keyless notice says: only the bank, where online banking is, and whom it is
// for; nothing of the message it announces.
type Notice struct {
	Bank   string // the bank's name, as customers know it
	URL    string // online banking, for the customer to type
	To     string // the customer's address
	Locale string // one of Locales; empty: the default
}

// Render writes n in its locale with the embedded templates.
func (n Notice) Render() (Rendered, error) { return Default().Render(n) }

func (n Notice) template() (Name, string) { return KeylessNotice, n.Locale }
func (n Notice) values() []string         { return []string{n.Bank, n.URL, n.To} }
func (n Notice) rules() rules             { return rules{shown: []string{n.URL, n.To}} }
func (n Notice) check() error             { return nil }

// StatementMessage is what a statement notice says: a new statement is in online banking.
type StatementMessage struct {
	Bank   string
	URL    string // online banking, for the customer to type
	To     string // the customer's address
	Locale string
}

func (m StatementMessage) template() (Name, string) { return StatementNotice, m.Locale }
func (m StatementMessage) values() []string         { return []string{m.Bank, m.URL, m.To} }
func (m StatementMessage) rules() rules             { return rules{shown: []string{m.URL}} }
func (m StatementMessage) check() error             { return nil }

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// samples are the data every template is rendered with at load: every branch a template has.
func samples(name Name, loc string) []Message {
	switch name {
	case OTP:
		base := OTPMessage{Bank: "Example Bank", Code: "123456", Purpose: "login", ExpiresIn: 10 * time.Minute,
			ExpiresAt: time.Date(2027, 1, 2, 3, 14, 5, 0, time.UTC), MaskedAddress: "a***e@e*****e.com", Domain: "bank.example", Locale: loc}
		change, custom, payment := base, base, base
		change.Purpose, change.ExpiresAt = "change", time.Time{}
		custom.Purpose = "card-activation"
		payment.Purpose, payment.Code = "payment", "98765432"
		payment.Transaction = &Transaction{Amount: "1250.00", Currency: "EUR", PayeeName: "ACME Utilities", PayeeAccount: "DE89370400440532013000"}
		return []Message{base, change, custom, payment}
	case CallVerification:
		return []Message{CallVerificationMessage{Bank: "Example Bank", Agent: "Jana Novak", CustomerCode: "418203",
			AgentCode: "905716", ExpiresIn: 10 * time.Minute, Locale: loc}}
	case KeylessNotice:
		return []Message{Notice{Bank: "Example Bank", URL: "https://online.bank.example/", To: "alice@example.com", Locale: loc}}
	default:
		return []Message{StatementMessage{Bank: "Example Bank", URL: "https://online.bank.example/", To: "alice@example.com", Locale: loc}}
	}
}
