package tsa

import (
	"errors"
	"strings"
	"time"

	"github.com/sealpost/sealpost/config"
)

// Config chooses the timestamp authority, with the keys of the configuration file's tsa section:
// the embedded Authority, or external ones (Client) in order. Start from DefaultConfig.
type Config struct {
	// URLs are external TSAs, tried in order; none means the embedded Authority.
	URLs []string `json:"urls"`
	// Roots is a PEM file of the roots the external TSAs' certificates chain to; "" means the
	// caller's own roots (sealpost's data directory).
	Roots string `json:"roots"`
	// Timeout bounds each request to an external TSA.
	Timeout config.Duration `json:"timeout"`
	// Policy is the TSA policy OID the embedded Authority puts in its tokens (unused with URLs).
	// DefaultPolicy is under IANA's documentation enterprise number: the embedded TSA is for
	// development, and a bank that runs it sets its own policy's OID.
	Policy string `json:"policy"`
}

// DefaultTimeout is DefaultConfig's bound on a request to an external TSA.
const DefaultTimeout = 10 * time.Second

// DefaultConfig is the embedded Authority under DefaultPolicy, and DefaultTimeout for external TSAs.
func DefaultConfig() Config {
	return Config{Timeout: config.Duration(DefaultTimeout), Policy: DefaultPolicy}
}

// Validate checks the timeout and the policy OID and changes nothing. Its problems are
// *config.FieldError named by their key (timeout, policy).
func (c Config) Validate() error {
	var errs []error
	if c.Timeout <= 0 {
		errs = append(errs, &config.FieldError{Path: "timeout", Problem: "must be positive (e.g. \"10s\")"})
	}
	if _, err := ParsePolicy(c.Policy); err != nil {
		errs = append(errs, &config.FieldError{Path: "policy", Problem: strings.TrimPrefix(err.Error(), ErrConfig.Error()+": "), Err: err})
	}
	return errors.Join(errs...)
}
