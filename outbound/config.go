package outbound

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/templates"
)

// Class names. Every message belongs to exactly one.
const (
	ClassStatement = "statement"
	ClassOTP       = "otp"
	ClassSupport   = "support"
	// ClassUnclassified is mail that no rule classifies. Its policy is the strictest in every
	// dimension that cannot harm delivery: encryption required and header protection on; its
	// lifetime is a statement's, since a short one would bounce mail that is merely unexpected.
	ClassUnclassified = "unclassified"
)

// Classes lists every class, in the order errors name them.
func Classes() []string { return []string{ClassStatement, ClassOTP, ClassSupport, ClassUnclassified} }

// classList is the list of classes for error messages.
func classList() string { return strings.Join(Classes(), ", ") }

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
	Lifetime config.Duration `json:"lifetime"`
	// Keyless is what a recipient without a usable key gets when encryption is required:
	// "refuse" (550 5.7.1 at RCPT; the default, also when absent) or "notify" (250: the signed
	// message waits in the customer's secure mailbox, sealed, for online banking to show it, and
	// the customer gets a signed notice without a word of it). OTPs are always refused: a code
	// behind a login is no code.
	Keyless string `json:"keyless,omitempty"`
	// MailboxExpiry is how long a message waits in the secure mailbox (notify); absent: 90 days.
	MailboxExpiry config.Duration `json:"mailbox_expiry,omitempty"`
	// Keys are the key sources the class may encrypt to besides "registered", which every class
	// uses and which always wins: "learned" (a certificate from the customer's verified signed
	// reply, chaining to a root trusted for learning) and "discovered" (the OpenPGP key the
	// customer's provider publishes by WKD). Absent: registered keys only.
	Keys []keys.Source `json:"keys,omitempty"`
	// Revocation is what a recipient certificate whose revocation status cannot be checked (CRL
	// and OCSP unreachable or unusable) means: "soft-fail" (the default, also when absent: use it
	// and count it) or "hard-fail" (451 4.7.5, the bank's MTA tries later).
	Revocation string `json:"revocation,omitempty"`
}

// Keyless handling of a class.
const (
	KeylessRefuse = "refuse"
	KeylessNotify = "notify"
)

// DefaultMailboxExpiry is how long a message waits in the secure mailbox unless its class says.
const DefaultMailboxExpiry = 90 * 24 * time.Hour

// notifies reports whether the class sends keyless recipients a notice.
func (p Policy) notifies() bool { return p.Keyless == KeylessNotify }

// mailboxExpiry is how long the class's messages wait in the secure mailbox.
func (p Policy) mailboxExpiry() time.Duration {
	if p.MailboxExpiry > 0 {
		return time.Duration(p.MailboxExpiry)
	}
	return DefaultMailboxExpiry
}

// Notice is what the notice a keyless customer gets names: the bank and where its online banking
// is (https, shown for the customer to type, never as a link), in which language.
type Notice struct {
	Bank   string `json:"bank"`
	URL    string `json:"url"`
	Locale string `json:"locale"`
}

// Rule classifies by envelope sender: an exact address ("otp@bank.example") or a domain
// ("@bank.example"). The first matching rule wins. The same rules classify the message's header
// From, which must then be of the envelope sender's class (see session.checkFromClass).
type Rule struct {
	Sender string `json:"sender"`
	Class  string `json:"class"`
}

// Config is the gateway's part of the configuration.
type Config struct {
	// Rules classify messages by envelope sender. With no rule matching, a message gets
	// DefaultClass.
	Rules []Rule `json:"rules"`
	// DefaultClass is the class of messages no rule matches. Default "unclassified", whose policy
	// is the strictest.
	DefaultClass string `json:"default_class"`
	// Policies per class, one for each; DefaultConfig holds DefaultPolicies, and a file's
	// entries replace those of their classes.
	Policies map[string]Policy `json:"policies"`
	// Prefer is the method for customers with both an S/MIME certificate and an OpenPGP key:
	// "smime" (default) or "pgp".
	Prefer string `json:"prefer"`
	// Notice is the notice keyless customers of a "notify" class get.
	Notice Notice `json:"notice"`
}

// DefaultPolicies are the policies of the classes when the configuration names none.
func DefaultPolicies() map[string]Policy {
	return map[string]Policy{
		ClassStatement: {Encryption: "required", Lifetime: config.Duration(5 * 24 * time.Hour), Keys: allSources()},
		// An OTP goes only to keys tied to the customer by more than their provider's web
		// server: whoever controls the domain's WKD could otherwise read a login code.
		ClassOTP:          {Encryption: "required", HeaderProtection: true, Lifetime: config.Duration(10 * time.Minute), Keys: []keys.Source{keys.SourceLearned}},
		ClassSupport:      {Encryption: "preferred", SignOnly: true, Lifetime: config.Duration(5 * 24 * time.Hour), Keys: allSources()},
		ClassUnclassified: {Encryption: "required", HeaderProtection: true, Lifetime: config.Duration(5 * 24 * time.Hour), Keys: []keys.Source{keys.SourceLearned}},
	}
}

// allSources are the key sources besides registered.
func allSources() []keys.Source { return []keys.Source{keys.SourceLearned, keys.SourceDiscovered} }

// DefaultConfig is the gateway's embedded default: the bank's three senders with their classes,
// everything else unclassified (the strictest policy), S/MIME for customers with both kinds of key.
func DefaultConfig() Config {
	return Config{
		Rules: []Rule{
			{Sender: "statements@bank.example", Class: ClassStatement},
			{Sender: "otp@bank.example", Class: ClassOTP},
			{Sender: "support@bank.example", Class: ClassSupport},
		},
		DefaultClass: ClassUnclassified,
		Policies:     DefaultPolicies(),
		Prefer:       "smime",
		Notice:       Notice{Bank: "Example Bank", URL: "https://online.bank.example/", Locale: "en"},
	}
}

// Validate checks the configuration and changes nothing (the defaults are DefaultConfig's): every
// class has a policy, and an empty default_class or prefer is refused. It reports every problem,
// each a *config.FieldError named by its key in the gateway section (prefer, default_class,
// policies.otp.lifetime, rules[0].class, …).
func (c Config) Validate() error {
	defaults := DefaultPolicies()
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	for i, r := range c.Rules {
		if _, ok := defaults[r.Class]; !ok {
			bad(fmt.Sprintf("rules[%d].class", i), "unknown class %q (%s)", r.Class, classList())
		}
		if !strings.Contains(r.Sender, "@") {
			bad(fmt.Sprintf("rules[%d].sender", i), "%q is neither an address nor \"@domain\"", r.Sender)
		}
	}
	if _, ok := defaults[c.DefaultClass]; !ok {
		bad("default_class", "unknown class %q (%s)", c.DefaultClass, classList())
	}
	for _, name := range slices.Sorted(maps.Keys(defaults)) {
		if _, ok := c.Policies[name]; !ok {
			bad(config.MapKey("policies", name), "missing: every class needs a policy (%s)", classList())
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Policies)) {
		p, path := c.Policies[name], config.MapKey("policies", name)
		if _, known := defaults[name]; !known {
			bad(path, "unknown class (%s)", classList())
			continue
		}
		switch p.Encryption {
		case "required":
			if p.SignOnly {
				bad(path+".sign_only", "cannot be set when encryption is required")
			}
		case "preferred":
		default:
			bad(path+".encryption", "%q is not \"required\" or \"preferred\"", p.Encryption)
		}
		if p.Lifetime <= 0 {
			bad(path+".lifetime", "must be positive (e.g. \"10m\")")
		}
		switch p.Keyless {
		case "", KeylessRefuse:
		case KeylessNotify:
			if name == ClassOTP {
				bad(path+".keyless", "an OTP is always refused to a customer without a key: a code behind a login is no code")
			}
			if p.SignOnly {
				bad(path+".keyless", "notify keeps the message in the secure mailbox, sign_only sends it signed in clear: choose one")
			}
		default:
			bad(path+".keyless", "%q is not \"refuse\" or \"notify\"", p.Keyless)
		}
		if p.MailboxExpiry < 0 {
			bad(path+".mailbox_expiry", "must be positive (e.g. \"2160h\")")
		}
		for i, k := range p.Keys {
			if k == keys.SourceRegistered || slices.Contains(p.Keys[:i], k) {
				bad(fmt.Sprintf("%s.keys[%d]", path, i), "%q is always used or already listed: list learned and discovered at most once each", k)
			}
		}
		switch p.Revocation {
		case "", RevocationSoftFail, RevocationHardFail:
		default:
			bad(path+".revocation", "%q is not \"soft-fail\" or \"hard-fail\"", p.Revocation)
		}
	}
	errs = append(errs, c.Notice.validate()...)
	if _, err := keys.ParseMethod(c.Prefer); err != nil {
		bad("prefer", "%q is not smime or pgp", c.Prefer)
	}
	return errors.Join(errs...)
}

// validate checks the notice's bank, address and locale.
func (n Notice) validate() []error {
	var errs []error
	bad := func(path, problem string) {
		errs = append(errs, &config.FieldError{Path: "notice." + path, Problem: problem})
	}
	if n.Bank == "" || strings.ContainsAny(n.Bank, "\r\n") || len(n.Bank) > 100 {
		bad("bank", "the bank's name, one line of at most 100 characters")
	}
	if u, err := url.Parse(n.URL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || strings.ContainsAny(n.URL, " \r\n") {
		bad("url", "online banking's https address (e.g. \"https://online.bank.example/\")")
	}
	if !slices.Contains(templates.Locales(), n.Locale) {
		bad("locale", fmt.Sprintf("%q: notices are written in %s", n.Locale, strings.Join(templates.Locales(), ", ")))
	}
	return errs
}

// classify returns the class for an envelope sender: its rule's, or DefaultClass.
func (c *Config) classify(sender string) string {
	if class, ok := c.rule(sender); ok {
		return class
	}
	return c.DefaultClass
}

// rule returns the class of the first rule that names addr, and whether one does. Addresses match
// as address.Same says (OTP@Bank.example is otp@bank.example), domains without case. It
// classifies envelope senders and header From addresses alike.
func (c *Config) rule(addr string) (string, bool) {
	n, err := address.Normalize(addr)
	if err != nil {
		return "", false
	}
	domain := "@" + address.Domain(n)
	for _, r := range c.Rules {
		if strings.HasPrefix(r.Sender, "@") {
			if strings.EqualFold(r.Sender, domain) {
				return r.Class, true
			}
			continue
		}
		if address.Same(r.Sender, n) {
			return r.Class, true
		}
	}
	return "", false
}

// atLeastAsStrict reports whether policy p protects a message at least as much as q in every
// dimension that protects: p encrypts for every recipient q would encrypt for (it is sign-only
// only where q is), and protects the header wherever q does. Lifetime is left out: it decides
// when undeliverable mail bounces, not what a reader or the network can see.
func atLeastAsStrict(p, q Policy) bool {
	return (!p.signOnly() || q.signOnly()) && (!q.HeaderProtection || p.HeaderProtection)
}

// signOnly reports whether the policy lets a recipient without a key get the message signed only.
func (p Policy) signOnly() bool { return p.Encryption == "preferred" && p.SignOnly }
