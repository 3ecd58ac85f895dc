package dkim

import (
	"context"
	"errors"
	"fmt"

	"github.com/sealpost/sealpost/queue"
)

// Spool wraps the outbound spool so that everything queued is DKIM-signed: Put signs m.Data, then
// passes the message on. Signing is the last step before the queue because protection rewrites the
// body; nothing may change the message after it.
type Spool struct {
	Next   queue.Writer
	Signer *Signer
}

// errNoSigner reports a Spool built without a Signer: failing beats queueing mail unsigned.
var errNoSigner = errors.New("dkim: spool has no signer")

// Put signs m.Data and queues a copy of m carrying the signed data; m itself is not modified. Mail
// from a domain without a key is queued unchanged. A signing failure is returned and nothing is
// queued (the gateway answers unknown errors with a temporary failure, 451).
func (s Spool) Put(ctx context.Context, m *queue.Message) (string, error) {
	if s.Signer == nil {
		return "", errNoSigner
	}
	if m == nil {
		return "", fmt.Errorf("dkim: %w: nil message", queue.ErrInvalidMessage)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	signed, err := s.Signer.Sign(m.Data)
	if err != nil {
		return "", err
	}
	c := *m
	c.Data = signed
	return s.Next.Put(ctx, &c)
}

// Delete removes a queued message from the wrapped spool.
func (s Spool) Delete(id string) error { return s.Next.Delete(id) }
