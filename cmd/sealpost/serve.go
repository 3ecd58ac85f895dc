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

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/dkim"
	"github.com/sealpost/sealpost/inbound"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/ops"
	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/quarantine"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/smtpd"
	"github.com/sealpost/sealpost/store"
	"github.com/sealpost/sealpost/tsa"
)

// cmdServe runs the gateway until SIGINT or SIGTERM.
func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stdout)
	configFile, data := configFlags(fs)
	printConfig := fs.Bool("print-config", false, "print the configuration that would run (the file's, every default filled in), and exit")
	check := fs.Bool("check", false, "check the configuration, the bank's identities and every file it names without changing anything; exit 0, or 1 with every problem")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *printConfig && *check {
		return fmt.Errorf("%w: -print-config or -check, not both", errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: serve takes no arguments (did you mean -config %s?)", errUsage, quoteInput(fs.Arg(0)))
	}
	cfg, err := loadConfig(*configFile, *data)
	if err != nil {
		return err
	}
	if *printConfig {
		_, err := stdout.Write(cfg.marshal())
		return err
	}
	if *check {
		return checkConfig(cfg, *configFile, stdout)
	}
	log := slog.New(cfg.Log.handler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	inst, err := startInstance(ctx, cfg, log)
	if err != nil {
		return err
	}
	signal.Notify(inst.hup, syscall.SIGHUP)
	defer signal.Stop(inst.hup)
	if a := inst.InboundAddr(); a != nil {
		log.Info("sealpost serving", "smtp", inst.Addr().String(), "inbound", a.String(), "data", cfg.Data, "delivery", deliveryName(cfg.Delivery), "desk", deliveryName(cfg.Inbound.Delivery))
	} else {
		log.Info("sealpost serving", "smtp", inst.Addr().String(), "data", cfg.Data, "delivery", deliveryName(cfg.Delivery))
	}
	<-ctx.Done()
	log.Info("sealpost stopping")
	return inst.Close()
}

func deliveryName(d DeliveryConfig) string {
	if d.Smarthost != nil {
		return "smarthost " + d.Smarthost.Addr
	}
	return "maildir " + d.Maildir
}

// instance is a running gateway: listeners, gateway, spools and workers.
type instance struct {
	srv     *smtpd.Server
	spool   *queue.Spool
	ln      net.Listener
	inbound *inboundListener // nil when the inbound side is disabled
	store   backend
	// reload rebuilds the recipient directory (SIGHUP, file changes); hup feeds it signals.
	reload *reloader
	hup    chan os.Signal
	closer []io.Closer // HSM sessions, closed last
	ops    *ops.Server // nil when disabled
	cancel context.CancelFunc
	done   chan error
}

// inboundListener is the inbound side: its listener, pipeline and the desk's spool.
type inboundListener struct {
	srv      *smtpd.Server
	ln       net.Listener
	pipeline *inbound.Pipeline
	desk     *queue.Spool
	held     *quarantine.Quarantine
}

// Addr is the SMTP listener's address.
func (i *instance) Addr() net.Addr { return i.ln.Addr() }

// InboundAddr is the inbound listener's address (nil when disabled).
func (i *instance) InboundAddr() net.Addr {
	if i.inbound == nil {
		return nil
	}
	return i.inbound.ln.Addr()
}

// Close stops accepting, lets sessions end, then stops the workers.
func (i *instance) Close() error {
	err := i.srv.Close()
	if i.ops != nil {
		err = errors.Join(err, i.ops.Close())
	}
	if i.inbound != nil {
		err = errors.Join(err, i.inbound.srv.Close())
	}
	i.cancel()
	err = errors.Join(err, i.spool.Close())
	if i.inbound != nil {
		err = errors.Join(err, i.inbound.desk.Close())
	}
	err = errors.Join(err, i.store.Close())
	closeAll(i.closer)
	return err
}

// closeAll closes what is not nil, last opened first.
func closeAll(cs []io.Closer) {
	for i := len(cs) - 1; i >= 0; i-- {
		if cs[i] != nil {
			cs[i].Close()
		}
	}
}

// storeFile is the embedded store in the data directory.
const storeFile = "sealpost.db"

// openStore opens the embedded store (SQLite) in the data directory.
func openStore(data string) (backend, error) {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	st, err := store.OpenSQLite(filepath.Join(data, storeFile))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return st, nil
}

// startInstance builds everything from cfg, creating development identities on first start, and
// starts listening. Nothing is left half-started on error.
func startInstance(ctx context.Context, cfg Config, log *slog.Logger) (inst *instance, err error) {
	cfg.resolvePaths()
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
	// Everything that can be checked is checked before anything is written.
	problems, inconsistent, create := preflight(cfg, time.Now())
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	for _, p := range inconsistent {
		log.Warn("configuration: "+p.Error(), "check", "sealpost serve -check")
	}
	dir := keys.DataDir(cfg.Data)
	devRoles, err := developmentIdentities(cfg, create, log)
	if err != nil {
		return nil, err
	}
	var closers []io.Closer
	cleanup = append(cleanup, func() { closeAll(closers) })
	m := ops.NewMetrics()
	m.SetDevelopmentIdentities(len(devRoles) > 0)
	signer, c, err := loadRole(dir, cfg.HSM, keys.RoleSigner)
	if err != nil {
		return nil, err
	}
	closers = append(closers, c)
	var ts tsa.Timestamper
	if len(cfg.TSA.URLs) == 0 {
		tsaID, c, err := loadRole(dir, cfg.HSM, keys.RoleTSA)
		if err != nil {
			return nil, err
		}
		closers = append(closers, c)
		if ts, err = newAuthority(tsaID, cfg.TSA); err != nil {
			return nil, fmt.Errorf("tsa: %w", err)
		}
		m.SetCertificateExpiry("tsa", tsaID.Certificate())
	} else if ts, err = newTimestamper(dir, cfg.TSA); err != nil {
		return nil, fmt.Errorf("tsa: %w", err)
	}
	ts = ops.InstrumentTimestamper(ts, m)
	m.SetCertificateExpiry("signer", signer.Certificate())
	sp, err := smime.NewProtector(signer, smime.WithTimestamper(ts))
	if err != nil {
		return nil, err
	}
	var pp *pgp.Protector
	pgpKey, err := dir.PGPKey()
	if err == nil {
		if pp, err = pgp.NewProtector(pgpKey, pgp.WithTimestamper(ts)); err != nil {
			return nil, fmt.Errorf("OpenPGP key: %w", err)
		}
	} else if !errors.Is(err, keys.ErrNotInitialised) && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("OpenPGP key: %w", err)
	}
	directory, err := dir.Directory()
	if err != nil {
		return nil, fmt.Errorf("recipient directory: %w", err)
	}
	st, err := openStore(cfg.Data)
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { st.Close() })
	next, err := newNextHop(cfg.Delivery, cfg.Queue.Workers)
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	spool, err := openSpool(cfg, filepath.Join(cfg.Data, "spool"), next, log, queue.WithObserver(m.QueueObserver("outbound")))
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { spool.Close() })
	m.WatchSpool("outbound", spool)
	// DKIM signs each protected copy on its way into the spool.
	var out queue.Writer = spool
	if len(cfg.DKIM.Keys) > 0 {
		dk, err := dkim.New(cfg.DKIM.Keys)
		if err != nil {
			return nil, fmt.Errorf("dkim: %w", err)
		}
		out = dkim.Spool{Next: spool, Signer: dk}
	}
	gw, err := outbound.New(cfg.Gateway, directory, sp, out, outbound.WithPGP(pp), outbound.WithStore(st), outbound.WithObserver(m), outbound.WithLogger(log))
	if err != nil {
		return nil, err
	}
	scfg := cfg.SMTP
	srv, err := smtpd.New(scfg, gw, smtpd.WithLogger(log))
	if err != nil {
		return nil, err
	}
	var in *inboundListener
	opsOpts := []ops.Option{ops.WithMetrics(m), ops.WithLogger(log), ops.WithSpool("outbound", spool),
		ops.WithReadiness("keys loaded", ops.CertificateValid(signer.Certificate())),
		ops.WithReadiness("spool writable", ops.SpoolWritable(filepath.Join(cfg.Data, "spool")))}
	if len(devRoles) > 0 {
		opsOpts = append(opsOpts, ops.WithNotice("identities", developmentNotice(devRoles)))
	}
	if cfg.Inbound.Enabled {
		decrypters, cs, err := loadDecrypters(dir, cfg.HSM, signer)
		closers = append(closers, cs...)
		if err != nil {
			return nil, err
		}
		if in, err = startInbound(cfg, dir, directory, decrypters, pgpKey, st, m, log); err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { in.ln.Close(); in.desk.Close() })
		opsOpts = append(opsOpts, ops.WithSpool("desk", in.desk),
			ops.WithReadiness("desk spool writable", ops.SpoolWritable(filepath.Join(cfg.Data, "desk-spool"))))
	}
	var opsSrv *ops.Server
	if cfg.Ops.Enabled {
		// Queue control needs the token; the CLI reads its secret from the data directory.
		tok, err := ops.EnsureToken(cfg.Data)
		if err != nil {
			return nil, fmt.Errorf("ops token: %w", err)
		}
		if opsSrv, err = ops.NewServer(cfg.Ops, append(opsOpts, ops.WithToken(tok))...); err != nil {
			return nil, fmt.Errorf("ops: %w", err)
		}
		if err := opsSrv.Start(); err != nil {
			return nil, fmt.Errorf("ops.addr: %w", err)
		}
		cleanup = append(cleanup, func() { opsSrv.Close() })
	}
	ln, err := net.Listen("tcp", scfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp.addr: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	users := []directoryUser{gw}
	if in != nil {
		users = append(users, in.pipeline)
	}
	inst = &instance{srv: srv, spool: spool, ln: ln, inbound: in, store: st, cancel: cancel, done: make(chan error, 2),
		reload: newReloader(dir, log, users...), hup: make(chan os.Signal, 1), closer: closers, ops: opsSrv}
	go inst.reload.run(wctx, inst.hup)
	go spool.Start(wctx)
	go func() { inst.done <- srv.Serve(ln) }()
	if in != nil {
		go in.desk.Start(wctx)
		go func() { inst.done <- in.srv.Serve(in.ln) }()
		go in.held.Run(wctx, releaseInterval, in.pipeline.DeliverReleased)
	}
	return inst, nil
}

func openSpool(cfg Config, dir string, next queue.NextHop, log *slog.Logger, opts ...queue.Option) (*queue.Spool, error) {
	qcfg := cfg.Queue
	qcfg.Dir = dir
	spool, err := queue.Open(qcfg, next, append([]queue.Option{queue.WithLogger(log)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	return spool, nil
}

// newInboundPipeline builds the inbound pipeline (desk and quarantine may be nil for `verify`).
func newInboundPipeline(cfg Config, dir keys.DataDir, directory *keys.Directory, decrypters []*keys.Identity, pgpKey *openpgp.Entity,
	st inbound.Store, desk queue.Writer, held *quarantine.Quarantine, obs inbound.Observer, log *slog.Logger) (*inbound.Pipeline, error) {
	var pgpKeys openpgp.EntityList
	if pgpKey != nil {
		pgpKeys = openpgp.EntityList{pgpKey}
	}
	return inbound.New(cfg.Inbound.Config, st, directory, inbound.WithIdentities(decrypters...), inbound.WithPGPKeys(pgpKeys),
		inbound.WithDesk(desk), inbound.WithQuarantine(held), inbound.WithObserver(obs), inbound.WithLogger(log))
}

// startInbound opens the desk's spool and the quarantine and binds the inbound listener.
func startInbound(cfg Config, dir keys.DataDir, directory *keys.Directory, decrypters []*keys.Identity, pgpKey *openpgp.Entity,
	st backend, m *ops.Metrics, log *slog.Logger) (in *inboundListener, err error) {
	held, err := quarantine.Open(quarantineDir(cfg), st, quarantine.WithLogger(log))
	if err != nil {
		return nil, err
	}
	next, err := newNextHop(cfg.Inbound.Delivery, cfg.Queue.Workers)
	if err != nil {
		return nil, fmt.Errorf("inbound delivery: %w", err)
	}
	desk, err := openSpool(cfg, filepath.Join(cfg.Data, "desk-spool"), next, log, queue.WithObserver(m.QueueObserver("desk")))
	if err != nil {
		return nil, err
	}
	m.WatchSpool("desk", desk)
	defer func() {
		if err != nil {
			desk.Close()
		}
	}()
	pipeline, err := newInboundPipeline(cfg, dir, directory, decrypters, pgpKey, st, desk, held, m, log)
	if err != nil {
		return nil, err
	}
	icfg := cfg.Inbound.Listener
	icfg.Public = true
	srv, err := smtpd.New(icfg, pipeline, smtpd.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("inbound.listener: %w", err)
	}
	ln, err := net.Listen("tcp", icfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("inbound.listener.addr: %w", err)
	}
	return &inboundListener{srv: srv, ln: ln, pipeline: pipeline, desk: desk, held: held}, nil
}

// releaseInterval is how often serve looks for held messages an operator released.
const releaseInterval = 5 * time.Second

// newTimestamper returns the embedded TSA from the data directory, or a client for c.URLs that
// trusts c.Roots (default: the data directory's roots).
func newTimestamper(dir keys.DataDir, c tsa.Config) (tsa.Timestamper, error) {
	if len(c.URLs) == 0 {
		id, err := dir.Identity("tsa")
		if err != nil {
			return nil, err
		}
		return newAuthority(id, c)
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

// newAuthority is the embedded TSA signing with id under c.Policy.
func newAuthority(id *keys.Identity, c tsa.Config) (*tsa.Authority, error) {
	oid, err := tsa.ParsePolicy(c.Policy)
	if err != nil {
		return nil, err
	}
	return tsa.NewAuthority(id.Signer, id.Chain, tsa.WithPolicy(oid))
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
