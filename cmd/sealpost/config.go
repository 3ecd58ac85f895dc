package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sealpost/sealpost/discovery"
	"github.com/sealpost/sealpost/evidence"

	"github.com/sealpost/sealpost/api"
	"github.com/sealpost/sealpost/ca"
	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/console"
	"github.com/sealpost/sealpost/dkim"
	"github.com/sealpost/sealpost/inbound"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/ops"
	"github.com/sealpost/sealpost/otp"
	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/smtpd"
	"github.com/sealpost/sealpost/store"
	"github.com/sealpost/sealpost/tsa"
)

// Config is sealpost's configuration file (JSON, decoded strictly: an unknown key is an error).
// Every field is optional; what is left out takes the default shown in exampleConfig.
type Config struct {
	// Data is the data directory (keys, spool, outbox), relative to the working directory.
	Data string `json:"data"`
	// Identities says where the bank's identities come from: "development" (sealpost creates its
	// own CA, signer, support, TSA and OpenPGP key in the data directory on first start: for trying
	// sealpost out, never for customers) or "bank" (the bank's own, imported with sealpost keys
	// import-identity; serve refuses to start without them, or with development ones). Default
	// "development" when serve runs without a configuration file, "bank" with one.
	Identities string `json:"identities"`
	// Senders are the addresses the development signing identities name, used when `serve`
	// creates them on first start.
	Senders  []string        `json:"senders"`
	Log      LogConfig       `json:"log"`
	SMTP     smtpd.Config    `json:"smtp"`
	Queue    queue.Config    `json:"queue"`
	Delivery DeliveryConfig  `json:"delivery"`
	TSA      tsa.Config      `json:"tsa"`
	Gateway  outbound.Config `json:"gateway"`
	Inbound  InboundConfig   `json:"inbound"`
	HSM      HSMConfig       `json:"hsm"`
	DKIM     DKIMConfig      `json:"dkim"`
	Ops      ops.Config      `json:"ops"`
	// API is the bank's HTTPS JSON API (online banking's key registration): on loopback by default.
	API api.Config `json:"api"`
	// CA is the bank's customer CA (sealpost ca issue, the API's certificates).
	CA ca.Config `json:"ca"`
	// OTP is the one-time passcode and call verification service of the API.
	OTP otp.Config `json:"otp"`
	// Discovery finds customers' keys where they already are (WKD).
	Discovery DiscoveryConfig `json:"discovery"`
	// Evidence is the tamper-evident log of what was sent, to whom and when.
	Evidence evidence.Config `json:"evidence"`
	// Console is the web console for the support desk and the operators (off by default).
	Console console.Config `json:"console"`
	// Store is where the shared state lives; left out (the default), the embedded SQLite in the
	// data directory, so the default configuration prints without it.
	Store StoreConfig `json:"store,omitzero"`

	// wrapStore, when set, wraps the store the instance opens (sealpost bench counts its calls).
	wrapStore func(backend) backend
	// wkdOptions, when set, are given to the WKD client (tests reach a loopback server by them).
	wkdOptions []discovery.WKDOption
}

// DiscoveryConfig is the discovery section.
type DiscoveryConfig struct {
	// WKD looks up, for customers with no usable registered or learned key, the OpenPGP key their
	// provider publishes (off by default: the bank opens outbound HTTPS for it first).
	WKD discovery.CacheConfig `json:"wkd"`
	// Revocation checks customers' certificates against their CA's CRL and OCSP responder.
	Revocation discovery.RevocationConfig `json:"revocation"`
	// Publish serves the bank's own OpenPGP key by WKD on this loopback address (host:port; ""
	// is off), behind the bank's HTTPS web server for openpgpkey.DOMAIN and DOMAIN, so that
	// customers' clients find the key to encrypt replies to.
	Publish string `json:"publish_addr"`
}

// StoreConfig chooses the shared store: PostgreSQL when Postgres is set, for several nodes of one
// bank; otherwise the embedded SQLite (DATA/sealpost.db), which needs nothing.
type StoreConfig struct {
	Postgres *PostgresConfig `json:"postgres"`
}

// PostgresConfig is the shared store on PostgreSQL: the store's settings (max_conns,
// statement_timeout) and the file its connection string is read from. A postgres section of the
// file starts from defaultPostgres.
type PostgresConfig struct {
	// DSNFile is a file holding the connection string (a postgres:// URL or key=value pairs),
	// password included, so that the password is not in the configuration: only the service user
	// may read it (mode 0600 or stricter), as the ops token.
	DSNFile string `json:"dsn_file"`
	store.PostgresConfig
}

// Where the bank's identities come from (Config.Identities).
const (
	identitiesDevelopment = "development"
	identitiesBank        = "bank"
)

// LogConfig is the log's format: "text" (key=value, for people) or "json" (one object per line, for
// the bank's log pipeline). Logs carry queue IDs and recipients' domains, never bodies or codes.
type LogConfig struct {
	Format string `json:"format"`
}

// handler returns the slog handler for the format (validated).
func (l LogConfig) handler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	if l.Format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// DKIMConfig signs what leaves sealpost with DKIM, after protection (which changes the body, so a
// signature the bank's MTA added before sealpost would break): one key per From domain. Mail from a
// domain without a key leaves unsigned.
type DKIMConfig struct {
	Keys []dkim.KeyConfig `json:"keys"`
}

// HSMConfig puts the bank's keys in an HSM over PKCS#11. A null entry keeps that key in the data
// directory (signer.pem/signer.key, support.pem/support.key, tsa.pem/tsa.key), the embedded default.
type HSMConfig struct {
	// Signer signs outbound mail (S/MIME); it also decrypts replies that customers encrypted to it.
	Signer *keys.PKCS11Config `json:"signer"`
	// Support decrypts customers' S/MIME replies: its certificate (keyEncipherment) is the one
	// customers encrypt to.
	Support *keys.PKCS11Config `json:"support"`
	// TSA signs the embedded timestamp authority's tokens (unused with tsa.urls).
	TSA *keys.PKCS11Config `json:"tsa"`
	// CustomerCA signs the certificates and CRLs of the bank's customer CA (see "ca").
	CustomerCA *keys.PKCS11Config `json:"customer_ca"`
}

// InboundConfig is the inbound side: customers' replies to the support desk arrive on their own
// listener (the bank's MX relays them there), are decrypted and verified, and go to the desk's
// next hop with their verdict, or into the quarantine.
type InboundConfig struct {
	// Enabled starts the inbound listener with serve.
	Enabled bool `json:"enabled"`
	// Listener is the inbound SMTP listener (Public). It accepts any client (allowed_networks and
	// users only matter for AUTH) and only the support addresses as recipients.
	Listener smtpd.Config `json:"listener"`
	inbound.Config
	// Delivery is the desk's next hop; default a Maildir DATA/desk.
	Delivery DeliveryConfig `json:"delivery"`
}

// DeliveryConfig is the next hop: a Maildir (the embedded default) or a smarthost. Neither is the
// Maildir in the data directory (resolvePaths).
type DeliveryConfig struct {
	Maildir   string           `json:"maildir"` // default DATA/outbox
	Smarthost *SmarthostConfig `json:"smarthost"`
}

// SmarthostConfig is an SMTP next hop; a smarthost section of the file starts from
// defaultSmarthost.
type SmarthostConfig struct {
	Addr         string          `json:"addr"`
	TLS          string          `json:"tls"` // required | opportunistic | none
	Username     string          `json:"username"`
	PasswordFile string          `json:"password_file"`
	PasswordEnv  string          `json:"password_env"`
	Timeout      config.Duration `json:"timeout"`
}

// defaultSmarthost is what a smarthost section leaves out: queue's defaults (verified STARTTLS,
// DefaultSmarthostTimeout).
func defaultSmarthost() SmarthostConfig {
	d := queue.DefaultSmarthostConfig()
	return SmarthostConfig{TLS: d.TLS, Timeout: config.Duration(d.Timeout)}
}

// defaultPostgres is what a postgres section leaves out: the store's defaults.
func defaultPostgres() PostgresConfig {
	return PostgresConfig{PostgresConfig: store.DefaultPostgresConfig()}
}

// defaultConfig is the embedded default: everything on loopback, a data directory under the
// working directory, a Maildir outbox, the embedded TSA, every message of the strictest class.
func defaultConfig() Config {
	return Config{
		Data:       "sealpost-data",
		Identities: identitiesDevelopment,
		Senders:    []string{"statements@bank.example", "otp@bank.example", "support@bank.example"},
		Log:        LogConfig{Format: "text"},
		SMTP:       smtpd.DefaultConfig(),
		Queue:      queue.DefaultConfig(),
		TSA:        tsa.DefaultConfig(),
		Inbound:    InboundConfig{Enabled: true, Listener: smtpd.DefaultPublicConfig(), Config: defaultInbound()},
		Ops:        ops.DefaultConfig(),
		API:        api.DefaultConfig(),
		Gateway:    outbound.DefaultConfig(),
		CA:         ca.DefaultConfig(),
		OTP:        otp.DefaultConfig(),
		Discovery:  DiscoveryConfig{WKD: discovery.DefaultCacheConfig(), Revocation: discovery.DefaultRevocationConfig()},
		Evidence:   evidence.DefaultConfig(),
		Console:    console.DefaultConfig(),
	}
}

// defaultInbound is the inbound pipeline's defaults with the example bank's desk.
func defaultInbound() inbound.Config {
	c := inbound.DefaultConfig()
	c.SupportAddresses, c.AuthServID = []string{"support@bank.example"}, "sealpost.bank.example"
	return c
}

// loadConfig reads file over the defaults (no file: the defaults) and validates the result. A file
// that is not JSON gives one *config.SyntaxError, "FILE:LINE:COL: problem". Otherwise every problem
// is reported, joined: those of decoding and those of validation, each a *config.FieldError.
func loadConfig(file, dataOverride string) (Config, error) {
	cfg := defaultConfig()
	var decodeErr error
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return cfg, err
		}
		// A configuration file means a real deployment: development identities only when it says so.
		cfg.Identities = ""
		var se *config.SyntaxError
		if decodeErr = decode(b, &cfg); errors.As(decodeErr, &se) {
			se.File = file
			return cfg, se
		}
		if cfg.Identities == "" {
			cfg.Identities = identitiesBank
		}
	}
	if dataOverride != "" {
		cfg.Data = dataOverride
	}
	cfg.resolvePaths()
	validateErr := cfg.Validate()
	refused := config.FieldErrors(decodeErr)
	if len(refused) == 0 {
		return cfg, errors.Join(decodeErr, validateErr)
	}
	// A value that Decode refused kept its default: what validation says of it is beside the point.
	errs := []error{decodeErr}
	for _, fe := range config.FieldErrors(validateErr) {
		if !slices.ContainsFunc(refused, func(r *config.FieldError) bool {
			return r.Path == "" || fe.Path == r.Path || strings.HasPrefix(fe.Path, r.Path) && strings.ContainsRune(".[", rune(fe.Path[len(r.Path)]))
		}) {
			errs = append(errs, fe)
		}
	}
	return cfg, errors.Join(errs...)
}

// decode decodes a configuration file over cfg. A smarthost or postgres section that the file
// sets starts from defaultSmarthost or defaultPostgres, so that what it leaves out keeps its
// default: encoding/json decodes into a pointer that is already set, so the file is decoded once
// to learn which sections it sets, and again over those sections seeded.
func decode(b []byte, cfg *Config) error {
	base := *cfg
	err := config.Decode(b, cfg)
	if cfg.Delivery.Smarthost == nil && cfg.Inbound.Delivery.Smarthost == nil && cfg.Store.Postgres == nil {
		return err
	}
	seeded := base
	if cfg.Store.Postgres != nil {
		p := defaultPostgres()
		seeded.Store.Postgres = &p
	}
	for _, d := range []struct{ from, to *DeliveryConfig }{{&cfg.Delivery, &seeded.Delivery}, {&cfg.Inbound.Delivery, &seeded.Inbound.Delivery}} {
		if d.from.Smarthost != nil {
			h := defaultSmarthost()
			d.to.Smarthost = &h
		}
	}
	err = config.Decode(b, &seeded)
	*cfg = seeded
	return err
}

// resolvePaths sets what depends on the data directory, once it is known: a next hop that names
// neither a Maildir nor a smarthost is the Maildir DATA/outbox (DATA/desk for the desk).
func (c *Config) resolvePaths() {
	for _, d := range []struct {
		hop *DeliveryConfig
		dir string
	}{{&c.Delivery, "outbox"}, {&c.Inbound.Delivery, "desk"}} {
		if d.hop.Maildir == "" && d.hop.Smarthost == nil {
			d.hop.Maildir = filepath.Join(c.Data, d.dir)
		}
	}
}

// Validate checks the whole configuration, the listeners, queue and DKIM keys included, so that
// every problem is reported before anything starts; it changes nothing. Every problem is a
// *config.FieldError named by its path in the file.
func (c Config) Validate() error {
	var errs []error
	add := func(prefix string, err error) { errs = append(errs, config.Prefix(prefix, err)) }
	if c.Data == "" {
		errs = append(errs, &config.FieldError{Path: "data", Problem: "required: the data directory"})
	}
	if c.Identities != identitiesDevelopment && c.Identities != identitiesBank {
		errs = append(errs, &config.FieldError{Path: "identities", Problem: fmt.Sprintf("%q is not \"bank\" (the bank's own, imported) or \"development\" (sealpost's own CA, for trying it out)", c.Identities)})
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, &config.FieldError{Path: "log.format", Problem: fmt.Sprintf("%q is not text or json", c.Log.Format)})
	}
	add("smtp", c.SMTP.Validate())
	add("queue", c.spoolConfig("spool").Validate())
	errs = append(errs, validateDelivery("delivery", c.Delivery))
	add("tsa", c.TSA.Validate())
	add("gateway", c.Gateway.Validate())
	if c.Inbound.Enabled {
		add("inbound.listener", c.Inbound.Listener.Validate())
	}
	add("inbound", c.Inbound.Config.Validate())
	errs = append(errs, validateDelivery("inbound.delivery", c.Inbound.Delivery))
	if c.HSM.Signer != nil {
		add("hsm.signer", c.HSM.Signer.Validate())
	}
	if c.HSM.Support != nil {
		add("hsm.support", c.HSM.Support.Validate())
	}
	if c.HSM.TSA != nil {
		add("hsm.tsa", c.HSM.TSA.Validate())
	}
	if c.HSM.CustomerCA != nil {
		add("hsm.customer_ca", c.HSM.CustomerCA.Validate())
	}
	add("dkim", dkim.ValidateKeys(c.DKIM.Keys))
	if c.Ops.Enabled {
		add("ops", c.Ops.Validate())
	}
	if c.API.Enabled {
		add("api", c.API.Validate())
	}
	if c.Console.Enabled {
		add("console", c.Console.Validate())
	}
	if c.Store.Postgres != nil {
		add("store.postgres", c.Store.Postgres.Validate())
	}
	add("ca", c.CA.Validate())
	add("otp", c.OTP.Validate())
	if err := c.Discovery.WKD.Validate("discovery.wkd."); err != nil {
		errs = append(errs, err)
	}
	if err := c.Discovery.Revocation.Validate("discovery.revocation."); err != nil {
		errs = append(errs, err)
	}
	if err := c.Evidence.Validate("evidence."); err != nil {
		errs = append(errs, err)
	}
	if p := c.Discovery.Publish; p != "" {
		if _, _, err := net.SplitHostPort(p); err != nil {
			errs = append(errs, &config.FieldError{Path: "discovery.publish_addr", Problem: fmt.Sprintf("%q is not host:port on loopback (e.g. \"127.0.0.1:9927\")", p)})
		}
	}
	return errors.Join(errs...)
}

// marshal serialises a loaded configuration: what -print-config prints is what runs.
func (c Config) marshal() []byte {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		panic(err) // every field of Config marshals
	}
	return append(b, '\n')
}

// exampleConfig is the embedded defaults serialised: what plain `sealpost serve` runs.
func exampleConfig() []byte {
	c, err := loadConfig("", "")
	if err != nil {
		panic(fmt.Sprintf("the embedded defaults do not validate: %v", err))
	}
	return c.marshal()
}

// spoolConfig is the queue section for the spool in the data directory's subdirectory dir.
func (c Config) spoolConfig(dir string) queue.Config {
	q := c.Queue
	q.Dir = filepath.Join(c.Data, dir)
	return q
}

// Validate checks the postgres section's values; it changes nothing and reads no file (the
// connection string is read when the store opens, and by serve -check). Every problem is a
// *config.FieldError at its key.
func (p PostgresConfig) Validate() error {
	var errs []error
	if p.DSNFile == "" {
		errs = append(errs, &config.FieldError{Path: "dsn_file", Problem: "required: a file (mode 0600) holding the connection string, e.g. postgres://sealpost:PASSWORD@db.bank.internal/sealpost"})
	}
	// The store's own rules for the rest; its DSN is not known yet, so a stand-in keeps its
	// problem (there is no dsn key in the file) out of the answer.
	sc := p.PostgresConfig
	sc.DSN = "host=localhost"
	return errors.Join(append(errs, sc.Validate())...)
}

// validateDelivery checks one next hop (name is its place in the file for errors).
func validateDelivery(name string, d DeliveryConfig) error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	if d.Maildir != "" && d.Smarthost != nil {
		bad(name, "set either maildir or smarthost, not both")
	}
	if h := d.Smarthost; h != nil {
		if h.Addr == "" {
			bad(name+".smarthost.addr", "required (host:port)")
		} else if _, _, err := net.SplitHostPort(h.Addr); err != nil {
			bad(name+".smarthost.addr", "%q is not host:port (e.g. \"relay.bank.internal:587\")", h.Addr)
		}
		switch h.TLS {
		case "required", "opportunistic", "none":
		default:
			bad(name+".smarthost.tls", "%q is not required, opportunistic or none", h.TLS)
		}
		if h.Timeout <= 0 {
			bad(name+".smarthost.timeout", "must be positive (e.g. \"1m\")")
		}
	}
	return errors.Join(errs...)
}
