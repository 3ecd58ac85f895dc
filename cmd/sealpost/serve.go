package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sealpost/sealpost/discovery"
	"github.com/sealpost/sealpost/evidence"

	"github.com/ProtonMail/go-crypto/openpgp"

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
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/quarantine"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/smtpd"
	"github.com/sealpost/sealpost/store"
	"github.com/sealpost/sealpost/templates"
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
	logs := newLogBuffer(stderr, logFlushAfter)
	defer logs.Close()
	log := slog.New(flushOnWarn{cfg.Log.handler(logs, nil), logs})
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
	data    *bankData        // the store and the HSM sessions, closed last
	// watcher rebuilds the recipient directory (SIGHUP, file changes); hup feeds it signals.
	watcher *keys.Watcher
	hup     chan os.Signal
	ops     *ops.Server // nil when disabled
	log     *slog.Logger
	m       *ops.Metrics
	mailbox bool             // a class serves keyless customers through the secure mailbox
	wkd     *discovery.Cache // nil: WKD off; start refreshes its keys
	// evidence is the node's evidence log (nil: off): start checkpoints it, Close closes it
	// after the spool (whose workers record outcomes in it).
	evidence      *evidence.Log
	evidenceFiles evidence.Backend
	evidenceEvery time.Duration     // evidence.checkpoint_interval
	evidenceIndex *evidence.Indexer // with the console: keeps the store's index by address of the log
	outcomes      *outcomeRecorder
	decided       chan struct{} // a decision on held mail was announced: record it
	// wkdPublisher serves the bank's OpenPGP key by WKD (nil: discovery.publish_addr is off).
	wkdPublisher *http.Server
	api          *api.Server     // nil when disabled
	console      *console.Server // nil when disabled
	cancel       context.CancelFunc
	// background are the workers start runs that read or write the data directory and the store
	// (directory watcher, SIGHUP reloads, release loop, change feed, mailbox expiry): Close waits
	// for them before it closes the store.
	background sync.WaitGroup
	done       chan error
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

// APIAddr is the bank's API listener's address (nil when disabled).
func (i *instance) APIAddr() net.Addr {
	if i.api == nil {
		return nil
	}
	return i.api.Addr()
}

// ConsoleAddr is the web console's address (nil when disabled).
func (i *instance) ConsoleAddr() net.Addr {
	if i.console == nil {
		return nil
	}
	return i.console.Addr()
}

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
	if i.wkdPublisher != nil {
		err = errors.Join(err, i.wkdPublisher.Close())
	}
	if i.ops != nil {
		err = errors.Join(err, i.ops.Close())
	}
	if i.api != nil {
		err = errors.Join(err, i.api.Close())
	}
	if i.console != nil {
		err = errors.Join(err, i.console.Close())
	}
	if i.inbound != nil {
		err = errors.Join(err, i.inbound.srv.Close())
	}
	i.cancel()
	i.background.Wait()
	err = errors.Join(err, i.spool.Close())
	err = errors.Join(err, i.closeEvidence())
	if i.inbound != nil {
		err = errors.Join(err, i.inbound.desk.Close())
	}
	return errors.Join(err, i.data.Close())
}

// closeAll closes what is not nil, last opened first.
func closeAll(cs []io.Closer) {
	for i := len(cs) - 1; i >= 0; i-- {
		if cs[i] != nil {
			cs[i].Close()
		}
	}
}

// bankData is what serve and the offline commands (verify, quarantine) read from the data
// directory: the bank's identities, its OpenPGP key, the recipient directory and the store.
type bankData struct {
	dir        keys.DataDir
	signer     *keys.Identity
	decrypters []*keys.Identity // only when asked for: the inbound side's
	pgpKey     *openpgp.Entity  // nil when the data directory has none
	directory  *keys.Directory
	store      backend
	// versions are the store's change versions read just before the directory was loaded: the
	// change feed's baseline, so that a key learned or imported meanwhile reloads it.
	versions map[string]int64
	closers  []io.Closer // HSM sessions, closed last opened first
	// revocations checks customers' certificates (CRL, OCSP); nil when discovery.revocation is off.
	revocations *discovery.Checker
}

// openBankData loads the signer, the decrypters (when decrypt), the OpenPGP key and the recipient
// directory, and opens the store. Nothing stays open on error.
func openBankData(cfg Config, decrypt bool) (_ *bankData, err error) {
	b := &bankData{dir: keys.DataDir(cfg.Data)}
	defer func() {
		if err != nil {
			closeAll(b.closers)
		}
	}()
	signer, c, err := loadRole(b.dir, cfg.HSM, keys.RoleSigner)
	if err != nil {
		return nil, err
	}
	b.signer, b.closers = signer, append(b.closers, c)
	if decrypt {
		decrypters, cs, err := loadDecrypters(b.dir, cfg.HSM, signer)
		b.closers = append(b.closers, cs...)
		if err != nil {
			return nil, err
		}
		b.decrypters = decrypters
	}
	if k, err := b.dir.PGPKey(); err == nil {
		b.pgpKey = k
	} else if !errors.Is(err, keys.ErrNotInitialised) && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("OpenPGP key: %w", err)
	}
	if cfg.Discovery.Revocation.Enabled {
		if b.revocations, err = discovery.NewChecker(cfg.Discovery.Revocation); err != nil {
			return nil, err
		}
		b.closers = append(b.closers, b.revocations)
	}
	if b.store, err = openStore(cfg.Data, cfg.Store); err != nil {
		return nil, err
	}
	if cfg.wrapStore != nil {
		b.store = cfg.wrapStore(b.store)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
	defer cancel()
	if b.versions, err = b.store.ChangeVersions(ctx); err != nil {
		b.store.Close()
		return nil, err
	}
	if b.directory, err = recipientDirectory(ctx, b.dir, b.store); err != nil {
		b.store.Close()
		return nil, fmt.Errorf("recipient directory: %w", err)
	}
	return b, nil
}

// adopt keeps an HSM session opened for what was built from b (the embedded TSA's), to close it
// with the others.
func (b *bankData) adopt(c io.Closer) { b.closers = append(b.closers, c) }

// Close closes the store, then the HSM sessions.
func (b *bankData) Close() error {
	err := b.store.Close()
	closeAll(b.closers)
	return err
}

// inboundPipeline builds the inbound pipeline on b (desk and quarantine may be nil for `verify`).
func (b *bankData) inboundPipeline(cfg Config, desk queue.Writer, held *quarantine.Quarantine, obs inbound.Observer, log *slog.Logger, more ...inbound.Option) (*inbound.Pipeline, error) {
	var pgpKeys openpgp.EntityList
	if b.pgpKey != nil {
		pgpKeys = openpgp.EntityList{b.pgpKey}
	}
	opts := []inbound.Option{inbound.WithIdentities(b.decrypters...), inbound.WithPGPKeys(pgpKeys),
		inbound.WithDesk(desk), inbound.WithQuarantine(held), inbound.WithObserver(obs), inbound.WithLogger(log)}
	if b.revocations != nil {
		opts = append(opts, inbound.WithRevocations(b.revocations))
	}
	return inbound.New(cfg.Inbound.Config, b.store, b.directory, append(opts, more...)...)
}

// assembly is an instance being built: what startInstance's builders share, and what to undo
// when one of them fails.
type assembly struct {
	cfg  Config
	log  *slog.Logger
	m    *ops.Metrics
	data *bankData
	wkd  *discovery.Cache // nil: WKD off
	// evidence is this node's evidence log (nil: evidence.enabled is off); evidenceFiles its files.
	evidence      *evidence.Log
	evidenceFiles evidence.Backend
	evidenceIndex *evidence.Indexer // nil: no console to use it
	outcomes      *outcomeRecorder
	cleanup       []func()
}

// onFailure registers f to run, last registered first, when the instance does not start.
func (a *assembly) onFailure(f func()) { a.cleanup = append(a.cleanup, f) }

func (a *assembly) undo() {
	for i := len(a.cleanup) - 1; i >= 0; i-- {
		a.cleanup[i]()
	}
}

// startInstance builds everything from cfg, creating development identities on first start, and
// starts listening. Nothing is left half-started on error.
func startInstance(ctx context.Context, cfg Config, log *slog.Logger) (inst *instance, err error) {
	cfg.resolvePaths()
	devRoles, err := prepareIdentities(cfg, log)
	if err != nil {
		return nil, err
	}
	a := &assembly{cfg: cfg, log: log, m: ops.NewMetrics()}
	defer func() {
		if err != nil {
			a.undo()
		}
	}()
	a.m.SetDevelopmentIdentities(len(devRoles) > 0)
	if a.data, err = openBankData(cfg, cfg.Inbound.Enabled); err != nil {
		return nil, err
	}
	a.onFailure(func() { a.data.Close() })
	sp, pp, err := a.protectors()
	if err != nil {
		return nil, err
	}
	gw, spool, srv, err := a.outboundSide(sp, pp)
	if err != nil {
		return nil, err
	}
	var in *inboundListener
	if cfg.Inbound.Enabled {
		if in, err = a.inboundSide(); err != nil {
			return nil, err
		}
	}
	opsSrv, err := a.startOps(spool, in, devRoles)
	if err != nil {
		return nil, err
	}
	apiSrv, err := a.startAPI(gw)
	if err != nil {
		return nil, err
	}
	consoleSrv, err := a.startConsole(in, spool)
	if err != nil {
		return nil, err
	}
	wkdSrv, err := a.startWKDPublisher()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.SMTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp.addr: %w", err)
	}
	inst = &instance{wkdPublisher: wkdSrv, srv: srv, spool: spool, ln: ln, inbound: in, data: a.data, hup: make(chan os.Signal, 1), ops: opsSrv, api: apiSrv, console: consoleSrv, done: make(chan error, 2),
		log: log, m: a.m, mailbox: notifies(cfg.Gateway), wkd: a.wkd, evidence: a.evidence, evidenceFiles: a.evidenceFiles, outcomes: a.outcomes,
		evidenceIndex: a.evidenceIndex, evidenceEvery: time.Duration(cfg.Evidence.CheckpointInterval), decided: make(chan struct{}, 1)}
	users := []keys.DirectoryUser{gw}
	if in != nil {
		users = append(users, in.pipeline)
	}
	if apiSrv != nil {
		users = append(users, apiSrv)
	}
	inst.watcher = keys.NewWatcher(a.data.dir, users, keys.WithLogger(log), keys.WithSource(api.KeySource(a.data.store)))
	inst.start(ctx)
	return inst, nil
}

// startWKDPublisher serves the bank's OpenPGP key by WKD on discovery.publish_addr, which must be
// loopback: the bank's HTTPS web server for openpgpkey.DOMAIN and DOMAIN passes requests on.
func (a *assembly) startWKDPublisher() (*http.Server, error) {
	addr := a.cfg.Discovery.Publish
	if addr == "" {
		return nil, nil
	}
	if a.data.pgpKey == nil {
		return nil, errors.New("discovery.publish_addr: the bank has no OpenPGP key to publish")
	}
	h, err := discovery.NewWKDServer([]*openpgp.Entity{a.data.pgpKey})
	if err != nil {
		return nil, fmt.Errorf("discovery.publish_addr: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("discovery.publish_addr: %w", err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("discovery.publish_addr: %s is not loopback: put the bank's HTTPS web server in front of it", ln.Addr())
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	a.onFailure(func() { srv.Close() })
	go srv.Serve(ln)
	a.log.Info("publishing the bank's OpenPGP key by WKD", "addr", ln.Addr().String())
	return srv, nil
}

// prepareIdentities checks everything that can be checked before anything is written, warns about
// inconsistencies, and creates the development identities a development configuration lacks. It
// returns the roles that run on development identities.
func prepareIdentities(cfg Config, log *slog.Logger) ([]keys.Role, error) {
	problems, inconsistent, create := preflight(cfg, time.Now())
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	for _, p := range inconsistent {
		log.Warn("configuration: "+p.Error(), "check", "sealpost serve -check")
	}
	return developmentIdentities(cfg, create, log)
}

// protectors builds the S/MIME protector and, when the data directory has an OpenPGP key, the
// OpenPGP one, both timestamping through the embedded or the configured TSAs.
func (a *assembly) protectors() (*smime.Protector, *pgp.Protector, error) {
	cfg, d := a.cfg, a.data
	var ts tsa.Timestamper
	if len(cfg.TSA.URLs) == 0 {
		tsaID, c, err := loadRole(d.dir, cfg.HSM, keys.RoleTSA)
		if err != nil {
			return nil, nil, err
		}
		d.adopt(c)
		if ts, err = newAuthority(tsaID, cfg.TSA); err != nil {
			return nil, nil, fmt.Errorf("tsa: %w", err)
		}
		a.m.SetCertificateExpiry("tsa", tsaID.Certificate())
	} else {
		var err error
		if ts, err = newTimestamper(d.dir, cfg.TSA); err != nil {
			return nil, nil, fmt.Errorf("tsa: %w", err)
		}
	}
	ts = ops.InstrumentTimestamper(ts, a.m)
	if err := a.openEvidence(ts); err != nil {
		return nil, nil, fmt.Errorf("evidence: %w", err)
	}
	// Each token is noted for the evidence record of the message it seals.
	ts = evidence.SealingTimestamper{Timestamper: ts}
	a.m.SetCertificateExpiry("signer", d.signer.Certificate())
	sp, err := smime.NewProtector(d.signer, smime.WithTimestamper(ts))
	if err != nil {
		return nil, nil, err
	}
	if d.pgpKey == nil {
		return sp, nil, nil
	}
	pp, err := pgp.NewProtector(d.pgpKey, pgp.WithTimestamper(ts))
	if err != nil {
		return nil, nil, fmt.Errorf("OpenPGP key: %w", err)
	}
	return sp, pp, nil
}

// outboundSide opens the outbound spool and builds the outbound pipeline and its SMTP server.
func (a *assembly) outboundSide(sp *smime.Protector, pp *pgp.Protector) (*outbound.Pipeline, *queue.Spool, *smtpd.Server, error) {
	cfg := a.cfg
	next, err := newNextHop(cfg.Delivery, cfg.Queue.Workers)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("delivery: %w", err)
	}
	qopts := []queue.Option{queue.WithObserver(a.m.QueueObserver("outbound"))}
	if a.evidence != nil {
		qopts = append(qopts, queue.WithOutcomes(a.outcomes.record))
	}
	spool, err := openSpool(cfg, filepath.Join(cfg.Data, "spool"), next, a.log, qopts...)
	if err != nil {
		return nil, nil, nil, err
	}
	a.onFailure(func() { spool.Close() })
	a.m.WatchSpool("outbound", spool)
	var out queue.Writer = spool
	var more []outbound.Option
	// DKIM signs each protected copy last, before it is recorded and queued.
	if len(cfg.DKIM.Keys) > 0 {
		dk, err := dkim.New(cfg.DKIM.Keys)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("dkim: %w", err)
		}
		more = append(more, outbound.WithFinish(dk.Sign))
	}
	if a.evidence != nil {
		more = append(more, outbound.WithEvidence(a.evidence))
	}
	set, err := loadTemplates(cfg.Data)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := append([]outbound.Option{outbound.WithPGP(pp), outbound.WithStore(a.data.store), outbound.WithObserver(a.m), outbound.WithLogger(a.log),
		outbound.WithTemplates(set)}, more...)
	if notifies(cfg.Gateway) {
		key, err := a.data.dir.MailboxKey()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("secure mailbox key: %w", err)
		}
		opts = append(opts, outbound.WithMailbox(a.data.store, key))
		a.m.WatchMailbox(a.data.store.MailboxCounts)
	}
	if a.data.revocations != nil {
		opts = append(opts, outbound.WithRevocations(a.data.revocations))
	}
	if cfg.Discovery.WKD.Enabled {
		client, err := discovery.NewWKDClient(cfg.Discovery.WKD.WKD, cfg.wkdOptions...)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("discovery.wkd: %w", err)
		}
		if a.wkd, err = discovery.NewCache(cfg.Discovery.WKD, client, a.data.store, discovery.WithCacheLogger(a.log), discovery.WithCacheObserver(a.m)); err != nil {
			return nil, nil, nil, fmt.Errorf("discovery.wkd: %w", err)
		}
		opts = append(opts, outbound.WithDiscovery(a.wkd))
	}
	gw, err := outbound.New(cfg.Gateway, a.data.directory, sp, out, opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	srv, err := smtpd.New(cfg.SMTP, gw, smtpd.WithLogger(a.log))
	if err != nil {
		return nil, nil, nil, err
	}
	return gw, spool, srv, nil
}

// inboundSide opens the quarantine and the desk's spool, builds the inbound pipeline and binds
// the inbound listener.
func (a *assembly) inboundSide() (*inboundListener, error) {
	cfg, log := a.cfg, a.log
	held, err := openQuarantine(cfg, a.data.store, quarantine.WithLogger(log))
	if err != nil {
		return nil, err
	}
	next, err := newNextHop(cfg.Inbound.Delivery, cfg.Queue.Workers)
	if err != nil {
		return nil, fmt.Errorf("inbound delivery: %w", err)
	}
	desk, err := openSpool(cfg, filepath.Join(cfg.Data, "desk-spool"), next, log, queue.WithObserver(a.m.QueueObserver("desk")))
	if err != nil {
		return nil, err
	}
	a.onFailure(func() { desk.Close() })
	a.m.WatchSpool("desk", desk)
	var more []inbound.Option
	if a.evidence != nil {
		more = append(more, inbound.WithEvidence(a.evidence))
	}
	pipeline, err := a.data.inboundPipeline(cfg, desk, held, a.m, log, more...)
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
	a.onFailure(func() { ln.Close() })
	return &inboundListener{srv: srv, ln: ln, pipeline: pipeline, desk: desk, held: held}, nil
}

// startOps starts the ops listener (metrics, health, queue control) when it is enabled; nil when not.
func (a *assembly) startOps(spool *queue.Spool, in *inboundListener, devRoles []keys.Role) (*ops.Server, error) {
	cfg := a.cfg
	a.m.WatchStore(storePing(a.data.store))
	if !cfg.Ops.Enabled {
		return nil, nil
	}
	opts := []ops.Option{ops.WithMetrics(a.m), ops.WithLogger(a.log), ops.WithSpool("outbound", spool),
		ops.WithReadiness("keys loaded", ops.CertificateValid(a.data.signer.Certificate())),
		ops.WithReadiness("spool writable", ops.SpoolWritable(filepath.Join(cfg.Data, "spool"))),
		ops.WithReadiness("store", ops.StoreAnswers(storePing(a.data.store)))}
	if len(devRoles) > 0 {
		opts = append(opts, ops.WithNotice("identities", developmentNotice(devRoles)))
	}
	if in != nil {
		opts = append(opts, ops.WithSpool("desk", in.desk),
			ops.WithReadiness("desk spool writable", ops.SpoolWritable(filepath.Join(cfg.Data, "desk-spool"))))
	}
	// Queue control needs the token; the CLI reads its secret from the data directory.
	tok, err := ops.EnsureToken(cfg.Data)
	if err != nil {
		return nil, fmt.Errorf("ops token: %w", err)
	}
	srv, err := ops.NewServer(cfg.Ops, append(opts, ops.WithToken(tok))...)
	if err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("ops.addr: %w", err)
	}
	a.onFailure(func() { srv.Close() })
	return srv, nil
}

// startAPI starts the bank's API listener when it is enabled; nil when not. The recipient
// directory reaches it through the watcher; after a registration the store's change feed reloads
// it, on this node as on every other.
func (a *assembly) startAPI(gw *outbound.Pipeline) (*api.Server, error) {
	if !a.cfg.API.Enabled {
		return nil, nil
	}
	opts := []api.Option{api.WithLogger(a.log), api.WithDirectoryReload(func(context.Context) error { return nil }), api.WithObserver(a.m)}
	if a.data.revocations != nil {
		opts = append(opts, api.WithRevocations(a.data.revocations))
	}
	if a.evidence != nil {
		opts = append(opts, api.WithActions(evidenceActions{a.evidence}))
	}
	more, err := a.apiServices(gw)
	if err != nil {
		return nil, err
	}
	srv, err := api.New(a.cfg.API, a.data.store, a.data.dir, a.data.directory, append(opts, more...)...)
	if err != nil {
		return nil, config.Prefix("api", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("api.addr: %w", err)
	}
	a.onFailure(func() { srv.Close() })
	return srv, nil
}

// apiServices are the API's optional services: the customer CA when the data directory (or the
// HSM) has its identity, and the secure mailbox when a class notifies keyless customers.
func (a *assembly) apiServices(gw *outbound.Pipeline) ([]api.Option, error) {
	key, err := a.data.dir.OTPKey()
	if err != nil {
		return nil, fmt.Errorf("otp key: %w", err)
	}
	svc, err := otp.New(a.cfg.OTP, key, a.data.store)
	if err != nil {
		return nil, config.Prefix("otp", err)
	}
	opts := []api.Option{api.WithOTP(svc, gw)}
	if _, err := os.Stat(filepath.Join(a.cfg.Data, "customer-ca.pem")); err == nil || a.cfg.HSM.CustomerCA != nil {
		id, closer, err := loadRole(a.data.dir, a.cfg.HSM, keys.RoleCustomerCA)
		if err != nil {
			return nil, fmt.Errorf("customer CA: %w", err)
		}
		a.data.adopt(closer)
		authority, err := ca.New(a.cfg.CA, id, a.data.store)
		if err != nil {
			return nil, fmt.Errorf("customer CA: %w", err)
		}
		opts = append(opts, api.WithCA(authority))
	}
	if notifies(a.cfg.Gateway) {
		key, err := a.data.dir.MailboxKey()
		if err != nil {
			return nil, fmt.Errorf("secure mailbox key: %w", err)
		}
		roots, err := bankRoots(a.data.dir)
		if err != nil {
			return nil, err
		}
		opts = append(opts, api.WithMailbox(a.data.store, key, roots, roots))
	}
	return opts, nil
}

// bankRoots are what the bank's own signatures and timestamps are checked against when online
// banking fetches a message from the secure mailbox: the trusted roots, and the chains of the
// bank's signer and TSA.
func bankRoots(dir keys.DataDir) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	roots, err := dir.Roots()
	if err != nil {
		return nil, err
	}
	for _, r := range roots {
		pool.AddCert(r)
	}
	for _, role := range []string{"signer", "tsa"} {
		chain, err := dir.ChainPEM(role)
		if err != nil {
			continue // in the HSM, or an external TSA: the roots above
		}
		certs, err := keys.ParseCertificates(chain)
		if err != nil {
			return nil, fmt.Errorf("%s chain: %w", role, err)
		}
		if n := len(certs); n > 0 {
			pool.AddCert(certs[n-1])
		}
	}
	return pool, nil
}

// start runs the workers and the listeners until Close: the spools, the directory watcher and
// its SIGHUP trigger, and, with the inbound side, the desk and the quarantine's release loop.
func (i *instance) start(ctx context.Context) {
	wctx, cancel := context.WithCancel(ctx)
	i.cancel = cancel
	i.background.Go(func() { i.watcher.Run(wctx) })
	i.background.Go(func() { i.reloadOnHangup(wctx) })
	go i.spool.Start(wctx)
	go func() { i.done <- i.srv.Serve(i.ln) }()
	if in := i.inbound; in != nil {
		go in.desk.Start(wctx)
		go func() { i.done <- in.srv.Serve(in.ln) }()
		i.background.Go(func() { in.held.Run(wctx, releaseInterval, in.pipeline.DeliverReleased) })
	}
	i.background.Go(func() { i.data.store.Watch(wctx, 0, i.data.versions, i.storeChanged(wctx)) })
	if i.mailbox {
		i.background.Go(func() { i.expireMailbox(wctx) })
	}
	if i.wkd != nil {
		i.background.Go(func() { i.wkd.Run(wctx, wkdRefreshInterval) })
	}
	if i.evidence != nil {
		i.background.Go(func() { i.evidence.Run(wctx, i.evidenceEvery) })
		if i.evidenceIndex != nil {
			i.background.Go(func() { i.evidenceIndex.Run(wctx, evidenceIndexInterval) })
		}
		i.background.Go(func() { i.recordDecisions(wctx) })
	}
}

// wkdRefreshInterval is how often serve looks for discovered keys due for a refresh.
const wkdRefreshInterval = time.Minute

// loadTemplates reads the bank's template overrides under DATA/templates (none: the embedded
// ones), every template parsed and rendered once with sample data: one that fails stops serve,
// naming its file.
func loadTemplates(data string) (*templates.Set, error) {
	dir := filepath.Join(data, "templates")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return templates.Default(), nil
	}
	return templates.Load(dir)
}

// mailboxExpiryInterval is how often serve removes expired messages from the secure mailbox.
const mailboxExpiryInterval = time.Hour

// notifies reports whether any class serves keyless customers through the secure mailbox.
func notifies(cfg outbound.Config) bool {
	for _, p := range cfg.Policies {
		if p.Keyless == outbound.KeylessNotify {
			return true
		}
	}
	return false
}

// expireMailbox removes the secure mailbox's expired messages now and every hour until ctx ends.
// Several nodes may run it at once: a removal is one statement, and each item is removed once.
func (i *instance) expireMailbox(ctx context.Context) {
	t := time.NewTicker(mailboxExpiryInterval)
	defer t.Stop()
	for {
		n, err := i.data.store.ExpireMailbox(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			i.log.Warn("secure mailbox: removing expired messages", "error", err)
		case n > 0:
			i.m.MailboxExpired(n)
			i.log.Info("secure mailbox: expired messages removed", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// storeChanged acts on a change announced by the shared store (made on this node or another): a
// key imported or removed reloads the recipient directory, a release delivers at once.
// Registrations need nothing: they are read from the store for each message.
func (i *instance) storeChanged(ctx context.Context) func(topic string) {
	return func(topic string) {
		switch topic {
		case store.TopicDirectory:
			_ = i.watcher.Reload(ctx, "store change")
		case store.TopicHeld:
			if i.inbound != nil {
				i.inbound.held.Wake()
			}
			select { // a release or deletion queued its evidence record
			case i.decided <- struct{}{}:
			default:
			}
		}
	}
}

// reloadOnHangup reloads the recipient directory on each signal on i.hup (SIGHUP, as serve
// wires it) until ctx ends.
func (i *instance) reloadOnHangup(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-i.hup:
			_ = i.watcher.Reload(ctx, "SIGHUP")
		}
	}
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
