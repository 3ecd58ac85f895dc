package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/sealpost/sealpost/tsa"
)

// Seal is what the evidence keeps of one signature: the SHA-256 of its value and its timestamp
// token's time, serial and TSA.
type Seal struct {
	SignatureSHA256 string
	TokenTime       time.Time
	TokenSerial     string
	TSA             string
}

type sealsKey struct{}

type sealBox struct {
	mu    sync.Mutex
	seals []Seal
}

// CollectSeals returns a context under which every token a SealingTimestamper obtains is noted,
// and the function that returns the seals noted so far. The protectors timestamp each signature
// value (S/MIME's SignerInfo signature, OpenPGP's signature packet value) with the context of the
// message they protect, so the seals are that message's.
func CollectSeals(ctx context.Context) (context.Context, func() []Seal) {
	box := &sealBox{}
	return context.WithValue(ctx, sealsKey{}, box), func() []Seal {
		box.mu.Lock()
		defer box.mu.Unlock()
		return append([]Seal(nil), box.seals...)
	}
}

// SealingTimestamper is a tsa.Timestamper that notes each token it obtains in the context's
// collector (CollectSeals), if any.
type SealingTimestamper struct{ tsa.Timestamper }

// Timestamp implements tsa.Timestamper.
func (s SealingTimestamper) Timestamp(ctx context.Context, message []byte) (*tsa.Token, error) {
	tok, err := s.Timestamper.Timestamp(ctx, message)
	if err != nil {
		return nil, err
	}
	if box, ok := ctx.Value(sealsKey{}).(*sealBox); ok {
		d := sha256.Sum256(message)
		seal := Seal{SignatureSHA256: hex.EncodeToString(d[:]), TokenTime: tok.Time.UTC()}
		if tok.Serial != nil {
			seal.TokenSerial = tok.Serial.Text(16)
		}
		if tok.Authority != nil {
			seal.TSA = tok.Authority.Subject.String()
		}
		box.mu.Lock()
		box.seals = append(box.seals, seal)
		box.mu.Unlock()
	}
	return tok, nil
}
