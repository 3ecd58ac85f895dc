package evidence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A renewal timestamps a checkpoint again, with the TSA of the day, over the checkpoint's text,
// the bank's signature and the newest token over them (the checkpoint's own, or the renewal
// before): the idea of RFC 4998's archive timestamp chains. A token whose TSA certificate has
// since expired, or whose algorithm has aged, is then still shown to have existed while it was
// good — at the time of the renewal after it — and the records the checkpoint's tree covers with
// it. A renewal is its own line among the checkpoints, with the checkpoint's text, signature and
// chain and the new token.

// RenewalData is what a renewal token's imprint is over: cp's text, its signature and the token
// before (prev), concatenated — as a bundle's verify.sh concatenates the files with cat.
func RenewalData(cp Checkpoint, prev []byte) []byte {
	d := make([]byte, 0, len(cp.Text)+len(cp.Signature)+len(prev))
	d = append(d, cp.Text...)
	d = append(d, cp.Signature...)
	return append(d, prev...)
}

// ErrNothingToRenew: the log has no checkpoint yet.
var ErrNothingToRenew = errors.New("evidence: no checkpoint to renew yet")

// Renewal is a renewal made: the head it renews and the new token's time.
type Renewal struct {
	Head Head
	Time time.Time
}

// Renew timestamps the newest checkpoint again with the log's TSA (see RenewalData) and keeps
// the renewal after the checkpoints.
func (l *Log) Renew(ctx context.Context) (Renewal, error) {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	l.mu.Lock()
	cp, head, prev := l.lastCP, l.cpHead, l.lastTok
	l.mu.Unlock()
	if cp.Text == "" {
		return Renewal{}, ErrNothingToRenew
	}
	tok, err := l.ts.Timestamp(ctx, RenewalData(cp, prev))
	if err != nil {
		return Renewal{}, fmt.Errorf("%w: %w", ErrTSA, err)
	}
	r := Checkpoint{Text: cp.Text, Signature: cp.Signature, Token: tok.DER, Chain: cp.Chain, Frontier: cp.Frontier.Clone(),
		Renewal: true, TokenTime: tok.Time.UTC()}
	line, err := encodeCheckpoint(r)
	if err == nil {
		err = l.b.AppendCheckpoint(line)
	}
	if err != nil {
		return Renewal{}, fmt.Errorf("evidence: keep the renewal: %w", err)
	}
	l.mu.Lock()
	if l.lastCP.Text == cp.Text {
		l.lastTok = tok.DER
	}
	l.mu.Unlock()
	l.log.Info("evidence: checkpoint timestamped again", "size", head.Size, "checkpoint_time", head.Time, "token_time", tok.Time)
	return Renewal{Head: head, Time: tok.Time}, nil
}
