package gateway

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/keys"
)

// Class names. Every message belongs to exactly one.
const (
	ClassStatement = "statement"
	ClassOTP       = "otp"
	ClassSupport   = "support"
)

// Duration is a time.Duration written as "10m" or "120h" in configuration.
type Duration time.Duration

// MarshalText writes the duration as Go duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads Go duration syntax ("10m", "120h").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Policy is what a class requires.
type Policy struct {
	// Encryption is "required" (no usable key: refused at RCPT, 550 5.7.1) or "preferred".
	Encryption string `json:"encryption"`
	// SignOnly allows a "preferred" class to go out signed but not encrypted to a recipient
	// without a key. It cannot be set with "required".
	SignOnly bool `json:"sign_only"`
	// HeaderProtection applies RFC 9788 (for OTPs: the code never appears in the outer Subject).
	HeaderProtection bool `json:"header_protection"`
	// Lifetime is how long the queue tries before bouncing. An OTP is worthless after minutes.
	Lifetime Duration `json:"lifetime"`
}

// Rule classifies by envelope sender: an exact address ("otp@bank.example") or a domain
// ("@bank.example"). The first matching rule wins.
type Rule struct {
	Sender string `json:"sender"`
	Class  string `json:"class"`
}

// Config is the gateway's part of the configuration.
type Config struct {
	// Rules classify messages by envelope sender. With no rule matching, a message gets
	// DefaultClass.
	Rules []Rule `json:"rules"`
	// DefaultClass is the class of messages no rule matches. Default "statement": encryption
	// required, the strictest.
	DefaultClass string `json:"default_class"`
	// Policies per class; missing classes get DefaultPolicies' entry.
	Policies map[string]Policy `json:"policies"`
	// Prefer is the method for customers with both an S/MIME certificate and an OpenPGP key:
	// "smime" (default) or "pgp".
	Prefer string `json:"prefer"`
}

// DefaultPolicies are the policies of the three classes when the configuration names none.
func DefaultPolicies() map[string]Policy {
	return map[string]Policy{
		ClassStatement: {Encryption: "required", Lifetime: Duration(5 * 24 * time.Hour)},
		ClassOTP:       {Encryption: "required", HeaderProtection: true, Lifetime: Duration(10 * time.Minute)},
		ClassSupport:   {Encryption: "preferred", SignOnly: true, Lifetime: Duration(5 * 24 * time.Hour)},
	}
}

// Validate fills defaults and checks the configuration; its errors say what to fix.
func (c *Config) Validate() error {
	if c.DefaultClass == "" {
		c.DefaultClass = ClassStatement
	}
	if c.Prefer == "" {
		c.Prefer = "smime"
	}
	if _, err := keys.ParseMethod(c.Prefer); err != nil {
		return fmt.Errorf("gateway.prefer: %v", err)
	}
	defaults := DefaultPolicies()
	if c.Policies == nil {
		c.Policies = map[string]Policy{}
	}
	for name, p := range defaults {
		if _, ok := c.Policies[name]; !ok {
			c.Policies[name] = p
		}
	}
	var errs []error
	for name, p := range c.Policies {
		if _, known := defaults[name]; !known {
			errs = append(errs, fmt.Errorf("gateway.policies: unknown class %q (statement, otp, support)", name))
			continue
		}
		switch p.Encryption {
		case "required":
			if p.SignOnly {
				errs = append(errs, fmt.Errorf("gateway.policies.%s: sign_only cannot be set when encryption is required", name))
			}
		case "preferred":
		default:
			errs = append(errs, fmt.Errorf("gateway.policies.%s.encryption: %q is not \"required\" or \"preferred\"", name, p.Encryption))
		}
		if p.Lifetime <= 0 {
			errs = append(errs, fmt.Errorf("gateway.policies.%s.lifetime: must be positive (e.g. \"10m\")", name))
		}
	}
	if _, ok := defaults[c.DefaultClass]; !ok {
		errs = append(errs, fmt.Errorf("gateway.default_class: unknown class %q", c.DefaultClass))
	}
	for i, r := range c.Rules {
		if _, ok := defaults[r.Class]; !ok {
			errs = append(errs, fmt.Errorf("gateway.rules[%d].class: unknown class %q", i, r.Class))
		}
		if !strings.Contains(r.Sender, "@") {
			errs = append(errs, fmt.Errorf("gateway.rules[%d].sender: %q is neither an address nor \"@domain\"", i, r.Sender))
		}
	}
	return errors.Join(errs...)
}

// classify returns the class for an envelope sender. Addresses match as keys.SameAddress says
// (OTP@Bank.example is otp@bank.example), domains without case.
func (c *Config) classify(sender string) string {
	n, err := keys.NormalizeAddress(sender)
	if err != nil {
		return c.DefaultClass
	}
	domain := n[strings.LastIndexByte(n, '@'):]
	for _, r := range c.Rules {
		if strings.HasPrefix(r.Sender, "@") {
			if strings.EqualFold(r.Sender, domain) {
				return r.Class
			}
			continue
		}
		if keys.SameAddress(r.Sender, n) {
			return r.Class
		}
	}
	return c.DefaultClass
}
