package evidence

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/store"
)

// Kind says what a record is about.
type Kind string

const (
	KindOutbound Kind = "outbound" // a protected message accepted for delivery (before its 250)
	KindDelivery Kind = "delivery" // one recipient's delivery attempt: delivered, deferred or bounced
	KindInbound  Kind = "inbound"  // a customer's reply and its verdict
	KindAction   Kind = "action"   // an operator's or the API's action on held mail, keys or certificates
)

// Record is one entry of the log. Seq, Prev and Node are set by the Log; exactly one of the
// kind's parts is set.
type Record struct {
	Seq  uint64    `json:"seq"`
	Prev string    `json:"prev"` // hex SHA-256 leaf hash of record Seq-1; 64 zeros for the first
	Time time.Time `json:"time"`
	Node string    `json:"node"`
	Kind Kind      `json:"kind"`

	Outbound *Outbound `json:"outbound,omitempty"`
	Delivery *Delivery `json:"delivery,omitempty"`
	Inbound  *Inbound  `json:"inbound,omitempty"`
	Action   *Action   `json:"action,omitempty"`
}

// Outbound is a protected message as it was queued: the digest of the exact bytes sent, of the
// signature value, and the timestamp token's particulars.
type Outbound struct {
	QueueID         string    `json:"queue_id"`
	Class           string    `json:"class"`
	From            string    `json:"from"`
	To              []string  `json:"to"`
	Method          string    `json:"method"` // smime, pgp, signed
	SentSHA256      string    `json:"sent_sha256"`
	SignatureSHA256 string    `json:"signature_sha256,omitempty"`
	TokenTime       time.Time `json:"token_time,omitzero"`
	TokenSerial     string    `json:"token_serial,omitempty"`
	TSA             string    `json:"tsa,omitempty"`              // the TSA certificate's subject
	KeyFingerprints []string  `json:"key_fingerprints,omitempty"` // of the recipients' keys, in To's order
	KeySources      []string  `json:"key_sources,omitempty"`
}

// Delivery is one recipient's delivery attempt.
type Delivery struct {
	QueueID   string `json:"queue_id"`
	Recipient string `json:"recipient"`
	Outcome   string `json:"outcome"` // delivered, deferred, bounced, deleted (by an operator), not-queued
	NextHop   string `json:"next_hop,omitempty"`
	Code      int    `json:"code,omitempty"`
	Reply     string `json:"reply,omitempty"` // the next hop's reply text (or why it could not be reached)
}

// Inbound is a customer's reply and its verdict.
type Inbound struct {
	QueueID         string    `json:"queue_id,omitempty"` // the desk's queue ID, or the held message's ID
	From            string    `json:"from"`
	Verdict         string    `json:"verdict"`
	Reason          string    `json:"reason,omitempty"` // the failure codes, for a failed verdict
	Signer          string    `json:"signer_fingerprint,omitempty"`
	SignatureSHA256 string    `json:"signature_sha256,omitempty"` // of the signature value
	MessageSHA256   string    `json:"message_sha256"`             // of the bytes received
	TokenTime       time.Time `json:"token_time,omitzero"`
	Received        time.Time `json:"received"`
	Thread          string    `json:"thread,omitempty"`
	Action          string    `json:"action"` // deliver (to the desk) or quarantine
}

// Action is what an operator or an API caller did: released or deleted held mail, registered,
// issued or revoked a customer's key or certificate.
type Action struct {
	Actor   string `json:"actor"`
	Action  string `json:"action"`
	Subject string `json:"subject"` // the held message's id, the customer's address
	Reason  string `json:"reason,omitempty"`
	Detail  string `json:"detail,omitempty"` // e.g. the fingerprint or serial
}

var zeroPrev = hex.EncodeToString(make([]byte, 32))

// encode is r's bytes in the log: one line of JSON (no newline), the leaf the tree hashes.
func encode(r *Record) ([]byte, error) {
	r.Time = r.Time.UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(b, '\n') >= 0 {
		return nil, errors.New("evidence: a record encodes with a newline") // json.Marshal escapes them
	}
	return b, nil
}

// ErrMalformed: a line of the log is not a record.
var ErrMalformed = errors.New("evidence: not a record")

// Decode reads one record line, strictly: unknown fields, a second value or a kind without its
// part are refused.
func Decode(line []byte) (*Record, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: more than one value", ErrMalformed)
	}
	parts := 0
	for _, set := range []bool{r.Outbound != nil, r.Delivery != nil, r.Inbound != nil, r.Action != nil} {
		if set {
			parts++
		}
	}
	want := map[Kind]bool{KindOutbound: r.Outbound != nil, KindDelivery: r.Delivery != nil, KindInbound: r.Inbound != nil, KindAction: r.Action != nil}
	if ok, known := want[r.Kind]; !known || !ok || parts != 1 {
		return nil, fmt.Errorf("%w: kind %q with %d parts", ErrMalformed, r.Kind, parts)
	}
	if len(r.Prev) != 64 {
		return nil, fmt.Errorf("%w: prev is not a SHA-256", ErrMalformed)
	}
	if _, err := hex.DecodeString(r.Prev); err != nil {
		return nil, fmt.Errorf("%w: prev is not hex", ErrMalformed)
	}
	return &r, nil
}

// Addresses are the customers a record is about (find -to).
func (r *Record) Addresses() []string {
	switch {
	case r.Outbound != nil:
		return r.Outbound.To
	case r.Delivery != nil:
		return []string{r.Delivery.Recipient}
	case r.Inbound != nil:
		return []string{r.Inbound.From}
	case r.Action != nil:
		return []string{r.Action.Subject}
	}
	return nil
}

// QueueID is the queue ID the record is about ("" for an action).
func (r *Record) QueueID() string {
	switch {
	case r.Outbound != nil:
		return r.Outbound.QueueID
	case r.Delivery != nil:
		return r.Delivery.QueueID
	case r.Inbound != nil:
		return r.Inbound.QueueID
	}
	return ""
}

// HeldDecision is the record of an operator's decision on held message h — action "release" or
// "delete" (recorded as held-released, held-deleted) — by who, why and when, encoded as a store's
// evidence outbox keeps it until the gateway appends it (store.Decision.Evidence).
func HeldDecision(action string, h store.Held, by, why string, at time.Time) ([]byte, error) {
	name := map[string]string{"release": "held-released", "delete": "held-deleted"}[action]
	if name == "" {
		return nil, fmt.Errorf("evidence: no held decision %q", action)
	}
	return json.Marshal(&Record{Time: at.UTC(), Kind: KindAction, Action: &Action{Actor: by, Action: name, Subject: h.ID, Reason: why,
		Detail: fmt.Sprintf("from %s, held for %s, received %s", h.From, h.Reason, h.Received.UTC().Format(time.RFC3339))}})
}
