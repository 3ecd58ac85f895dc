package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sealpost/sealpost/store"
)

// KeyRow is one of a customer's keys as the console shows it.
type KeyRow struct {
	Kind, Source, Fingerprint, State, Expires, Subject string
	Registered                                         bool
}

// MessageRow is one record of what was sent to a customer and what became of it.
type MessageRow struct {
	Time    time.Time
	QueueID string
	Kind    string // outbound, delivery, inbound, action
	What    string
}

// Customer is what the console shows of one customer.
type Customer struct {
	Address string
	Keys    []KeyRow
	// Threads are the customer's newest support threads, newest first.
	Threads []store.Thread
	// Messages are the newest records about the customer, newest first; From says where they
	// come from ("the evidence log"), "" when there is no such source.
	Messages []MessageRow
	From     string
	Note     string // what the staff should know of Messages (an index catching up), or ""
}

// Customers looks customers up and changes their keys (cmd implements it over the store, the
// recipient directory and the evidence log).
type Customers interface {
	// Customer returns what is known of address; an error wrapping store.ErrInvalid when address
	// is not an email address.
	Customer(ctx context.Context, address string) (Customer, error)
	// RemoveKey unregisters and removes the customer's key with fingerprint (hex, at least 16
	// digits), by who and why (audited, and recorded in the evidence log when there is one);
	// store.ErrNotFound when the customer has no such key.
	RemoveKey(ctx context.Context, address, fingerprint, by, why string) error
}

type customerData struct {
	Query    string
	Customer *Customer
	Operator bool
}

func (s *Server) customers(w http.ResponseWriter, r *http.Request, rq *request) {
	q := strings.TrimSpace(r.URL.Query().Get("address"))
	d := customerData{Query: cleanLine(q, 254), Operator: roleRank(rq.account.Role) >= roleRank(store.RoleOperator)}
	if q == "" {
		s.render(w, r, rq, http.StatusOK, "customers.html", "Customers", d, "")
		return
	}
	if s.d.Customers == nil {
		s.problem(w, r, rq, http.StatusNotFound, "Not available", "Customers cannot be looked up on this node.")
		return
	}
	c, err := s.d.Customers.Customer(r.Context(), q)
	switch {
	case errors.Is(err, store.ErrInvalid) || len(q) > 254:
		s.render(w, r, rq, http.StatusBadRequest, "customers.html", "Customers", d, "That is not an email address.")
		return
	case err != nil:
		s.d.Log.Error("console: customer", "err", err.Error())
		s.problem(w, r, rq, http.StatusServiceUnavailable, "Try again", "The customer cannot be looked up now.")
		return
	}
	for i := range c.Keys {
		c.Keys[i].Subject = cleanLine(c.Keys[i].Subject, 200)
	}
	for i := range c.Messages {
		c.Messages[i].What = cleanLine(c.Messages[i].What, 300)
	}
	for i := range c.Threads {
		c.Threads[i].Subject = cleanLine(c.Threads[i].Subject, 200)
	}
	d.Customer = &c
	s.audit(r.Context(), rq.account.Name, "console.customer-read", c.Address, http.StatusOK, "")
	s.render(w, r, rq, http.StatusOK, "customers.html", "Customer "+c.Address, d, "")
}

func (s *Server) removeKey(w http.ResponseWriter, r *http.Request, rq *request) {
	addr, fp := strings.TrimSpace(r.PostForm.Get("address")), strings.ToUpper(strings.TrimSpace(r.PostForm.Get("fingerprint")))
	why := strings.Join(strings.Fields(r.PostForm.Get("reason")), " ")
	switch {
	case s.d.Customers == nil:
		s.problem(w, r, rq, http.StatusNotFound, "Not available", "Customers cannot be changed on this node.")
		return
	case why == "" || len([]rune(why)) > maxReason:
		s.problem(w, r, rq, http.StatusBadRequest, "A reason is required", fmt.Sprintf("A reason of 1 to %d characters is required to remove a key. Nothing was changed.", maxReason))
		return
	case len(fp) < 16 || len(fp) > 128 || strings.Trim(fp, "0123456789ABCDEF") != "":
		s.problem(w, r, rq, http.StatusBadRequest, "Not a fingerprint", "The fingerprint is not hex digits. Nothing was changed.")
		return
	}
	err := s.d.Customers.RemoveKey(r.Context(), addr, fp, "console:"+rq.account.Name, why)
	switch {
	case errors.Is(err, store.ErrInvalid):
		s.problem(w, r, rq, http.StatusBadRequest, "Not an email address", "That is not an email address. Nothing was changed.")
		return
	case errors.Is(err, store.ErrNotFound):
		s.problem(w, r, rq, http.StatusNotFound, "No such key", "This customer has no key with that fingerprint. Nothing was changed.")
		return
	case err != nil:
		s.d.Log.Error("console: remove key", "err", err.Error())
		s.problem(w, r, rq, http.StatusServiceUnavailable, "Try again", "The key could not be removed now. Nothing was changed.")
		return
	}
	s.audit(r.Context(), rq.account.Name, "console.key-remove", cleanLine(addr, 254), http.StatusOK, fp+": "+why)
	http.Redirect(w, r, "/customers?address="+url.QueryEscape(addr), http.StatusSeeOther)
}
