package console

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/store"
)

// Config is the console's listener and how it treats its users (cmd embeds it as "console").
type Config struct {
	// Enabled starts the listener with serve.
	Enabled bool `json:"enabled"`
	// Addr is host:port. Any address but loopback needs TLS: passwords and sessions must not
	// cross a network in clear.
	Addr string    `json:"addr"`
	TLS  TLSConfig `json:"tls"`
	// IdleTimeout ends a session unused this long; SessionLifetime ends one this long after
	// sign-in, however active.
	IdleTimeout     config.Duration `json:"idle_timeout"`
	SessionLifetime config.Duration `json:"session_lifetime"`
	// MaxFailures failed sign-ins in a row lock an account for Lockout.
	MaxFailures int             `json:"max_failures"`
	Lockout     config.Duration `json:"lockout"`
	// Issuer is the name authenticator apps show for the accounts' codes.
	Issuer string `json:"issuer"`
}

// TLSConfig is the listener's certificate.
type TLSConfig struct {
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// DefaultAddr is where DefaultConfig's console listens: loopback, so it needs no certificate.
const DefaultAddr = "127.0.0.1:9927"

// DefaultConfig is the console, off until enabled (it needs accounts: sealpost console user
// add): on loopback, sessions idle out after 15 minutes and end after 8 hours, 5 failed sign-ins
// lock an account for 15 minutes.
func DefaultConfig() Config {
	return Config{Addr: DefaultAddr, IdleTimeout: config.Duration(15 * time.Minute), SessionLifetime: config.Duration(8 * time.Hour),
		MaxFailures: 5, Lockout: config.Duration(15 * time.Minute), Issuer: "sealpost"}
}

// Validate checks the values and changes nothing; every problem is a *config.FieldError at its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	host, _, err := net.SplitHostPort(c.Addr)
	tlsOn := c.TLS.CertFile != "" || c.TLS.KeyFile != ""
	switch {
	case err != nil:
		bad("addr", "%q is not host:port (e.g. %q)", c.Addr, DefaultAddr)
	case !loopbackHost(host) && !tlsOn:
		bad("addr", "%q is not a loopback address: set tls.cert_file and tls.key_file (passwords and sessions must not cross the network in clear)", c.Addr)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "set both cert_file and key_file, or neither")
	}
	if d := time.Duration(c.IdleTimeout); d < time.Minute || d > 8*time.Hour {
		bad("idle_timeout", "%v is not between 1m and 8h (default 15m)", d)
	}
	if d := time.Duration(c.SessionLifetime); d < time.Duration(c.IdleTimeout) || d > 24*time.Hour {
		bad("session_lifetime", "%v is not between idle_timeout and 24h (default 8h)", d)
	}
	if c.MaxFailures < 1 || c.MaxFailures > 100 {
		bad("max_failures", "%d is not between 1 and 100 (default 5)", c.MaxFailures)
	}
	if d := time.Duration(c.Lockout); d < time.Minute || d > 24*time.Hour {
		bad("lockout", "%v is not between 1m and 24h (default 15m)", d)
	}
	if c.Issuer == "" || len(c.Issuer) > 64 || strings.ContainsAny(c.Issuer, ":\r\n") {
		bad("issuer", "%q: 1 to 64 characters, no colon", c.Issuer)
	}
	return errors.Join(errs...)
}

// loopbackHost reports whether host names the loopback interface.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Held is the quarantine as the console uses it.
type Held interface {
	List(ctx context.Context, includeReleased bool) ([]store.Held, error)
	Entry(ctx context.Context, id string) (store.Held, error)
	Release(ctx context.Context, id string, d store.Decision) error
	Delete(ctx context.Context, id string, d store.Decision) error
}

// Reader gives a held message as the desk would get it: decrypted, with its verdict computed
// again; nil bytes when it was released and delivered already.
type Reader func(ctx context.Context, h store.Held) (desk []byte, err error)

// Audit is where every action is recorded with the account's name.
type Audit interface {
	AppendAudit(ctx context.Context, r store.AuditRecord) (int64, error)
}

// Outbox queues an evidence record for this node's log (store's QueueEvidence, node "").
type Outbox interface {
	QueueEvidence(ctx context.Context, node string, line []byte) error
}

// Deps are what the console works on.
type Deps struct {
	Accounts Accounts
	Key      []byte // console.key: opens the accounts' TOTP secrets
	Held     Held
	Read     Reader
	Audit    Audit
	// Evidence: decisions queue their evidence record (the gateway keeps an evidence log), and
	// queue actions theirs in Outbox.
	Evidence bool
	Outbox   Outbox
	Node     string // this node, for the audit log
	// Customers looks customers up (nil: the customers page says it is not available).
	Customers Customers
	// Metrics reads the gateway's metrics for the operations page and its charts (nil: none).
	Metrics Metrics
	// Queues are the gateway's spools by name (outbound, desk), for operators.
	Queues map[string]Queue
	// Tokens lists the bank API's tokens for admins (nil: not shown).
	Tokens interface {
		APITokens(ctx context.Context) ([]store.APIToken, error)
	}
	Now func() time.Time
	Log *slog.Logger
}

// Server is the console's HTTP handler, and its listener once started.
type Server struct {
	cfg  Config
	d    Deps
	mux  *http.ServeMux
	page *template.Template

	idle, lifetime, lockout time.Duration
	hist                    *history
	stopHist                context.CancelFunc

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

//go:embed templates/*.html static/console.css
var files embed.FS

// maxForm bounds a form's body: a reason and a few fields.
const maxForm = 16 << 10

// perPage is how many held messages one page of the list shows.
const perPage = 50

// New makes the console's handler.
func New(cfg Config, d Deps) (*Server, error) {
	def := DefaultConfig()
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = def.IdleTimeout
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = def.SessionLifetime
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = def.MaxFailures
	}
	if cfg.Lockout <= 0 {
		cfg.Lockout = def.Lockout
	}
	if d.Accounts == nil || d.Held == nil || d.Read == nil || d.Audit == nil || len(d.Key) == 0 {
		return nil, errors.New("console: needs the accounts, the quarantine, its reader, the audit log and console.key")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	t, err := template.New("").Funcs(template.FuncMap{
		"age": func(now, t time.Time) string { return age(now.Sub(t)) },
		"utc": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") },
	}).ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, d: d, mux: http.NewServeMux(), page: t,
		idle: time.Duration(cfg.IdleTimeout), lifetime: time.Duration(cfg.SessionLifetime), lockout: time.Duration(cfg.Lockout),
		hist: &history{step: historyStep, keep: historyKeep}}
	css, _ := files.ReadFile("static/console.css")
	s.mux.HandleFunc("GET /static/console.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(css)
	})
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.signedIn(store.RoleAgent, s.logout))
	s.mux.HandleFunc("GET /{$}", s.signedIn(store.RoleAgent, func(w http.ResponseWriter, r *http.Request, _ *request) {
		http.Redirect(w, r, "/quarantine", http.StatusSeeOther)
	}))
	s.mux.HandleFunc("GET /quarantine", s.signedIn(store.RoleAgent, s.quarantineList))
	s.mux.HandleFunc("GET /quarantine/{id}", s.signedIn(store.RoleAgent, s.quarantineShow))
	s.mux.HandleFunc("POST /quarantine/{id}/{action}", s.signedIn(store.RoleAgent, s.quarantineDecide))
	s.mux.HandleFunc("GET /customers", s.signedIn(store.RoleAgent, s.customers))
	s.mux.HandleFunc("POST /customers/remove-key", s.signedIn(store.RoleOperator, s.removeKey))
	s.mux.HandleFunc("GET /operations", s.signedIn(store.RoleOperator, s.operations))
	s.mux.HandleFunc("GET /operations/queue/{name}", s.signedIn(store.RoleOperator, s.queueList))
	s.mux.HandleFunc("POST /operations/queue/{name}/{id}/{action}", s.signedIn(store.RoleOperator, s.queueAction))
	s.mux.HandleFunc("GET /accounts", s.signedIn(store.RoleAdmin, s.accounts))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.problem(w, r, nil, http.StatusNotFound, "Not found", "There is no such page.")
	})
	return s, nil
}

// ServeHTTP sets the headers every answer carries and hands r to its page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	s.mux.ServeHTTP(w, r)
}

// Cookies: the session, and the sign-in form's CSRF token (before there is a session).
const (
	sessionCookie = "sealpost_console"
	loginCookie   = "sealpost_console_login"
)

// request is a signed-in request: its account and session.
type request struct {
	account store.ConsoleAccount
	cookie  string // the session cookie's value
	csrf    string
}

// view is what every page template gets.
type view struct {
	Title   string
	Account *store.ConsoleAccount
	CSRF    string
	Now     time.Time
	Nav     []navItem
	Error   string
	Notice  string
	Data    any
}

type navItem struct {
	Href, Label string
	Current     bool
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, rq *request, status int, name, title string, data any, problem string) {
	v := view{Title: title, Now: s.d.Now(), Data: data, Error: problem}
	if rq != nil {
		v.Account, v.CSRF = &rq.account, rq.csrf
		for _, n := range []struct {
			href, label, role string
		}{{"/quarantine", "Quarantine", store.RoleAgent}, {"/customers", "Customers", store.RoleAgent}, {"/operations", "Operations", store.RoleOperator},
			{"/accounts", "Accounts", store.RoleAdmin}} {
			if roleRank(rq.account.Role) >= roleRank(n.role) {
				v.Nav = append(v.Nav, navItem{n.href, n.label, strings.HasPrefix(r.URL.Path, n.href)})
			}
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.page.ExecuteTemplate(w, name, v); err != nil {
		s.d.Log.Error("console: page", "page", name, "err", err.Error())
	}
}

// problem answers with a page saying what went wrong; nothing was changed.
func (s *Server) problem(w http.ResponseWriter, r *http.Request, rq *request, status int, title, detail string) {
	s.render(w, r, rq, status, "problem.html", title, nil, detail)
}

// signedIn lets r through to page when it carries a live session of an enabled account whose role
// is at least role; a POST must also carry the session's CSRF token.
func (s *Server) signedIn(role string, page func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var hash []byte
		c, err := r.Cookie(sessionCookie)
		if err == nil {
			hash = cookieHash(c.Value)
		}
		var sess store.ConsoleSession
		err = nil
		if hash != nil {
			sess, err = s.d.Accounts.ConsoleSession(r.Context(), hash, s.d.Now(), s.idle)
		}
		if hash == nil || err != nil {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				s.d.Log.Error("console: session", "err", err.Error())
				s.problem(w, r, nil, http.StatusServiceUnavailable, "Try again", "The console cannot read its sessions now.")
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?ended=1", http.StatusSeeOther)
				return
			}
			s.problem(w, r, nil, http.StatusUnauthorized, "Signed out", "Your session has ended (or never began). Sign in again; nothing was changed.")
			return
		}
		a, err := s.d.Accounts.ConsoleAccount(r.Context(), sess.Account)
		if err != nil || !a.Disabled.IsZero() {
			s.problem(w, r, nil, http.StatusUnauthorized, "Signed out", "This account can no longer sign in.")
			return
		}
		rq := &request{account: a, cookie: c.Value, csrf: csrfToken(c.Value)}
		if roleRank(a.Role) < roleRank(role) {
			s.audit(r.Context(), a.Name, "console.forbidden", r.URL.Path, http.StatusForbidden, "")
			s.problem(w, r, rq, http.StatusForbidden, "Not for your role", fmt.Sprintf("This page is for the %s role and above; you are signed in as %s (%s).", role, a.Name, a.Role))
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				s.formProblem(w, r, rq, err)
				return
			}
			if !sameToken(r.PostForm.Get("csrf"), rq.csrf) {
				s.audit(r.Context(), a.Name, "console.csrf-refused", r.URL.Path, http.StatusForbidden, "")
				s.problem(w, r, rq, http.StatusForbidden, "Form refused", "The form did not carry this session's token (an old page, or a page from elsewhere). Nothing was changed; open the page again.")
				return
			}
		}
		page(w, r, rq)
	}
}

// formProblem answers a form that cannot be read: too large, or malformed.
func (s *Server) formProblem(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		s.problem(w, r, rq, http.StatusRequestEntityTooLarge, "Form too large", fmt.Sprintf("A form here is at most %d KiB. Nothing was changed.", maxForm>>10))
		return
	}
	s.problem(w, r, rq, http.StatusBadRequest, "Form not readable", "The form could not be read. Nothing was changed.")
}

func (s *Server) audit(ctx context.Context, name, action, target string, status int, detail string) {
	_, err := s.d.Audit.AppendAudit(context.WithoutCancel(ctx), store.AuditRecord{At: s.d.Now(), Actor: "console:" + name, Action: action,
		Target: cleanLine(target, 200), Status: status, Detail: cleanLine(detail, 500), Node: s.d.Node})
	if err != nil {
		s.d.Log.Error("console: audit", "action", action, "err", err.Error())
	}
}

type loginData struct{ Name string }

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	notice := ""
	if r.URL.Query().Get("ended") != "" {
		notice = "Your session has ended. Sign in again."
	}
	s.loginForm(w, r, http.StatusOK, "", notice, "")
}

// loginForm shows the sign-in form with a new sign-in CSRF token (double submit: cookie and field).
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, status int, name, notice, problem string) {
	tok, _, err := sessionSecret()
	if err != nil {
		s.problem(w, r, nil, http.StatusInternalServerError, "Try again", "The console cannot make a form now.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 600})
	v := view{Title: "Sign in", Now: s.d.Now(), CSRF: tok, Data: loginData{Name: name}, Error: problem, Notice: notice}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.page.ExecuteTemplate(w, "login.html", v); err != nil {
		s.d.Log.Error("console: page", "page", "login", "err", err.Error())
	}
}

// signInRefused is the one answer to every failed sign-in: which part was wrong is not said.
const signInRefused = "The name, password or code is wrong, or the account is locked after repeated failures or disabled."

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.formProblem(w, r, nil, err)
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.PostForm.Get("csrf"), c.Value) {
		s.loginForm(w, r, http.StatusForbidden, "", "", "The sign-in form had expired or came from elsewhere. Nothing was sent; try again.")
		return
	}
	name := strings.ToLower(strings.TrimSpace(r.PostForm.Get("name")))
	password, code := r.PostForm.Get("password"), strings.TrimSpace(r.PostForm.Get("code"))
	ctx, now := r.Context(), s.d.Now()
	a, err := s.d.Accounts.ConsoleAccount(ctx, name)
	if err != nil {
		VerifyPassword(dummyHash, password) // as long as a known name takes
		if !errors.Is(err, store.ErrNotFound) {
			s.d.Log.Error("console: sign-in", "err", err.Error())
		}
		s.loginForm(w, r, http.StatusUnauthorized, cleanLine(name, 64), "", signInRefused)
		return
	}
	okPassword := VerifyPassword(a.Password, password)
	why := ""
	var step int64
	switch {
	case !a.Disabled.IsZero():
		why = "disabled"
	case now.Before(a.LockedUntil):
		why = "locked"
	case !okPassword:
		why = "password"
	default:
		if step, err = checkCode(a.TOTP, a.Name, s.d.Key, code, now); err != nil {
			why = "code"
		} else if err = s.d.Accounts.ConsoleSignedIn(ctx, a.Name, step); err != nil {
			why = "code used before"
		}
	}
	if why != "" {
		locked := false
		if why == "password" || why == "code" || why == "code used before" {
			locked, _ = s.d.Accounts.ConsoleSignInFailed(ctx, a.Name, now, s.cfg.MaxFailures, s.lockout)
		}
		detail := "refused: " + why
		if locked {
			detail += fmt.Sprintf("; locked for %v after %d failures", s.lockout, s.cfg.MaxFailures)
		}
		s.audit(ctx, a.Name, "console.sign-in", "", http.StatusUnauthorized, detail)
		s.loginForm(w, r, http.StatusUnauthorized, a.Name, "", signInRefused)
		return
	}
	cookie, hash, err := sessionSecret()
	if err == nil {
		err = s.d.Accounts.PutConsoleSession(ctx, store.ConsoleSession{IDHash: hash, Account: a.Name, Created: now, Expires: now.Add(s.lifetime)})
	}
	if err != nil {
		s.d.Log.Error("console: session", "err", err.Error())
		s.problem(w, r, nil, http.StatusServiceUnavailable, "Try again", "The console cannot begin a session now.")
		return
	}
	s.audit(ctx, a.Name, "console.sign-in", "", http.StatusOK, "TOTP step "+formatStep(step))
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: cookie, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
		MaxAge: int(s.lifetime / time.Second)})
	http.Redirect(w, r, "/quarantine", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, rq *request) {
	if h := cookieHash(rq.cookie); h != nil {
		if err := s.d.Accounts.DeleteConsoleSession(r.Context(), h); err != nil {
			s.d.Log.Error("console: sign out", "err", err.Error())
		}
	}
	s.audit(r.Context(), rq.account.Name, "console.sign-out", "", http.StatusOK, "")
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type listData struct {
	Held []store.Held
	pages
}

// pages is where one page of a list stands: its number, the last, the total, the neighbours (0:
// none), and the slice of the list it shows.
type pages struct {
	Page, Last, Total, Prev, Next int
	from, to                      int
}

// pageNumber reads the ?page= of r (1 without one), answering with a page when it is no number
// from 1 on.
func (s *Server) pageNumber(w http.ResponseWriter, r *http.Request, rq *request) (int, bool) {
	p := r.URL.Query().Get("page")
	if p == "" {
		return 1, true
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 1<<20 {
		s.problem(w, r, rq, http.StatusBadRequest, "No such page", "The page number is not a number from 1 on.")
		return 0, false
	}
	return n, true
}

// paging places page in a list of total items, perPage a page, answering with a page when the
// list has fewer pages.
func (s *Server) paging(w http.ResponseWriter, r *http.Request, rq *request, page, total int) (pages, bool) {
	last := max(1, (total+perPage-1)/perPage)
	if page > last {
		s.problem(w, r, rq, http.StatusNotFound, "No such page", fmt.Sprintf("The list has %d pages.", last))
		return pages{}, false
	}
	p := pages{Page: page, Last: last, Total: total, from: (page - 1) * perPage, to: min(page*perPage, total)}
	if page > 1 {
		p.Prev = page - 1
	}
	if page < last {
		p.Next = page + 1
	}
	return p, true
}

func (s *Server) quarantineList(w http.ResponseWriter, r *http.Request, rq *request) {
	page, ok := s.pageNumber(w, r, rq)
	if !ok {
		return
	}
	all, err := s.d.Held.List(r.Context(), false)
	if err != nil {
		s.d.Log.Error("console: quarantine list", "err", err.Error())
		s.problem(w, r, rq, http.StatusServiceUnavailable, "Try again", "The quarantine cannot be read now.")
		return
	}
	// Newest first.
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	p, ok := s.paging(w, r, rq, page, len(all))
	if !ok {
		return
	}
	d := listData{Held: all[p.from:p.to], pages: p}
	for i := range d.Held {
		d.Held[i].From = cleanLine(d.Held[i].From, 200)
	}
	s.render(w, r, rq, http.StatusOK, "quarantine.html", "Quarantine", d, "")
}

type showData struct {
	Held    store.Held
	Message *shownMessage
	Gone    bool // released and delivered, or deleted: no bytes to show
	Problem string
}

// heldEntry reads the entry r names, answering with a page when there is none.
func (s *Server) heldEntry(w http.ResponseWriter, r *http.Request, rq *request) (store.Held, bool) {
	id := r.PathValue("id")
	h, err := s.d.Held.Entry(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound) || len(id) > 64:
		s.problem(w, r, rq, http.StatusNotFound, "Not in the quarantine", "No held message has this id.")
		return store.Held{}, false
	case err != nil:
		s.d.Log.Error("console: held entry", "err", err.Error())
		s.problem(w, r, rq, http.StatusServiceUnavailable, "Try again", "The quarantine cannot be read now.")
		return store.Held{}, false
	}
	h.From = cleanLine(h.From, 200)
	return h, true
}

func (s *Server) quarantineShow(w http.ResponseWriter, r *http.Request, rq *request) {
	h, ok := s.heldEntry(w, r, rq)
	if !ok {
		return
	}
	d := showData{Held: h, Gone: h.Deleted || h.Released}
	if !h.Deleted {
		desk, err := s.d.Read(r.Context(), h)
		switch {
		case err != nil:
			d.Problem = "The message cannot be shown: " + cleanLine(err.Error(), 300)
		case desk == nil:
			d.Gone = true
		default:
			m, err := showMessage(desk)
			if err != nil {
				d.Problem = cleanLine(err.Error(), 300)
			} else {
				d.Message = &m
			}
		}
	}
	s.audit(r.Context(), rq.account.Name, "console.held-read", h.ID, http.StatusOK, "")
	s.render(w, r, rq, http.StatusOK, "held.html", "Held message "+h.ID, d, "")
}

// maxReason bounds a decision's reason (the store's limit).
const maxReason = 2000

func (s *Server) quarantineDecide(w http.ResponseWriter, r *http.Request, rq *request) {
	action := r.PathValue("action")
	if action != "release" && action != "delete" {
		s.problem(w, r, rq, http.StatusNotFound, "Not found", "There is no such action.")
		return
	}
	h, ok := s.heldEntry(w, r, rq)
	if !ok {
		return
	}
	why := strings.Join(strings.Fields(r.PostForm.Get("reason")), " ")
	if why == "" || len([]rune(why)) > maxReason {
		s.problem(w, r, rq, http.StatusBadRequest, "A reason is required",
			fmt.Sprintf("A reason of 1 to %d characters is required to %s a held message. Nothing was changed.", maxReason, action))
		return
	}
	by := "console:" + rq.account.Name
	at := s.d.Now()
	d := store.Decision{By: by, Why: why, At: at}
	if s.d.Evidence {
		rec, err := evidence.HeldDecision(action, h, by, why, at)
		if err != nil {
			s.problem(w, r, rq, http.StatusInternalServerError, "Not done", "The evidence record could not be made. Nothing was changed.")
			return
		}
		d.Evidence = rec
	}
	var err error
	if action == "release" {
		err = s.d.Held.Release(r.Context(), h.ID, d)
	} else {
		err = s.d.Held.Delete(r.Context(), h.ID, d)
	}
	switch {
	case errors.Is(err, store.ErrConflict):
		cur, _ := s.d.Held.Entry(r.Context(), h.ID)
		state := map[bool]string{true: "released", false: "deleted"}[cur.Released]
		s.problem(w, r, rq, http.StatusConflict, "Decided already", fmt.Sprintf("This message was %s by %s already. Nothing was changed.", state, cleanLine(cur.DecidedBy, 200)))
		return
	case errors.Is(err, store.ErrInvalid):
		s.problem(w, r, rq, http.StatusBadRequest, "Not done", cleanLine(err.Error(), 300)+". Nothing was changed.")
		return
	case err != nil:
		s.d.Log.Error("console: decision", "action", action, "err", err.Error())
		s.problem(w, r, rq, http.StatusServiceUnavailable, "Try again", "The decision could not be stored now. Nothing was changed.")
		return
	}
	s.audit(r.Context(), rq.account.Name, "console.held-"+action, h.ID, http.StatusOK, why)
	http.Redirect(w, r, "/quarantine?done="+action, http.StatusSeeOther)
}

type accountsData struct {
	Accounts []store.ConsoleAccount
	Tokens   []store.APIToken
}

func (s *Server) accounts(w http.ResponseWriter, r *http.Request, rq *request) {
	list, err := s.d.Accounts.ConsoleAccounts(r.Context())
	var toks []store.APIToken
	if err == nil && s.d.Tokens != nil {
		toks, err = s.d.Tokens.APITokens(r.Context())
	}
	if err != nil {
		s.problem(w, r, rq, http.StatusServiceUnavailable, "Try again", "The accounts cannot be read now.")
		return
	}
	for i := range list {
		list[i].Password, list[i].TOTP = nil, nil
	}
	for i := range toks {
		toks[i].Hash, toks[i].Name = nil, cleanLine(toks[i].Name, 100)
	}
	s.render(w, r, rq, http.StatusOK, "accounts.html", "Accounts", accountsData{list, toks}, "")
}

// age is a duration as people say it: 5 min, 3 h, 2 d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "now"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	}
	return fmt.Sprintf("%d d", int(d/(24*time.Hour)))
}

// Start listens on the configured address (TLS when configured) and serves until Close.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	tlsOn := s.cfg.TLS.CertFile != ""
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tlsOn && !tcp.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("console: %s is not loopback and the listener has no TLS", tcp)
	}
	if tlsOn {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		if err != nil {
			ln.Close()
			return &config.FieldError{Path: "tls", Problem: "certificate and key: " + err.Error(), Err: err}
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10, ErrorLog: slog.NewLogLogger(s.d.Log.Handler(), slog.LevelWarn)}
	hctx, stopHist := context.WithCancel(context.Background())
	s.mu.Lock()
	s.srv, s.ln, s.done, s.stopHist = srv, ln, make(chan struct{}), stopHist
	done := s.done
	s.mu.Unlock()
	if s.d.Metrics != nil {
		go s.hist.run(hctx, s.d.Metrics, s.d.Now)
	}
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.d.Log.Error("console: listener", "err", err.Error())
		}
	}()
	s.d.Log.Info("console listener serving", "addr", ln.Addr().String(), "tls", tlsOn)
	return nil
}

// Addr is the listener's address (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close lets pages under way finish (for a few seconds) and stops the listener.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done, stopHist := s.srv, s.done, s.stopHist
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	stopHist()
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = srv.Close()
	}
	<-done
	return err
}
