package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/store"
)

// maxStoredResponse is the largest answer the store keeps for an idempotent call.
const maxStoredResponse = 1 << 20

// serve wraps a route: authentication and scope, the body limit, idempotency, the answer, and the
// audit record and log line that every call gets.
func (s *Server) serve(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{r: r}
		resp, replayed := s.run(w, rt, c)
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		if resp.contentType != "" {
			h.Set("Content-Type", resp.contentType)
		}
		if replayed {
			h.Set("Idempotent-Replayed", "true")
		}
		switch resp.status {
		case http.StatusUnauthorized:
			h.Set("WWW-Authenticate", `Bearer realm="sealpost"`)
		case http.StatusMethodNotAllowed:
			h.Set("Allow", resp.allow)
		case http.StatusTooManyRequests:
			h.Set("Retry-After", resp.retryAfter)
		}
		if len(resp.body) > 0 {
			h.Set("Content-Length", strconv.Itoa(len(resp.body)))
		}
		w.WriteHeader(resp.status)
		w.Write(resp.body)
		s.record(rt, c, resp.status, replayed)
	})
}

// run answers the call; replayed is true when the answer is a stored one.
func (s *Server) run(w http.ResponseWriter, rt route, c *call) (resp response, replayed bool) {
	ctx := c.r.Context()
	if rt.Scope != "" {
		t, err := authenticate(ctx, s.st, c.r.Header.Get("Authorization"), s.now())
		if err != nil {
			return s.fail(c, err), false
		}
		c.token = t
		if !slices.Contains(t.Scopes, rt.Scope) {
			return s.fail(c, refuse(ProblemForbidden, "this call needs a token with scope "+rt.Scope)), false
		}
	}
	if rt.Body {
		if err := s.readBody(w, c); err != nil {
			return s.fail(c, err), false
		}
	}
	key, ok := c.r.Header["Idempotency-Key"]
	if !ok || c.token.ID == "" || (c.r.Method != http.MethodPost && c.r.Method != http.MethodPut) {
		return s.handle(rt, c), false
	}
	return s.idempotent(rt, c, key)
}

// handle runs the route's handler, its error made a problem.
func (s *Server) handle(rt route, c *call) response {
	resp, err := rt.handle(s, c)
	if err != nil {
		return s.fail(c, err)
	}
	return resp
}

// fail is the problem answer of err, noted for the audit log; an internal error is logged (its
// text never reaches the caller).
func (s *Server) fail(c *call, err error) response {
	resp, pe := failure(err)
	c.detail = "problem " + pe.typ.Name
	if pe.typ == ProblemInternal {
		s.log.Error("api: internal error", "method", c.r.Method, "path", c.r.URL.EscapedPath(), "err", err)
	}
	return resp
}

// readBody reads the whole request body, at most max_body bytes.
func (s *Server) readBody(w http.ResponseWriter, c *call) error {
	tooLarge := refuse(ProblemBodyTooLarge, fmt.Sprintf("the body may be at most %d bytes", s.cfg.MaxBody))
	if c.r.ContentLength > s.cfg.MaxBody {
		return tooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, c.r.Body, s.cfg.MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge
	case err != nil:
		return fmt.Errorf("read body: %w", err)
	}
	c.body = b
	return nil
}

// validIdempotencyKey accepts 1..255 printable ASCII characters, as the store does.
func validIdempotencyKey(k []string) bool {
	if len(k) != 1 || len(k[0]) == 0 || len(k[0]) > 255 {
		return false
	}
	for i := 0; i < len(k[0]); i++ {
		if k[0][i] < 0x21 || k[0][i] > 0x7e {
			return false
		}
	}
	return true
}

// requestHash is what a replay must repeat: method, path and body.
func requestHash(r *http.Request, body []byte) []byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(r.Method), []byte(r.URL.EscapedPath()), body} {
		binary.Write(h, binary.BigEndian, uint64(len(part)))
		h.Write(part)
	}
	return h.Sum(nil)
}

// idempotent runs a call with an Idempotency-Key once per token and key: a replay with the same
// request gets the stored answer; with another request, or while the first still runs, a problem.
// An answer of 5xx is not kept, so that a retry runs the call again.
func (s *Server) idempotent(rt route, c *call, key []string) (response, bool) {
	if !validIdempotencyKey(key) {
		return s.fail(c, refuse(ProblemBadIdempotencyKey, "")), false
	}
	ctx := c.r.Context()
	hash := requestHash(c.r, c.body)
	stored, fresh, err := s.st.BeginIdempotent(ctx, store.IdempotentCall{TokenID: c.token.ID, Key: key[0], RequestHash: hash, Created: s.now()})
	switch {
	case err != nil:
		return s.fail(c, fmt.Errorf("begin idempotent call: %w", err)), false
	case !fresh && !bytes.Equal(stored.RequestHash, hash):
		return s.fail(c, refuse(ProblemIdempotencyKeyReused, "this key was sent with another method, path or body")), false
	case !fresh && stored.Status == 0:
		return s.fail(c, refuse(ProblemIdempotencyInProgress, "retry when the first request has been answered")), false
	case !fresh:
		c.detail = "replayed"
		return response{status: stored.Status, contentType: stored.ContentType, body: stored.Body}, true
	}
	resp := s.handle(rt, c)
	// The caller may be gone; what is stored must not depend on it.
	bg := context.WithoutCancel(ctx)
	if resp.status < 500 && len(resp.body) <= maxStoredResponse && !resp.secret {
		err := s.st.FinishIdempotent(bg, c.token.ID, key[0], resp.status, resp.contentType, resp.body)
		if err == nil {
			return resp, false
		}
		s.log.Error("api: storing the answer of an idempotent call", "err", err)
	}
	if err := s.st.AbandonIdempotent(bg, c.token.ID, key[0]); err != nil {
		s.log.Error("api: abandoning an idempotent call", "err", err)
	}
	return resp, false
}

// record writes the call's audit record and log line: who, what, on whom, with what result; never
// a secret, a body or a code.
func (s *Server) record(rt route, c *call, status int, replayed bool) {
	actor := "anonymous"
	if c.token.ID != "" {
		actor = "token:" + c.token.ID
	}
	action := c.r.Method + " " + rt.Pattern
	if len(action) > 200 {
		action = action[:200]
	}
	if !slices.Contains(rt.Statuses, status) {
		s.log.Error("api: answered with a status the OpenAPI document does not list", "route", action, "status", status)
	}
	rec := store.AuditRecord{At: s.now(), Actor: actor, Action: action, Target: c.target, Status: status, Detail: c.detail, Node: s.node}
	if _, err := s.st.AppendAudit(context.WithoutCancel(c.r.Context()), rec); err != nil {
		s.log.Error("api: audit record not written", "actor", actor, "route", action, "status", status, "err", err)
	}
	s.log.Info("api call", "actor", actor, "route", action, "status", status, "domain", address.Domain(c.target), "replayed", replayed)
	if s.actions != nil && rt.Evidence != "" && status < 300 && !replayed {
		who := actor
		if c.token.Name != "" {
			who += " (" + c.token.Name + ")"
		}
		if err := s.actions.RecordAction(context.WithoutCancel(c.r.Context()), who, rt.Evidence, c.target, c.detail); err != nil {
			s.log.Error("api: evidence record not written", "actor", actor, "route", action, "err", err)
		}
	}
}
