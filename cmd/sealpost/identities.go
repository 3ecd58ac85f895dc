package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/dkim"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/ops"
)

// hsmFor returns the HSM configuration of one of the bank's roles, nil when its key is in the data
// directory.
func (c HSMConfig) hsmFor(role keys.Role) *keys.PKCS11Config {
	switch role {
	case keys.RoleSigner:
		return c.Signer
	case keys.RoleSupport:
		return c.Support
	case keys.RoleTSA:
		return c.TSA
	case keys.RoleCustomerCA:
		return c.CustomerCA
	}
	return nil
}

// roles returns the bank's identities the configuration runs on: the signer, the support identity
// customers encrypt their replies to (with the inbound side), and the embedded TSA unless external
// TSAs are configured.
func (c Config) roles() []keys.Role {
	roles := []keys.Role{keys.RoleSigner}
	if c.Inbound.Enabled {
		roles = append(roles, keys.RoleSupport)
	}
	if len(c.TSA.URLs) == 0 {
		roles = append(roles, keys.RoleTSA)
	}
	return roles
}

// loadRole loads one of the bank's identities: from the HSM when the configuration puts it there (the
// Closer ends the PKCS#11 session), else from the data directory's files (the Closer is nil).
func loadRole(dir keys.DataDir, hsm HSMConfig, role keys.Role) (*keys.Identity, io.Closer, error) {
	if h := hsm.hsmFor(role); h != nil {
		id, c, err := keys.LoadPKCS11(*h)
		if err != nil {
			return nil, nil, fmt.Errorf("hsm.%s: %w", role, err)
		}
		// preflight could only read the certificate; with the token's key the identity is checked whole.
		if err := keys.CheckIdentity(role, id, time.Now()); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("hsm.%s: %w", role, err)
		}
		return id, c, nil
	}
	id, err := dir.Identity(string(role))
	if err != nil {
		return nil, nil, fmt.Errorf("%s identity: %w", role, err)
	}
	return id, nil, nil
}

// preflight checks everything serve needs that can be checked without writing anything or logging
// into an HSM: the bank's identities in the data directory (present, loadable, fit for their role,
// and not development ones unless the configuration says "identities": "development"), the recipient
// directory, DKIM keys, the smarthosts' passwords and the external TSAs' roots. It returns every
// problem (serve does not start), every inconsistency (serve starts and warns; -check fails: a rule
// whose mail would be refused, say), and the roles whose identity is missing and would be created as
// development identities at start.
func preflight(cfg Config, now time.Time) (problems, inconsistent []error, create []keys.Role) {
	loaded, problems, create := preflightIdentities(cfg, now)
	inconsistent = ruleProblems(cfg, loaded[keys.RoleSigner], loaded[keys.RoleSupport])
	return append(problems, preflightFiles(cfg)...), inconsistent, create
}

// preflightIdentities loads the certificates of the bank's identities the configuration runs on
// and checks the file ones for their role; it returns them (only file identities have their key),
// every problem, and the roles a development configuration would create.
func preflightIdentities(cfg Config, now time.Time) (loaded map[keys.Role]*keys.Identity, problems []error, create []keys.Role) {
	dir := keys.DataDir(cfg.Data)
	dev := cfg.Identities == identitiesDevelopment
	loaded = map[keys.Role]*keys.Identity{}
	for _, role := range cfg.roles() {
		if h := cfg.HSM.hsmFor(role); h != nil {
			id, err := hsmCertificate(*h)
			if err != nil {
				problems = append(problems, config.Prefix("hsm."+string(role)+".certificate", err))
				continue
			}
			loaded[role] = id
			continue
		}
		file := filepath.Join(cfg.Data, string(role)+".pem")
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			if dev {
				create = append(create, role)
				continue
			}
			problems = append(problems, fmt.Errorf("%s: no %s identity (%s): import the bank's with sealpost keys import-identity %s FILE, "+
				"or make its key and a certificate request with sealpost keys csr %s (\"identities\": \"development\" makes test identities instead)",
				role, role, file, role, role))
			continue
		}
		id, err := dir.Identity(string(role))
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", role, err))
			continue
		}
		if isDev, err := dir.IsDevelopment(role); err == nil && isDev && !dev {
			problems = append(problems, fmt.Errorf("%s: %s is a development identity (sealpost's own CA, not the bank's): "+
				"import the bank's with sealpost keys import-identity %s FILE, or set \"identities\": \"development\" on a test system", role, file, role))
			continue
		}
		loaded[role] = id
	}
	for _, role := range cfg.roles() {
		if id := loaded[role]; id != nil && cfg.HSM.hsmFor(role) == nil {
			if err := keys.CheckIdentity(role, id, now); err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", role, err))
			}
		}
	}
	return loaded, problems, create
}

// preflightFiles checks the other files the configuration names: the recipient directory, the ops
// token, the DKIM keys, the smarthosts' passwords and the external TSAs' roots.
func preflightFiles(cfg Config) []error {
	var problems []error
	if _, err := os.Stat(cfg.Data); err == nil {
		if _, err := keys.DataDir(cfg.Data).Directory(); err != nil {
			problems = append(problems, fmt.Errorf("recipient directory: %w", err))
		}
		if cfg.Ops.Enabled {
			if err := ops.CheckToken(cfg.Data); err != nil {
				problems = append(problems, fmt.Errorf("ops token: %w", err))
			}
		}
	}
	if _, err := loadTemplates(cfg.Data); err != nil {
		problems = append(problems, err)
	}
	if err := cfg.API.CheckFiles(); err != nil {
		problems = append(problems, config.Prefix("api", err))
	}
	if len(cfg.DKIM.Keys) > 0 {
		if _, err := dkim.New(cfg.DKIM.Keys); err != nil {
			problems = append(problems, fmt.Errorf("dkim: %w", err))
		}
	}
	for _, d := range []struct {
		path string
		hop  DeliveryConfig
	}{{"delivery", cfg.Delivery}, {"inbound.delivery", cfg.Inbound.Delivery}} {
		if h := d.hop.Smarthost; h != nil && (h.PasswordFile != "" || h.PasswordEnv != "") {
			if _, err := (keys.Secret{File: h.PasswordFile, Env: h.PasswordEnv}).Read(); err != nil {
				problems = append(problems, fmt.Errorf("%s.smarthost: password: %w", d.path, err))
			}
		}
	}
	if len(cfg.TSA.URLs) > 0 && cfg.TSA.Roots != "" {
		if _, err := keys.ReadCertificatesFile(cfg.TSA.Roots); err != nil {
			problems = append(problems, config.Prefix("tsa.roots", err))
		}
	}
	return problems
}

// hsmCertificate reads the certificate chain an HSM key pair is configured with (no login).
func hsmCertificate(h keys.PKCS11Config) (*keys.Identity, error) {
	chain, err := keys.ReadCertificatesFile(h.Certificate)
	if err != nil {
		return nil, err
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%s holds no certificate", h.Certificate)
	}
	return &keys.Identity{Chain: chain}, nil
}

// ruleProblems checks that the rules and addresses fit the bank's certificates: a rule naming a
// sender the signing certificate does not name would have its mail refused at DATA, a rule after
// one that already matches all its mail never applies, and a support address the support
// certificate does not name is one customers' clients cannot encrypt to.
func ruleProblems(cfg Config, signer, support *keys.Identity) []error {
	var problems []error
	seen := map[string]int{}
	for i, r := range cfg.Gateway.Rules {
		path := fmt.Sprintf("gateway.rules[%d].sender", i)
		key := strings.ToLower(r.Sender)
		if j, ok := seen[key]; ok {
			problems = append(problems, &config.FieldError{Path: path, Problem: fmt.Sprintf("%s is already matched by rules[%d]: this rule never applies", r.Sender, j)})
			continue
		}
		if local, domain, ok := address.Split(key); ok && local != "" {
			if j, ok := seen["@"+domain]; ok {
				problems = append(problems, &config.FieldError{Path: path, Problem: fmt.Sprintf("%s is already matched by rules[%d] (%s): this rule never applies", r.Sender, j, cfg.Gateway.Rules[j].Sender)})
				continue
			}
		}
		seen[key] = i
		if signer != nil && !strings.HasPrefix(r.Sender, "@") && !certNames(signer, r.Sender) {
			problems = append(problems, &config.FieldError{Path: path, Problem: fmt.Sprintf("%s is not named in the signing certificate (%s names %s): its mail would be refused",
				r.Sender, keys.RoleSigner, strings.Join(signer.Certificate().EmailAddresses, ", "))})
		}
	}
	if support != nil {
		for i, a := range cfg.Inbound.SupportAddresses {
			if !certNames(support, a) {
				problems = append(problems, &config.FieldError{Path: fmt.Sprintf("inbound.support_addresses[%d]", i),
					Problem: fmt.Sprintf("%s is not named in the support certificate (it names %s): customers' clients will not encrypt to it for this address",
						a, strings.Join(support.Certificate().EmailAddresses, ", "))})
			}
		}
	}
	return problems
}

// certNames says whether an identity's certificate names addr.
func certNames(id *keys.Identity, addr string) bool {
	return slices.ContainsFunc(id.Certificate().EmailAddresses, func(a string) bool { return address.Same(a, addr) })
}

// developmentIdentities creates the development identities a development configuration lacks
// (create, from preflight: nothing is written for a configuration that does not run) and
// returns the roles that run on development identities, warning about them at every start.
func developmentIdentities(cfg Config, create []keys.Role, log *slog.Logger) ([]keys.Role, error) {
	if cfg.Identities != identitiesDevelopment {
		return nil, nil // preflight refused development identities
	}
	dir := keys.DataDir(cfg.Data)
	if _, err := os.Stat(filepath.Join(cfg.Data, "pgp.key")); errors.Is(err, fs.ErrNotExist) || len(create) > 0 {
		if err := dir.Init(cfg.Senders, keys.WithSupportAddresses(cfg.Inbound.SupportAddresses...)); err != nil {
			return nil, err
		}
		log.Warn("created development identities in the data directory (sealpost's own CA, not the bank's)", "data", cfg.Data)
	}
	roles, err := dir.DevelopmentIdentities()
	if err != nil {
		return nil, err
	}
	roles = slices.DeleteFunc(roles, func(r keys.Role) bool { return !slices.Contains(cfg.roles(), r) || cfg.HSM.hsmFor(r) != nil })
	if len(roles) > 0 {
		log.Warn("running on development identities: customers' clients do not trust them; import the bank's with sealpost keys import-identity",
			"identities", developmentNotice(roles))
	}
	return roles, nil
}

// developmentNotice says which identities are development ones, for /readyz and the log.
func developmentNotice(roles []keys.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return "development: " + strings.Join(names, ", ") + " (sealpost's own CA, not for production)"
}

// loadDecrypters returns the identities that decrypt customers' S/MIME replies: the support
// identity (what customers are told to encrypt to), then the signer (customers' clients also
// encrypt to the certificate of the signed mail they answer). A data directory from before the
// support identity existed decrypts with the signer alone.
func loadDecrypters(dir keys.DataDir, hsm HSMConfig, signer *keys.Identity) ([]*keys.Identity, []io.Closer, error) {
	support, c, err := loadRole(dir, hsm, keys.RoleSupport)
	if errors.Is(err, keys.ErrNotInitialised) {
		return []*keys.Identity{signer}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return []*keys.Identity{support, signer}, []io.Closer{c}, nil
}

// checkConfig is serve -check: preflight, and each HSM identity loaded from its token and checked
// for its role, then closed. It changes nothing on disk. With every check passed it says what would
// run; otherwise it returns every problem.
func checkConfig(cfg Config, file string, stdout io.Writer) error {
	problems, inconsistent, create := preflight(cfg, time.Now())
	problems = append(problems, inconsistent...)
	for _, role := range cfg.roles() {
		if cfg.HSM.hsmFor(role) == nil {
			continue
		}
		if _, c, err := loadRole(keys.DataDir(cfg.Data), cfg.HSM, role); err != nil {
			problems = append(problems, err)
		} else {
			c.Close()
		}
	}
	// Connecting waits for the network: only once everything else is right.
	if err := checkStore(cfg.Store, len(problems) == 0); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	what := "the embedded defaults"
	if file != "" {
		what = file
	}
	fmt.Fprintf(stdout, "%s: OK (data %s, identities %s)\n", what, cfg.Data, cfg.Identities)
	if len(create) > 0 {
		names := make([]string, len(create))
		for i, r := range create {
			names[i] = string(r)
		}
		fmt.Fprintf(stdout, "first start creates development identities in %s: %s\n", cfg.Data, strings.Join(names, ", "))
	}
	if cfg.Identities == identitiesDevelopment {
		if roles, err := keys.DataDir(cfg.Data).DevelopmentIdentities(); err == nil && len(roles) > 0 {
			fmt.Fprintf(stdout, "runs on %s\n", developmentNotice(roles))
		}
	}
	return nil
}
