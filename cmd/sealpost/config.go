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
	"time"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/dkim"
	"github.com/sealpost/sealpost/inbound"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/ops"
	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/queue"
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
	SMTP     SMTPConfig      `json:"smtp"`
	Queue    QueueConfig     `json:"queue"`
	Delivery DeliveryConfig  `json:"delivery"`
	TSA      TSAConfig       `json:"tsa"`
	Gateway  outbound.Config `json:"gateway"`
	Inbound  InboundConfig   `json:"inbound"`
	HSM      HSMConfig       `json:"hsm"`
	DKIM     DKIMConfig      `json:"dkim"`
	Ops      ops.Config      `json:"ops"`
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
}

// InboundConfig is the inbound side: customers' replies to the support desk arrive on their own
// listener (the bank's MX relays them there), are decrypted and verified, and go to the desk's
// next hop with their verdict, or into the quarantine.
type InboundConfig struct {
	// Enabled starts the inbound listener with serve.
	Enabled bool `json:"enabled"`
	// Listener is the inbound SMTP listener. It accepts any client (allowed_networks and users
	// only matter for AUTH) and only the support addresses as recipients.
	Listener SMTPConfig `json:"listener"`
	inbound.Config
	// Delivery is the desk's next hop; default a Maildir DATA/desk.
	Delivery DeliveryConfig `json:"delivery"`
}

// SMTPConfig is the submission listener: smtpd.Config field by field (see it for each bound). The
// slow-client bounds are command_timeout, min_data_rate (bytes/s) after min_data_rate_grace,
// max_session_duration, and max_connections_per_network (per /24 or /64, outside allowed_networks).
type SMTPConfig struct {
	Addr                     string            `json:"addr"`
	Domain                   string            `json:"domain"`
	AllowedNetworks          []string          `json:"allowed_networks"`
	TLSCert                  string            `json:"tls_cert"`
	TLSKey                   string            `json:"tls_key"`
	Users                    map[string]string `json:"users"` // user -> bcrypt hash
	MaxMessageBytes          int64             `json:"max_message_bytes"`
	MaxRecipients            int               `json:"max_recipients"`
	MaxLineLength            int               `json:"max_line_length"`
	ReadTimeout              config.Duration   `json:"read_timeout"`
	WriteTimeout             config.Duration   `json:"write_timeout"`
	CommandTimeout           config.Duration   `json:"command_timeout"`
	MinDataRate              int               `json:"min_data_rate"`
	MinDataRateGrace         config.Duration   `json:"min_data_rate_grace"`
	MaxSessionDuration       config.Duration   `json:"max_session_duration"`
	MaxConnections           int               `json:"max_connections"`
	MaxConnectionsPerClient  int               `json:"max_connections_per_client"`
	MaxConnectionsPerNetwork int               `json:"max_connections_per_network"`
}

// QueueConfig is the spool and its delivery workers.
type QueueConfig struct {
	Workers    int             `json:"workers"`
	MinBackoff config.Duration `json:"min_backoff"`
	MaxBackoff config.Duration `json:"max_backoff"`
}

// DeliveryConfig is the next hop: a Maildir (the embedded default) or a smarthost.
type DeliveryConfig struct {
	Maildir   string           `json:"maildir"` // default DATA/outbox
	Smarthost *SmarthostConfig `json:"smarthost"`
}

// SmarthostConfig is an SMTP next hop.
type SmarthostConfig struct {
	Addr         string          `json:"addr"`
	TLS          string          `json:"tls"` // required | opportunistic | none
	Username     string          `json:"username"`
	PasswordFile string          `json:"password_file"`
	PasswordEnv  string          `json:"password_env"`
	Timeout      config.Duration `json:"timeout"`
}

// TSAConfig chooses the timestamp authority: the embedded one, or external ones in order.
type TSAConfig struct {
	URLs    []string        `json:"urls"`
	Roots   string          `json:"roots"` // PEM; default the data directory's roots
	Timeout config.Duration `json:"timeout"`
	// Policy is the TSA policy OID the embedded TSA puts in its tokens (unused with urls). The
	// default, tsa.DefaultPolicy, is under IANA's documentation enterprise number: the embedded
	// TSA is for development, and a bank that runs it sets its own policy's OID.
	Policy string `json:"policy"`
}

// defaultConfig is the embedded default: everything on loopback, a data directory under the
// working directory, a Maildir outbox, the embedded TSA, every message of the strictest class.
func defaultConfig() Config {
	return Config{
		Data:       "sealpost-data",
		Identities: identitiesDevelopment,
		Senders:    []string{"statements@bank.example", "otp@bank.example", "support@bank.example"},
		Log:        LogConfig{Format: "text"},
		SMTP: SMTPConfig{
			Addr: "127.0.0.1:2525", AllowedNetworks: []string{"127.0.0.0/8", "::1/128"},
			MaxMessageBytes: 25 << 20, MaxRecipients: 100, MaxLineLength: 1000,
			ReadTimeout: config.Duration(5 * time.Minute), WriteTimeout: config.Duration(5 * time.Minute),
			CommandTimeout: config.Duration(30 * time.Second), MinDataRate: 1024, MinDataRateGrace: config.Duration(30 * time.Second),
			MaxSessionDuration: config.Duration(30 * time.Minute),
			MaxConnections:     200, MaxConnectionsPerClient: 20, MaxConnectionsPerNetwork: 50,
		},
		Queue: QueueConfig{Workers: 4, MinBackoff: config.Duration(5 * time.Minute), MaxBackoff: config.Duration(67 * time.Minute)},
		TSA:   TSAConfig{Timeout: config.Duration(10 * time.Second), Policy: tsa.DefaultPolicy},
		Inbound: InboundConfig{
			Enabled: true,
			Listener: SMTPConfig{
				Addr: "127.0.0.1:2526", AllowedNetworks: []string{},
				MaxMessageBytes: 25 << 20, MaxRecipients: 10, MaxLineLength: 1000,
				ReadTimeout: config.Duration(5 * time.Minute), WriteTimeout: config.Duration(5 * time.Minute),
				CommandTimeout: config.Duration(30 * time.Second), MinDataRate: 1024, MinDataRateGrace: config.Duration(30 * time.Second),
				MaxSessionDuration: config.Duration(30 * time.Minute),
				MaxConnections:     100, MaxConnectionsPerClient: 10, MaxConnectionsPerNetwork: 25,
			},
			Config: defaultInbound(),
		},
		Ops:     ops.Config{Enabled: true, Addr: ops.DefaultAddr},
		Gateway: outbound.DefaultConfig(),
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
		if decodeErr = config.Decode(b, &cfg); errors.As(decodeErr, &se) {
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

// Validate fills the defaults that the packages' Validate methods fill and checks the whole
// configuration, the listeners, queue and DKIM keys included (on copies), so that every problem is
// reported before anything starts. Every problem is a *config.FieldError named by its path in the file.
func (c *Config) Validate() error {
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
	smtp := listenerConfig(c.SMTP)
	add("smtp", smtp.Validate())
	q := queue.Config{Dir: filepath.Join(c.Data, "spool"), Workers: c.Queue.Workers,
		MinBackoff: time.Duration(c.Queue.MinBackoff), MaxBackoff: time.Duration(c.Queue.MaxBackoff)}
	add("queue", q.Validate())
	errs = append(errs, validateDelivery("delivery", &c.Delivery, filepath.Join(c.Data, "outbox")))
	if c.TSA.Timeout <= 0 {
		errs = append(errs, &config.FieldError{Path: "tsa.timeout", Problem: "must be positive (e.g. \"10s\")"})
	}
	if _, err := tsa.ParsePolicy(c.TSA.Policy); err != nil {
		errs = append(errs, &config.FieldError{Path: "tsa.policy", Problem: strings.TrimPrefix(err.Error(), tsa.ErrConfig.Error()+": ")})
	}
	add("gateway", c.Gateway.Validate())
	if c.Inbound.Enabled {
		in := listenerConfig(c.Inbound.Listener)
		in.Public = true
		add("inbound.listener", in.Validate())
	}
	add("inbound", c.Inbound.Config.Validate())
	errs = append(errs, validateDelivery("inbound.delivery", &c.Inbound.Delivery, filepath.Join(c.Data, "desk")))
	if c.HSM.Signer != nil {
		add("hsm.signer", c.HSM.Signer.Validate())
	}
	if c.HSM.Support != nil {
		add("hsm.support", c.HSM.Support.Validate())
	}
	if c.HSM.TSA != nil {
		add("hsm.tsa", c.HSM.TSA.Validate())
	}
	add("dkim", dkim.ValidateKeys(c.DKIM.Keys))
	if c.Ops.Enabled {
		add("ops", c.Ops.Validate())
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

// validateDelivery fills and checks one next hop (name is its place in the file for errors).
func validateDelivery(name string, d *DeliveryConfig, defMaildir string) error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	if d.Maildir == "" && d.Smarthost == nil {
		d.Maildir = defMaildir
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
		case "":
			h.TLS = "required"
		case "required", "opportunistic", "none":
		default:
			bad(name+".smarthost.tls", "%q is not required, opportunistic or none", h.TLS)
		}
		if h.Timeout == 0 {
			h.Timeout = config.Duration(time.Minute)
		}
	}
	return errors.Join(errs...)
}
