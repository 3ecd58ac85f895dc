package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/smtpd"
	"github.com/sealpost/sealpost/tsa"
)

// cmdServe runs the gateway until SIGINT or SIGTERM.
func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	configFile := fs.String("config", "", "configuration file (JSON); without one, the embedded defaults")
	data := fs.String("data", "", "data directory (overrides the configuration's data)")
	printConfig := fs.Bool("print-config", false, "print the example configuration with every default, and exit")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *printConfig {
		_, err := stdout.Write(exampleConfig())
		return err
	}
	cfg, err := loadConfig(*configFile, *data)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	inst, err := startInstance(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("sealpost serving", "smtp", inst.Addr().String(), "data", cfg.Data, "delivery", deliveryName(cfg))
	<-ctx.Done()
	log.Info("sealpost stopping")
	return inst.Close()
}

func deliveryName(cfg Config) string {
	if cfg.Delivery.Smarthost != nil {
		return "smarthost " + cfg.Delivery.Smarthost.Addr
	}
	return "maildir " + cfg.Delivery.Maildir
}

// instance is a running gateway: listener, gateway, spool and workers.
type instance struct {
	srv    *smtpd.Server
	spool  *queue.Spool
	ln     net.Listener
	cancel context.CancelFunc
	done   chan error
}

// Addr is the SMTP listener's address.
func (i *instance) Addr() net.Addr { return i.ln.Addr() }

// Close stops accepting, lets sessions end, then stops the workers.
func (i *instance) Close() error {
	err := i.srv.Close()
	i.cancel()
	return errors.Join(err, i.spool.Close())
}

// startInstance builds everything from cfg, creating development identities on first start, and
// starts listening. Nothing is left half-started on error.
func startInstance(ctx context.Context, cfg Config, log *slog.Logger) (*instance, error) {
	dir := keys.DataDir(cfg.Data)
	if _, err := dir.Identity("signer"); errors.Is(err, keys.ErrNotInitialised) {
		if err := dir.Init(cfg.Senders); err != nil {
			return nil, err
		}
		log.Info("created development identities (CA, signer, TSA, OpenPGP key)", "data", cfg.Data)
	}
	signer, err := dir.Identity("signer")
	if err != nil {
		return nil, fmt.Errorf("signing identity: %w", err)
	}
	ts, err := newTimestamper(dir, cfg.TSA)
	if err != nil {
		return nil, fmt.Errorf("tsa: %w", err)
	}
	sp, err := smime.NewProtector(signer, smime.WithTimestamper(ts))
	if err != nil {
		return nil, err
	}
	var pp *pgp.Protector
	if key, err := dir.PGPKey(); err == nil {
		if pp, err = pgp.NewProtector(key, pgp.WithTimestamper(ts)); err != nil {
			return nil, fmt.Errorf("OpenPGP key: %w", err)
		}
	} else if !errors.Is(err, keys.ErrNotInitialised) && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("OpenPGP key: %w", err)
	}
	directory, err := dir.Directory()
	if err != nil {
		return nil, fmt.Errorf("recipient directory: %w", err)
	}
	next, err := newNextHop(cfg.Delivery, cfg.Queue.Workers)
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	qcfg := queue.Config{Dir: filepath.Join(cfg.Data, "spool"), Workers: cfg.Queue.Workers,
		MinBackoff: time.Duration(cfg.Queue.MinBackoff), MaxBackoff: time.Duration(cfg.Queue.MaxBackoff)}
	if err := qcfg.Validate(); err != nil {
		return nil, err
	}
	spool, err := queue.Open(qcfg, next, queue.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	gw, err := gateway.New(cfg.Gateway, gateway.Deps{Directory: directory, SMIME: sp, PGP: pp, Spool: spool, Log: log})
	if err != nil {
		spool.Close()
		return nil, err
	}
	scfg := smtpd.Config{Addr: cfg.SMTP.Addr, Domain: cfg.SMTP.Domain, AllowedNetworks: cfg.SMTP.AllowedNetworks,
		TLSCert: cfg.SMTP.TLSCert, TLSKey: cfg.SMTP.TLSKey, Users: cfg.SMTP.Users,
		MaxMessageBytes: cfg.SMTP.MaxMessageBytes, MaxRecipients: cfg.SMTP.MaxRecipients, MaxLineLength: cfg.SMTP.MaxLineLength,
		ReadTimeout: time.Duration(cfg.SMTP.ReadTimeout), WriteTimeout: time.Duration(cfg.SMTP.WriteTimeout),
		MaxConnections: cfg.SMTP.MaxConnections, MaxConnectionsPerClient: cfg.SMTP.MaxConnectionsPerClient}
	// Validate fills the listener's defaults: listen on exactly what it will serve, never on an
	// empty address (every interface).
	if err := scfg.Validate(); err != nil {
		spool.Close()
		return nil, err
	}
	srv, err := smtpd.New(scfg, gw, log)
	if err != nil {
		spool.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", scfg.Addr)
	if err != nil {
		spool.Close()
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	inst := &instance{srv: srv, spool: spool, ln: ln, cancel: cancel, done: make(chan error, 1)}
	go spool.Start(wctx)
	go func() { inst.done <- srv.Serve(ln) }()
	return inst, nil
}

// newTimestamper returns the embedded TSA from the data directory, or a client for c.URLs that
// trusts c.Roots (default: the data directory's roots).
func newTimestamper(dir keys.DataDir, c TSAConfig) (tsa.Timestamper, error) {
	if len(c.URLs) == 0 {
		id, err := dir.Identity("tsa")
		if err != nil {
			return nil, err
		}
		return tsa.NewAuthority(id.Signer, id.Chain)
	}
	var roots []*x509.Certificate
	var err error
	if c.Roots != "" {
		roots, err = keys.ReadCertificatesFile(c.Roots)
	} else {
		roots, err = dir.Roots()
	}
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	return tsa.NewClient(c.URLs, pool, tsa.WithTimeout(time.Duration(c.Timeout)))
}

// newNextHop builds the delivery target; a smarthost keeps one idle connection per worker, so
// reuse is not defeated under load.
func newNextHop(d DeliveryConfig, workers int) (queue.NextHop, error) {
	if d.Smarthost == nil {
		return &queue.Maildir{Dir: d.Maildir}, nil
	}
	h := d.Smarthost
	var password string
	if h.PasswordFile != "" || h.PasswordEnv != "" {
		pw, err := keys.Secret{File: h.PasswordFile, Env: h.PasswordEnv}.Read()
		if err != nil {
			return nil, fmt.Errorf("smarthost password: %w", err)
		}
		password = pw
	}
	return queue.NewSmarthost(queue.SmarthostConfig{Addr: h.Addr, TLS: h.TLS, Username: h.Username, Password: password,
		Timeout: time.Duration(h.Timeout), MaxIdle: max(workers, 1)})
}
