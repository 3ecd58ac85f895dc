package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sealpost/sealpost/config"
)

// DefaultAddr is where DefaultConfig's ops listener listens.
const DefaultAddr = "127.0.0.1:9925"

// Timeouts of the ops listener: its clients are a scraper, a load balancer's probe and the
// sealpost CLI, all of which send small requests and read small answers.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	readinessTimeout  = 5 * time.Second
	shutdownTimeout   = 5 * time.Second
)

// ErrNotLoopback reports an ops address that is not a loopback address while AllowRemote is off.
var ErrNotLoopback = errors.New("ops: listener address is not loopback")

// Config configures the ops listener (JSON, like the rest of sealpost's configuration).
type Config struct {
	// Enabled starts the listener with serve.
	Enabled bool `json:"enabled"`
	// Addr is host:port. It must be a loopback address unless AllowRemote.
	Addr string `json:"addr"`
	// AllowRemote permits a non-loopback Addr. Queue control needs the ops token, but the listener
	// speaks plain HTTP, so the token would cross the network in clear: only allow this behind
	// something that adds TLS.
	AllowRemote bool `json:"allow_remote"`
}

// DefaultConfig is the ops listener started with serve, on DefaultAddr.
func DefaultConfig() Config { return Config{Enabled: true, Addr: DefaultAddr} }

// Validate refuses an address that is not host:port, or not loopback unless AllowRemote; it
// changes nothing. Its problems are *config.FieldError named by their key (addr); one that is
// not loopback wraps ErrNotLoopback.
func (c Config) Validate() error {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return &config.FieldError{Path: "addr", Problem: fmt.Sprintf("%q is not host:port (e.g. %q)", c.Addr, DefaultAddr), Err: err}
	}
	if !c.AllowRemote && !loopbackHost(host) {
		return &config.FieldError{Path: "addr", Err: ErrNotLoopback,
			Problem: fmt.Sprintf("%q is not a loopback address (set allow_remote to listen on it)", c.Addr)}
	}
	return nil
}

// loopbackHost reports whether host names the loopback interface: "localhost" or a loopback IP.
// An empty host means every interface.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	host, _, _ = strings.Cut(host, "%") // an IPv6 zone
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Check reports whether one condition of readiness holds (nil: it does). It should honour ctx;
// one that does not is abandoned when the readiness timeout passes and counts as failed.
type Check func(ctx context.Context) error

type namedCheck struct {
	name  string
	check Check
}

// Server is the ops listener: /metrics, /healthz, /readyz and queue control (see the package doc).
type Server struct {
	cfg     Config
	metrics *Metrics
	spools  map[string]Spool
	checks  []namedCheck
	notices map[string]string
	token   *Token
	log     *slog.Logger
	handler http.Handler

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Option configures a Server.
type Option func(*Server)

// WithMetrics serves m on GET /metrics.
func WithMetrics(m *Metrics) Option { return func(s *Server) { s.metrics = m } }

// WithSpool offers queue control of sp under name ("outbound", "desk"); the first spool given is
// the default of ?queue=.
func WithSpool(name string, sp Spool) Option {
	return func(s *Server) {
		if s.spools == nil {
			s.spools = map[string]Spool{}
		}
		s.spools[name] = sp
	}
}

// WithReadiness adds a check that GET /readyz runs; /readyz is 200 only when every check passes.
func WithReadiness(name string, c Check) Option {
	return func(s *Server) { s.checks = append(s.checks, namedCheck{name, c}) }
}

// WithNotice adds a fact /readyz reports in its body without affecting readiness, such as a gateway
// running on development identities.
func WithNotice(name, text string) Option {
	return func(s *Server) {
		if s.notices == nil {
			s.notices = map[string]string{}
		}
		s.notices[name] = text
	}
}

// WithLogger sets the structured logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithToken sets the credential every request but GET /metrics, /healthz and /readyz must present
// ("Authorization: Bearer SECRET"; see EnsureToken). Without it those requests are all refused.
func WithToken(t *Token) Option { return func(s *Server) { s.token = t } }

// NewServer returns a Server for cfg, which it validates. It does not listen; see Start.
func NewServer(cfg Config, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	mux := http.NewServeMux()
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics)
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	s.routeQueue(mux)
	// Queue control changes state on POST and DELETE: a web page the operator's browser shows
	// must not be able to send those (CSRF), nor read answers through a rebound DNS name.
	var h http.Handler = http.NewCrossOriginProtection().Handler(s.route(mux))
	if !cfg.AllowRemote {
		h = loopbackHostOnly(h)
	}
	s.handler = h
	return s, nil
}

// Start binds the configured address and serves in the background until Close.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("ops: %w", err)
	}
	// The name may have resolved to something else than it looked like.
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !s.cfg.AllowRemote && !tcp.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("%w: %s", ErrNotLoopback, tcp)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.srv != nil {
		s.mu.Unlock()
		ln.Close()
		return errors.New("ops: server already started")
	}
	s.srv, s.ln, s.done = srv, ln, make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("ops: listener stopped", "err", err)
		}
	}()
	s.log.Info("ops listener serving", "addr", ln.Addr().String())
	return nil
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

// Close lets requests under way finish (for a few seconds) and stops the server.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = srv.Close()
	}
	<-done
	return err
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readiness is the answer of GET /readyz.
type Readiness struct {
	Status string            `json:"status"` // "ready" or "not ready"
	Checks map[string]string `json:"checks"` // check name → "ok" or why it failed
	// Notices are facts an operator must know that do not make the gateway unready (WithNotice).
	Notices map[string]string `json:"notices,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
	defer cancel()
	results := make([]error, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		wg.Go(func() { results[i] = runCheck(ctx, c.check) })
	}
	wg.Wait()
	out := Readiness{Status: "ready", Checks: map[string]string{}, Notices: s.currentNotices()}
	code := http.StatusOK
	for i, c := range s.checks {
		out.Checks[c.name] = "ok"
		if err := results[i]; err != nil {
			out.Checks[c.name] = err.Error()
			out.Status, code = "not ready", http.StatusServiceUnavailable
		}
	}
	if code != http.StatusOK {
		s.log.Warn("ops: not ready", "checks", out.Checks)
	}
	writeJSON(w, code, out)
}

// currentNotices returns the notices given to NewServer and, for each spool with entries set
// aside as corrupt, how many there are and where.
func (s *Server) currentNotices() map[string]string {
	var out map[string]string
	add := func(k, v string) {
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	for k, v := range s.notices {
		add(k, v)
	}
	for _, name := range s.spoolNames() {
		sp := s.spools[name]
		n, err := sp.CorruptCount()
		switch {
		case err != nil:
			add("corrupt entries: "+name, fmt.Sprintf("cannot read %s: %v", sp.CorruptDir(), err))
		case n > 0:
			add("corrupt entries: "+name, fmt.Sprintf("%d %s failed %s checks and %s set aside in %s, neither delivered nor deleted: see sealpost queue list -corrupt -queue %s",
				n, plural(n, "entry", "entries"), plural(n, "its", "their"), plural(n, "is", "are"), sp.CorruptDir(), name))
		}
	}
	return out
}

func plural(n int, one, more string) string {
	if n == 1 {
		return one
	}
	return more
}

// runCheck runs c, giving up when ctx is done (a check stuck on a hung disk stays stuck, but
// readiness still answers).
func runCheck(ctx context.Context, c Check) error {
	res := make(chan error, 1)
	go func() { res <- c(ctx) }()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer: %w", ctx.Err())
	}
}

// errorBody is every error answer.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) { writeBody(w, code, "application/json", v) }

// writeBody writes v as indented JSON of the given media type, never cached or sniffed.
func writeBody(w http.ResponseWriter, code int, mediaType string, v any) {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

// openPatterns are the routes that need no token: what a scraper and a load balancer's probe call.
var openPatterns = map[string]bool{"GET /metrics": true, "GET /healthz": true, "GET /readyz": true}

// route serves mux, answering what it has no route for (404, 405 with its Allow header) in JSON
// too, and requiring the token for every route but the open ones: one added later is protected
// without anyone having to remember it.
func (s *Server) route(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern == "" {
			rec := &headerRecorder{header: http.Header{}, code: http.StatusOK}
			mux.ServeHTTP(rec, r)
			for _, k := range []string{"Allow", "Location"} {
				if v := rec.header.Get(k); v != "" {
					w.Header().Set(k, v)
				}
			}
			writeError(w, rec.code, strings.ToLower(http.StatusText(rec.code)))
			return
		}
		if !openPatterns[pattern] && !s.authorized(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// authorized reports whether r carries the ops token; when it does not, it answers 401 with a
// problem body (RFC 9457) and logs the refusal, never what was presented.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, secret, _ := strings.Cut(auth, " ")
	var reason string
	switch {
	case s.token == nil || !s.token.set:
		reason = "no token configured"
	case auth == "":
		reason = "no credential"
	case !strings.EqualFold(scheme, "Bearer"):
		reason = "not a bearer token"
	case !s.token.matches(strings.TrimSpace(secret)):
		reason = "wrong token"
	default:
		return true
	}
	s.log.Warn("ops: refused a request without the ops token", "method", printable(r.Method), "path", printable(r.URL.Path),
		"remote", r.RemoteAddr, "reason", reason)
	detail := "queue control needs the ops token: send \"Authorization: Bearer\" with the content of the data directory's " + TokenFile
	if reason == "wrong token" {
		detail = "the ops token presented is not this listener's (it checks the data directory's " + TokenHashFile + ")"
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="sealpost ops"`)
	writeProblem(w, http.StatusUnauthorized, detail)
	return false
}

// problem is an RFC 9457 problem body; Error repeats Detail for clients that read every error
// answer's "error".
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Error  string `json:"error"`
}

func writeProblem(w http.ResponseWriter, code int, detail string) {
	writeBody(w, code, "application/problem+json", problem{Type: "about:blank", Title: http.StatusText(code), Status: code, Detail: detail, Error: detail})
}

// headerRecorder keeps the status and header of an answer and drops its body.
type headerRecorder struct {
	header http.Header
	code   int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(p []byte) (int, error) { return len(p), nil }
func (h *headerRecorder) WriteHeader(code int)        { h.code = code }

// loopbackHostOnly refuses requests whose Host is not a loopback name or address: a web page
// cannot reach a loopback listener through a DNS name it rebinds to 127.0.0.1.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if !loopbackHost(host) {
			writeError(w, http.StatusMisdirectedRequest, "the ops listener answers only requests addressed to a loopback host")
			return
		}
		next.ServeHTTP(w, r)
	})
}
