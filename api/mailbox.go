package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sealpost/sealpost/outbound"
	"github.com/sealpost/sealpost/store"
)

// MailboxStore is the secure mailbox in the shared store, where keyless customers' messages wait.
type MailboxStore interface {
	// MailboxItems lists a customer's unexpired items, without their data.
	MailboxItems(ctx context.Context, address string) ([]store.MailboxItem, error)
	// MailboxItem returns one of the customer's items with its data; store.ErrNotFound also when
	// it is another customer's.
	MailboxItem(ctx context.Context, address, id string) (store.MailboxItem, error)
	// MarkMailboxRead records that online banking showed the item (the first time is kept).
	MarkMailboxRead(ctx context.Context, address, id string, at time.Time) error
}

// mailbox is how the server reads the secure mailbox: the store, the key its items are sealed
// under, and the roots the bank's signatures and timestamps are checked against.
type mailbox struct {
	st              MailboxStore
	key             []byte
	roots, tsaRoots *x509.CertPool
}

// WithMailbox serves online banking's mailbox calls: items of m, sealed under key
// (keys.DataDir.MailboxKey), each shown with its verification against roots (the bank's signer)
// and tsaRoots (its TSAs). Without it they answer 404.
func WithMailbox(m MailboxStore, key []byte, roots, tsaRoots *x509.CertPool) Option {
	return func(s *Server) { s.mailbox = &mailbox{st: m, key: key, roots: roots, tsaRoots: tsaRoots} }
}

// MailboxMessage is one waiting message as online banking lists it.
type MailboxMessage struct {
	ID       string    `json:"id"`
	Class    string    `json:"class"`
	Subject  string    `json:"subject"`
	Received time.Time `json:"received"`
	Expires  time.Time `json:"expires"`
	Size     int       `json:"size"`
	State    string    `json:"state"` // "waiting", or "read" once fetched and marked
}

// MailboxList is the answer of GET /v1/customers/{address}/mailbox.
type MailboxList struct {
	Address  string           `json:"address"`
	Messages []MailboxMessage `json:"messages"`
}

// MailboxFetch is the answer of GET …/mailbox/{id}: the message as signed and timestamped (its
// bytes exactly, base64 in JSON) and what it verifies to.
type MailboxFetch struct {
	MailboxMessage
	Message      []byte                       `json:"message"`
	Verification outbound.MailboxVerification `json:"verification"`
}

// open unseals an item and reads its Subject (decoded for display).
func (m *mailbox) open(it store.MailboxItem) (msg []byte, subject string, err error) {
	msg, err = outbound.OpenMailbox(m.key, it.ID, it.Data)
	if err != nil {
		return nil, "", fmt.Errorf("mailbox item %s: %w", it.ID, err)
	}
	return msg, outbound.MailboxSubject(msg), nil
}

// describeItem is an item as the API shows it.
func describeItem(it store.MailboxItem, subject string) MailboxMessage {
	state := "waiting"
	if !it.Read.IsZero() {
		state = "read"
	}
	return MailboxMessage{ID: it.ID, Class: it.Class, Subject: subject, Received: it.Received.UTC(), Expires: it.Expires.UTC(), Size: it.Size, State: state}
}

// mailboxOf is the customer in the path and the mailbox, or the problem why there is none.
func (s *Server) mailboxOf(c *call) (string, error) {
	addr, err := pathAddress(c)
	if err != nil {
		return "", err
	}
	if s.mailbox == nil {
		return "", refuse(ProblemNotFound, "this gateway keeps no secure mailbox")
	}
	return addr, nil
}

// getMailbox lists the messages waiting for the customer.
func (s *Server) getMailbox(c *call) (response, error) {
	addr, err := s.mailboxOf(c)
	if err != nil {
		return response{}, err
	}
	ctx := c.r.Context()
	items, err := s.mailbox.st.MailboxItems(ctx, addr)
	if err != nil {
		return response{}, fmt.Errorf("mailbox: %w", err)
	}
	out := MailboxList{Address: addr, Messages: []MailboxMessage{}}
	for _, it := range items {
		full, err := s.mailbox.st.MailboxItem(ctx, addr, it.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return response{}, fmt.Errorf("mailbox: %w", err)
		}
		_, subject, err := s.mailbox.open(full)
		if err != nil {
			return response{}, err
		}
		out.Messages = append(out.Messages, describeItem(full, subject))
	}
	c.detail = fmt.Sprintf("%d messages", len(out.Messages))
	return jsonResponse(http.StatusOK, out), nil
}

// getMailboxItem returns one message with its verification.
func (s *Server) getMailboxItem(c *call) (response, error) {
	addr, err := s.mailboxOf(c)
	if err != nil {
		return response{}, err
	}
	id, err := pathItem(c)
	if err != nil {
		return response{}, err
	}
	it, err := s.mailbox.st.MailboxItem(c.r.Context(), addr, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return response{}, refuse(ProblemNotFound, "the customer has no message with this id")
	}
	if err != nil {
		return response{}, fmt.Errorf("mailbox: %w", err)
	}
	msg, subject, err := s.mailbox.open(it)
	if err != nil {
		return response{}, err
	}
	c.detail = "fetched " + id
	return jsonResponse(http.StatusOK, MailboxFetch{MailboxMessage: describeItem(it, subject), Message: msg,
		Verification: outbound.VerifyMailboxMessage(msg, s.mailbox.roots, s.mailbox.tsaRoots)}), nil
}

// postMailboxRead marks a message read (online banking showed it to the customer).
func (s *Server) postMailboxRead(c *call) (response, error) {
	addr, err := s.mailboxOf(c)
	if err != nil {
		return response{}, err
	}
	id, err := pathItem(c)
	if err != nil {
		return response{}, err
	}
	err = s.mailbox.st.MarkMailboxRead(c.r.Context(), addr, id, s.now())
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return response{}, refuse(ProblemNotFound, "the customer has no message with this id")
	}
	if err != nil {
		return response{}, fmt.Errorf("mailbox: %w", err)
	}
	c.detail = "read " + id
	return response{status: http.StatusNoContent}, nil
}

// pathItem is the mailbox item's ID in the path: hostile input, at most 64 of [A-Za-z0-9_-].
func pathItem(c *call) (string, error) {
	id := c.r.PathValue("id")
	if id == "" || len(id) > 64 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
		return "", refuse(ProblemNotFound, "the customer has no message with this id")
	}
	return id, nil
}
