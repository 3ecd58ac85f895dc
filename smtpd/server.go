package smtpd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/sealpost/sealpost/gateway"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Close.
var ErrServerClosed = errors.New("smtpd: server closed")

// Server is an SMTP listener. Create it with New.
type Server struct {
	cfg     Config
	handler gateway.Handler
	log     *slog.Logger
	smtp    *smtp.Server
	limits  *connLimits
	allowed []netip.Prefix
	users   map[string][]byte
	// dummyHash is compared for unknown users, at the highest cost among Users, so that a
	// failed AUTH takes about as long whether or not the user exists.
	dummyHash []byte

	// ctx lives as long as the server: every pipeline call gets it, so Close cancels an in-flight
	// TSA, store or spool call instead of leaving it to run after shutdown.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners []net.Listener
}

// Option configures a Server at New.
type Option func(*options)

type options struct {
	log *slog.Logger
}

// WithLogger sets the structured logger (default, and with nil: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// New validates cfg and returns a server that hands sessions to h. An empty cfg.Domain is the
// host's name.
func New(cfg Config, h gateway.Handler, opts ...Option) (*Server, error) {
	if h == nil {
		return nil, errors.New("smtpd: New needs a gateway.Handler")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	log := o.log
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Domain == "" {
		cfg.Domain = hostname()
	}
	allowed, err := parseNetworks(cfg.AllowedNetworks)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		handler: h,
		log:     log,
		allowed: allowed,
		limits:  newConnLimits(&cfg),
		users:   make(map[string][]byte, len(cfg.Users)),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if len(cfg.Users) > 0 {
		cost := bcrypt.MinCost
		for u, h := range cfg.Users {
			s.users[u] = []byte(h)
			c, _ := bcrypt.Cost([]byte(h)) // checked by Validate
			cost = max(cost, c)
		}
		s.dummyHash, err = bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
		if err != nil {
			return nil, fmt.Errorf("smtpd: dummy bcrypt hash: %w", err)
		}
	}

	srv := smtp.NewServer(&backend{srv: s})
	srv.Addr = cfg.Addr
	srv.Domain = cfg.Domain
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.MaxLineLength = cfg.MaxLineLength
	srv.ReadTimeout = time.Duration(cfg.ReadTimeout)
	srv.WriteTimeout = time.Duration(cfg.WriteTimeout)
	srv.AllowInsecureAuth = false
	srv.ErrorLog = errorLog{log}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("smtpd: TLSCert/TLSKey: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	s.smtp = srv
	return s, nil
}

// Serve accepts connections on l until Close, and closes l when it returns. After Close it
// returns ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = l.Close()
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()

	err := s.smtp.Serve(&limitListener{Listener: l, srv: s})
	_ = l.Close()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	return err
}

// ListenAndServe listens on Config.Addr and serves until Close.
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("smtpd: listen: %w", err)
	}
	return s.Serve(l)
}

// Addr returns the address of the first listener being served, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.listeners) == 0 {
		return nil
	}
	return s.listeners[0].Addr()
}

// Close closes the listeners and every connection at once, and cancels the context of every
// pipeline call in progress: its TSA, store or spool call fails, nothing is queued, its session is
// closed when it returns, and its client gets no reply (the sending MTA retries).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	var errs []error
	for _, l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.mu.Unlock()
	if err := s.smtp.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// trusted reports whether ip may relay without AUTH.
func (s *Server) trusted(ip netip.Addr) bool {
	for _, p := range s.allowed {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// errorLog routes go-smtp's internal messages (accept errors, connection errors, panics it
// recovered itself) to slog. They carry addresses and errors, never message content.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) { e.print(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.print(fmt.Sprintln(v...)) }

func (e errorLog) print(msg string) {
	msg = strings.TrimSpace(msg)
	if strings.HasPrefix(msg, "panic") {
		e.log.Error("smtp: recovered panic in go-smtp", "detail", msg)
		return
	}
	e.log.Warn("smtp: go-smtp", "detail", msg)
}
