package outbound

import (
	"context"
	"strings"

	"github.com/sealpost/sealpost/gateway"
)

// submitter is how sealpost's own services (the OTP service, call verification) appear to the
// pipeline: an authenticated, trusted client, so a message they write may carry Sealpost-Class.
var submitter = gateway.Client{Helo: "sealpost", User: "sealpost", Authenticated: true, Trusted: true}

// Submit runs one message that sealpost itself wrote through the pipeline, exactly as a bank
// MTA's would go: classified, protected (signed, timestamped, encrypted), queued in its class's
// lane. It returns the queue IDs, or the first refusal as a *gateway.Error (a recipient without a
// usable key is gateway.ErrNoKey: nothing is sent, never in clear).
func (g *Pipeline) Submit(ctx context.Context, from string, to []string, msg []byte) ([]string, error) {
	sess, err := g.NewSession(submitter)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if err := sess.Mail(ctx, from, int64(len(msg))); err != nil {
		return nil, err
	}
	for _, r := range to {
		if err := sess.Rcpt(ctx, r); err != nil {
			return nil, err
		}
	}
	ids, err := sess.Data(ctx, msg)
	if err != nil {
		return nil, err
	}
	return strings.Split(ids, ","), nil
}
