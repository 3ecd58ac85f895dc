package ca

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/sealpost/sealpost/config"
)

// DefaultCRLURL is the CRL distribution point of the default configuration: the API listener's
// default address, which publishes the CRL.
const DefaultCRLURL = "http://127.0.0.1:9926/v1/crl"

// Limits of Config.Validity: a day at least, and at most the 825 days the CA/Browser Forum once
// allowed, so a lost key does not stay trusted for years.
const (
	MinValidity     = 24 * time.Hour
	MaxValidity     = 825 * 24 * time.Hour
	defaultValidity = 365 * 24 * time.Hour
)

// Config is the customer CA's configuration (cmd embeds it as "ca").
type Config struct {
	// Validity is the lifetime of the certificates it issues (default 365 days; 1 to 825 days).
	Validity config.Duration `json:"validity"`
	// CRLURL is the CRL distribution point written into every certificate: where customers'
	// clients fetch the CRL (default DefaultCRLURL). An http URL, as RFC 5280 expects of CRLs.
	CRLURL string `json:"crl_url"`
}

// DefaultConfig returns the defaults: certificates valid for 365 days, the CRL at DefaultCRLURL.
func DefaultConfig() Config {
	return Config{Validity: config.Duration(defaultValidity), CRLURL: DefaultCRLURL}
}

// Validate checks c and changes nothing. Its problems are *config.FieldError named by their key.
func (c Config) Validate() error {
	var errs []error
	if v := time.Duration(c.Validity); v < MinValidity || v > MaxValidity {
		errs = append(errs, &config.FieldError{Path: "validity", Problem: fmt.Sprintf("%s is out of range (want 24h to %s, 825 days)", v, MaxValidity)})
	}
	u, err := url.Parse(c.CRLURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		errs = append(errs, &config.FieldError{Path: "crl_url", Problem: fmt.Sprintf("%q is not an http URL where clients fetch the CRL (e.g. %q)", c.CRLURL, DefaultCRLURL)})
	}
	return errors.Join(errs...)
}
