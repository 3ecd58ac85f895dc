package ops

import (
	"context"
	"time"

	"github.com/sealpost/sealpost/tsa"
)

// InstrumentTimestamper returns ts with its latency and failures counted in m: give the result to
// smime.WithTimestamper and pgp.WithTimestamper in place of ts. With a nil m it returns ts.
func InstrumentTimestamper(ts tsa.Timestamper, m *Metrics) tsa.Timestamper {
	if m == nil {
		return ts
	}
	return &timestamper{next: ts, m: m}
}

type timestamper struct {
	next tsa.Timestamper
	m    *Metrics
}

func (t *timestamper) Timestamp(ctx context.Context, message []byte) (*tsa.Token, error) {
	start := time.Now()
	tok, err := t.next.Timestamp(ctx, message)
	t.m.tsaSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		t.m.tsaErrors.Inc()
	}
	return tok, err
}
