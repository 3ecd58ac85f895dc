package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// Timeouts of the API listener: its clients are the bank's backends, which send small bodies
// (a certificate, a key) and read small answers.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 5 * time.Second
	maxHeaderBytes    = 16 << 10
	// expireEvery is how often calls older than the idempotency TTL are deleted.
	expireEvery = 10 * time.Minute
)

// Server is the bank's API listener.
type Server struct {
	cfg     Config
	st      Store
	dir     keys.DataDir
	cur     atomic.Pointer[keys.Directory]
	reload  func(ctx context.Context) error
	log     *slog.Logger
	node    string
	now     func() time.Time
	tls     *tls.Config
	mux     http.Handler
	ca      Issuer   // nil: no customer CA (WithCA)
	mailbox *mailbox // nil: no secure mailbox (WithMailbox)
	// revocations asks a customer certificate's CA before registering it; nil: no one (WithRevocations)
	revocations Revocations
	actions     ActionRecorder // nil: no evidence log
	crl         crlCache
	otp         OTPService // nil: no codes (WithOTP)
	obs         Observer
	otpMail     OTPMailer

	mu     sync.Mutex
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
	cancel context.CancelFunc
}

// Option configures a Server.
type Option func(*Server)

// ActionRecorder records what a call changed in the evidence log: who (the token), what (key
// registered, key removed, certificate issued, certificate revoked), on whom (the address) and
// the detail (fingerprint or serial).
type ActionRecorder interface {
	RecordAction(ctx context.Context, actor, action, subject, detail string) error
}

// WithActions records every call that changes a customer's keys or certificates with r (default:
// none; the audit log has them all the same).
func WithActions(r ActionRecorder) Option { return func(s *Server) { s.actions = r } }

// WithRevocations asks a customer certificate's CA (CRL, OCSP) whether it is revoked before the
// certificate is registered through PUT …/keys (default: no one is asked).
func WithRevocations(r Revocations) Option { return func(s *Server) { s.revocations = r } }

// WithLogger sets the structured logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithNode names this node in the audit log (default: the host name).
func WithNode(name string) Option { return func(s *Server) { s.node = name } }

// WithClock sets the clock for token expiry, key validity and the audit log (tests).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithDirectoryReload sets what runs after a call changed the recipient directory. The default
// loads it again for this server; serve passes a no-op, because the store's change feed reloads
// every node's directory (this one's included, through SetDirectory).
func WithDirectoryReload(f func(ctx context.Context) error) Option {
	return func(s *Server) { s.reload = f }
}

// New returns a Server for cfg (validated, its TLS files loaded), keeping its state in st. dir is
// the data directory (trusted roots, recipients/) and d its current recipient directory, which
// SetDirectory replaces. It does not listen; see Start.
func New(cfg Config, st Store, dir keys.DataDir, d *keys.Directory, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, st: st, dir: dir, now: time.Now}
	s.cur.Store(d)
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	if s.node == "" {
		s.node, _ = os.Hostname()
	}
	if s.reload == nil {
		s.reload = s.loadDirectory
	}
	if cfg.TLS.enabled() {
		tc, err := serverTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		s.tls = tc
	}
	s.mux = s.routes()
	return s, nil
}

// serverTLS loads the certificate and, for mutual TLS, the client CAs; a problem is a
// *config.FieldError at its key.
func serverTLS(c TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, &config.FieldError{Path: "tls", Problem: "certificate and key: " + err.Error(), Err: err}
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, &config.FieldError{Path: "tls.client_ca_file", Problem: err.Error(), Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &config.FieldError{Path: "tls.client_ca_file", Problem: c.ClientCAFile + " holds no PEM certificate"}
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// SetDirectory replaces the recipient directory (keys.DirectoryUser: the watcher calls it).
func (s *Server) SetDirectory(d *keys.Directory) {
	s.cur.Store(d)
	s.crl.invalidate() // a revocation on any node changes the directory
}

// loadDirectory reads the recipient directory again: the data directory's files and the store's.
func (s *Server) loadDirectory(ctx context.Context) error {
	d, err := s.dir.DirectoryFrom(ctx, storedKeys{s.st})
	if err != nil {
		return err
	}
	s.SetDirectory(d)
	return nil
}

// Handler is the API's HTTP handler (without the listener's TLS), for tests and fuzzing.
func (s *Server) Handler() http.Handler { return s.mux }

// Start binds the configured address and serves in the background until Close; it also deletes
// expired idempotent calls now and then.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	// The name may have resolved to something else than it looked like.
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && s.tls == nil && !tcp.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("api: %s is not loopback and the listener has no TLS", tcp)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	if s.srv != nil {
		s.mu.Unlock()
		cancel()
		ln.Close()
		return errors.New("api: server already started")
	}
	s.srv, s.ln, s.done, s.cancel = srv, ln, make(chan struct{}), cancel
	s.mu.Unlock()
	go s.expireLoop(ctx)
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api: listener stopped", "err", err)
		}
	}()
	s.log.Info("api listener serving", "addr", ln.Addr().String(), "tls", s.tls != nil, "mtls", s.cfg.TLS.ClientCAFile != "")
	return nil
}

// expireLoop deletes idempotent calls older than the TTL until ctx ends.
func (s *Server) expireLoop(ctx context.Context) {
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	for {
		s.ExpireIdempotent(ctx)
		if s.otp != nil {
			if _, err := s.otp.Expire(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("api: removing expired codes", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ExpireIdempotent deletes the idempotent calls older than the TTL (Start does it every few
// minutes); a replay after that runs the call again.
func (s *Server) ExpireIdempotent(ctx context.Context) {
	n, err := s.st.ExpireIdempotent(ctx, s.now().Add(-time.Duration(s.cfg.IdempotencyTTL)))
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("api: expiring idempotency keys", "err", err)
	case n > 0:
		s.log.Debug("api: idempotency keys expired", "count", n)
	}
}

// Addr is the address the server listens on (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close lets calls under way finish (for a few seconds) and stops the server.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done, cancel := s.srv, s.done, s.cancel
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	cancel()
	ctx, stop := context.WithTimeout(context.Background(), shutdownTimeout)
	defer stop()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = srv.Close()
	}
	<-done
	return err
}

// KeySource is the store's recipient directory as package keys reads it (keys.DataDir's
// DirectoryFrom and its Watcher): each key with its method and its tier.
func KeySource(st SharedDirectory) keys.KeySource { return storedKeys{st} }

type storedKeys struct{ st SharedDirectory }

// StoredKeys implements keys.KeySource.
func (s storedKeys) StoredKeys(ctx context.Context) ([]keys.StoredKey, error) {
	stored, err := s.st.RecipientKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]keys.StoredKey, len(stored))
	for i, k := range stored {
		out[i] = keys.StoredKey{Method: keysMethod(k.Method), Fingerprint: k.Fingerprint, Data: k.Data, Source: keys.SourceRegistered}
		if k.Source == store.SourceLearned {
			out[i].Source = keys.SourceLearned
		}
	}
	return out, nil
}

// keysMethod is package keys' name of the store's method m.
func keysMethod(m string) keys.Method {
	if m == store.MethodPGP {
		return keys.MethodPGP
	}
	return keys.MethodSMIME
}
