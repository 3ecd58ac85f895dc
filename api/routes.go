package api

import (
	"errors"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/sealpost/sealpost/store"
)

// route is one call of the API: the OpenAPI document lists exactly these, with exactly these statuses.
type route struct {
	Method  string
	Pattern string // a ServeMux path pattern; the OpenAPI path is the same
	Scope   string // the scope the token needs; "" for a call that needs no token
	// Body says the call reads a request body (bounded by max_body; an Idempotency-Key is honoured
	// on POST and PUT).
	Body     bool
	Statuses []int
	// Evidence names what a successful call changed, for the evidence log ("" for a call that
	// changes no customer's keys or certificates).
	Evidence string
	handle   func(s *Server, c *call) (response, error)
}

// Statuses every call that needs a token can answer with, beside its own.
var (
	tokenStatuses = []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusInternalServerError}
	bodyStatuses  = []int{http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity}
)

// routeTable lists every call the server answers.
func routeTable() []route {
	return []route{
		{Method: http.MethodGet, Pattern: "/v1/openapi.json", Statuses: []int{http.StatusOK}, handle: (*Server).openAPI},
		{Method: http.MethodPut, Pattern: "/v1/customers/{address}/keys", Scope: ScopeCustomers, Body: true, Evidence: "key registered",
			Statuses: statuses([]int{http.StatusCreated}, tokenStatuses, bodyStatuses), handle: (*Server).putKey},
		{Method: http.MethodGet, Pattern: "/v1/customers/{address}/keys", Scope: ScopeCustomers,
			Statuses: statuses([]int{http.StatusOK, http.StatusBadRequest}, tokenStatuses), handle: (*Server).getKeys},
		{Method: http.MethodDelete, Pattern: "/v1/customers/{address}/keys/{fingerprint}", Scope: ScopeCustomers, Evidence: "key removed",
			Statuses: statuses([]int{http.StatusNoContent, http.StatusBadRequest, http.StatusNotFound}, tokenStatuses), handle: (*Server).deleteKey},
		{Method: http.MethodPost, Pattern: "/v1/customers/{address}/certificates", Scope: ScopeCustomers, Body: true, Evidence: "certificate issued",
			Statuses: statuses([]int{http.StatusCreated, http.StatusNotImplemented}, tokenStatuses, bodyStatuses), handle: (*Server).postCertificate},
		{Method: http.MethodDelete, Pattern: "/v1/customers/{address}/certificates/{serial}", Scope: ScopeCustomers, Evidence: "certificate revoked",
			Statuses: statuses([]int{http.StatusNoContent, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusNotImplemented}, tokenStatuses), handle: (*Server).deleteCertificate},
		{Method: http.MethodGet, Pattern: "/v1/crl", Statuses: []int{http.StatusOK, http.StatusInternalServerError, http.StatusNotImplemented}, handle: (*Server).getCRL},
		{Method: http.MethodGet, Pattern: "/v1/customers/{address}/mailbox", Scope: ScopeMailbox,
			Statuses: statuses([]int{http.StatusOK, http.StatusBadRequest, http.StatusNotFound}, tokenStatuses), handle: (*Server).getMailbox},
		{Method: http.MethodGet, Pattern: "/v1/customers/{address}/mailbox/{id}", Scope: ScopeMailbox,
			Statuses: statuses([]int{http.StatusOK, http.StatusBadRequest, http.StatusNotFound}, tokenStatuses), handle: (*Server).getMailboxItem},
		{Method: http.MethodPost, Pattern: "/v1/otp", Scope: ScopeOTP, Body: true,
			Statuses: statuses([]int{http.StatusCreated, http.StatusNotFound, http.StatusTooManyRequests}, tokenStatuses, bodyStatuses), handle: (*Server).postOTP},
		{Method: http.MethodPost, Pattern: "/v1/otp/{id}/verify", Scope: ScopeOTP, Body: true,
			Statuses: statuses([]int{http.StatusOK, http.StatusNotFound}, tokenStatuses, bodyStatuses), handle: (*Server).postOTPVerify},
		{Method: http.MethodPost, Pattern: "/v1/call-verifications", Scope: ScopeOTP, Body: true,
			Statuses: statuses([]int{http.StatusCreated, http.StatusNotFound, http.StatusTooManyRequests}, tokenStatuses, bodyStatuses), handle: (*Server).postCall},
		{Method: http.MethodPost, Pattern: "/v1/call-verifications/{id}/customer-code", Scope: ScopeOTP, Body: true,
			Statuses: statuses([]int{http.StatusOK, http.StatusNotFound}, tokenStatuses, bodyStatuses), handle: (*Server).postCallCustomerCode},
		{Method: http.MethodPost, Pattern: "/v1/customers/{address}/mailbox/{id}/read", Scope: ScopeMailbox,
			Statuses: statuses([]int{http.StatusNoContent, http.StatusBadRequest, http.StatusNotFound}, tokenStatuses), handle: (*Server).postMailboxRead},
	}
}

// statuses is the sorted union of lists.
func statuses(lists ...[]int) []int {
	var out []int
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// routes builds the mux: every route, then for each path a catch-all for other methods (405) and
// one for unknown paths (404), so that every answer is a problem document and audited. A path that
// is not clean (an empty segment, "." or "..") is an unknown one: the mux would redirect it, and
// a client that follows a 307 posts its body again, to another resource.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	allow := map[string][]string{}
	var paths []string
	for _, rt := range routeTable() {
		mux.Handle(rt.Method+" "+rt.Pattern, s.serve(rt))
		if _, ok := allow[rt.Pattern]; !ok {
			paths = append(paths, rt.Pattern)
		}
		allow[rt.Pattern] = append(allow[rt.Pattern], rt.Method)
	}
	for _, p := range paths {
		methods := strings.Join(allow[p], ", ")
		mux.Handle(p, s.serve(route{Pattern: p, Statuses: []int{http.StatusMethodNotAllowed}, handle: func(*Server, *call) (response, error) {
			return response{}, &problemError{typ: ProblemMethodNotAllowed, detail: "this resource takes " + methods, allow: methods}
		}}))
	}
	unknown := s.serve(route{Pattern: "/", Statuses: []int{http.StatusNotFound}, handle: func(*Server, *call) (response, error) {
		return response{}, refuse(ProblemNotFound, "no such call: see /v1/openapi.json")
	}})
	mux.Handle("/", unknown)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "" || path.Clean(p) != p {
			unknown.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// response is a handler's answer, kept whole so that an idempotent call's answer can be stored.
type response struct {
	status      int
	contentType string
	body        []byte
	allow       string // the Allow header of a 405
	retryAfter  string // the Retry-After header of a 429
	// secret: the answer holds what is shown once (a PKCS#12 and its password), so it is not kept
	// for an Idempotency-Key replay: a retry runs again.
	secret bool
}

// call is one request as the handlers see it.
type call struct {
	r      *http.Request
	token  store.APIToken // zero for a call that needs no token
	body   []byte         // the request body, read whole (Body routes only)
	target string         // the customer's address, for the audit log
	detail string         // a short note for the audit log: never secrets, bodies or codes
}

// failure turns a handler's error into its problem response; an error that is not a problem is
// internal, and its text goes to the log only.
func failure(err error) (response, *problemError) {
	var pe *problemError
	if !errors.As(err, &pe) {
		pe = &problemError{typ: ProblemInternal}
	}
	return response{status: pe.typ.Status, contentType: problemContentType, body: problemBody(pe), allow: pe.allow, retryAfter: pe.retryAfter}, pe
}
