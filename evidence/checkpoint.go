package evidence

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/tsa"
)

// MarshalText writes h in hex, as sha256sum prints it.
func (h Hash) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h[:])), nil }

// UnmarshalText reads a hex hash.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return errors.New("evidence: a hash is 64 hex digits")
	}
	_, err := hex.Decode(h[:], b)
	return err
}

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Head is a tree head: the log of node had size records, whose Merkle tree hash is root and the
// last of which hashes to last, at time.
type Head struct {
	Node string
	Size uint64
	Root Hash
	Last Hash // the leaf hash of record size-1 (zero for an empty log): where the chain continues
	Time time.Time
}

const headTitle = "sealpost evidence log checkpoint"

// Text is the head as it is signed and timestamped: plain lines a person and sed can read.
func (h Head) Text() string {
	return fmt.Sprintf("%s\nnode: %s\nsize: %d\nroot: %s\nlast: %s\ntime: %s\n",
		headTitle, h.Node, h.Size, h.Root, h.Last, h.Time.UTC().Format(time.RFC3339Nano))
}

// ParseHead reads a head's Text.
func ParseHead(text string) (Head, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 7 || lines[0] != headTitle || lines[6] != "" {
		return Head{}, errors.New("evidence: not a checkpoint text")
	}
	field := func(i int, name string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], name+": ")
		if !ok {
			return "", fmt.Errorf("evidence: checkpoint line %d is not %s", i+1, name)
		}
		return v, nil
	}
	var h Head
	var err error
	var v string
	if h.Node, err = field(1, "node"); err != nil {
		return Head{}, err
	}
	if v, err = field(2, "size"); err != nil {
		return Head{}, err
	}
	if h.Size, err = strconv.ParseUint(v, 10, 64); err != nil {
		return Head{}, fmt.Errorf("evidence: checkpoint size: %w", err)
	}
	for i, p := range map[int]*Hash{3: &h.Root, 4: &h.Last} {
		name := map[int]string{3: "root", 4: "last"}[i]
		if v, err = field(i, name); err != nil {
			return Head{}, err
		}
		if err := p.UnmarshalText([]byte(v)); err != nil {
			return Head{}, fmt.Errorf("evidence: checkpoint %s: %w", name, err)
		}
	}
	if v, err = field(5, "time"); err != nil {
		return Head{}, err
	}
	if h.Time, err = time.Parse(time.RFC3339Nano, v); err != nil {
		return Head{}, fmt.Errorf("evidence: checkpoint time: %w", err)
	}
	return h, nil
}

// Checkpoint is a signed, timestamped head as the log keeps it, with the frontier it was made
// from (unsigned, but it must give the signed root: verification can start there once the
// segments before it are pruned). A renewal (evidence renew) is a later token over the same
// text, kept as its own line naming the size it renews.
type Checkpoint struct {
	Text      string   `json:"text"`
	Signature []byte   `json:"signature"`       // over Text: RSA PKCS#1 v1.5 (or ECDSA) with SHA-256, by the bank's signer
	Token     []byte   `json:"token,omitempty"` // RFC 3161 TimeStampToken whose imprint is SHA-256(Text)
	Chain     [][]byte `json:"chain"`           // the signer's certificate and its issuers, DER: the signature checks against Chain[0]
	Frontier  Frontier `json:"frontier"`
	Renewal   bool     `json:"renewal,omitempty"` // a later token over an earlier checkpoint (evidence renew): see RenewalData
	// TokenTime is a renewal token's genTime, as Verify checks it (for a bundle's verify.sh).
	TokenTime time.Time `json:"token_time,omitempty"`
}

// sign makes the checkpoint of head h: the bank's signature over its text, then a token over it.
func sign(ctx context.Context, h Head, f Frontier, id *keys.Identity, ts tsa.Timestamper) (Checkpoint, error) {
	text := h.Text()
	digest := sha256.Sum256([]byte(text))
	sig, err := id.Signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("evidence: sign checkpoint: %w", err)
	}
	cp := Checkpoint{Text: text, Signature: sig, Frontier: f.Clone()}
	for _, c := range id.Chain {
		cp.Chain = append(cp.Chain, c.Raw)
	}
	tok, err := ts.Timestamp(ctx, []byte(text))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %w", ErrTSA, err)
	}
	cp.Token = tok.DER
	return cp, nil
}

// ErrTSA: the TSA gave no token; the checkpoint is tried again later (the mail never waits).
var ErrTSA = errors.New("evidence: no timestamp for the checkpoint")

// checkSignature verifies a checkpoint's signature with the bank's certificate.
func checkSignature(text string, sig []byte, cert *x509.Certificate) error {
	var alg x509.SignatureAlgorithm
	switch cert.PublicKey.(type) {
	case *rsa.PublicKey:
		alg = x509.SHA256WithRSA
	case *ecdsa.PublicKey:
		alg = x509.ECDSAWithSHA256
	default:
		return errors.New("evidence: the signer's key is neither RSA nor ECDSA")
	}
	return cert.CheckSignature(alg, []byte(text), sig)
}

func encodeCheckpoint(cp Checkpoint) ([]byte, error) { return json.Marshal(cp) }

func decodeCheckpoint(line []byte) (Checkpoint, error) {
	var cp Checkpoint
	err := json.Unmarshal(line, &cp)
	return cp, err
}
