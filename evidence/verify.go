package evidence

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/tsa"
)

// Trust is what a verifier trusts: the roots the bank's signer certificate chains to, and the
// TSA's.
type Trust struct {
	Roots    *x509.CertPool
	TSARoots *x509.CertPool
	// Now is when the check is made, for telling which TSA certificates have expired (zero: now).
	Now time.Time
}

// Problem is what verification found wrong first: the record (by its expected seq) and where.
type Problem struct {
	Seq  uint64   // the first record that is not as it was appended
	At   Position // where in the log (empty for a missing tail)
	What string
}

func (p *Problem) Error() string {
	if p.At.Segment == "" {
		return fmt.Sprintf("record %d: %s", p.Seq, p.What)
	}
	return fmt.Sprintf("record %d (%s): %s", p.Seq, p.At, p.What)
}

// Report is what Verify checked.
type Report struct {
	Records     uint64    // records read and chained
	From        uint64    // the first record kept (after pruned segments)
	Checkpoints int       // checkpoints whose signature, token and root matched
	Verified    uint64    // records covered by the newest verified checkpoint
	Newest      time.Time // the newest verified checkpoint's time
	Renewals    int       // renewal tokens verified
	Renewed     Head      // the newest renewed checkpoint's head (zero: none)
	RenewedAt   time.Time // its newest renewal's time
	// Expired counts the checkpoints whose newest token is from a TSA certificate that has
	// expired (as of Trust.Now); Unrenewed those of them that no renewal made before that expiry,
	// of them or of a later checkpoint, vouches for: renew before a TSA certificate ages out.
	Expired, Unrenewed int
	Problem            *Problem // the first problem; nil when the log is whole
}

// CheckCheckpoint verifies one checkpoint: its text, its signature by the certificate it carries
// (which must chain to trust.Roots), and its token (imprint over the text, from a TSA that chains
// to trust.TSARoots). It returns the head.
func CheckCheckpoint(cp Checkpoint, trust Trust) (Head, error) {
	if cp.Renewal {
		return Head{}, errors.New("a renewal: its token is checked with the token before it (RenewalData)")
	}
	h, _, err := checkCheckpoint(cp, trust, []byte(cp.Text))
	return h, err
}

// checkCheckpoint verifies cp's text, signature and chain, and its token over data.
func checkCheckpoint(cp Checkpoint, trust Trust, data []byte) (Head, *tsa.Token, error) {
	h, err := ParseHead(cp.Text)
	if err != nil {
		return Head{}, nil, err
	}
	if len(cp.Chain) == 0 {
		return Head{}, nil, errors.New("the checkpoint carries no signer certificate")
	}
	var chain []*x509.Certificate
	for _, der := range cp.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Head{}, nil, fmt.Errorf("signer certificate: %w", err)
		}
		chain = append(chain, c)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: trust.Roots, Intermediates: inter, CurrentTime: h.Time,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return Head{}, nil, fmt.Errorf("the signer's certificate was not trusted at %s: %w", h.Time.Format(time.RFC3339), err)
	}
	if err := checkSignature(cp.Text, cp.Signature, chain[0]); err != nil {
		return Head{}, nil, fmt.Errorf("signature: %w", err)
	}
	if len(cp.Token) == 0 {
		return Head{}, nil, errors.New("no timestamp token")
	}
	tok, err := tsa.Verify(cp.Token, data, trust.TSARoots)
	if err != nil {
		return Head{}, nil, fmt.Errorf("timestamp token: %w", err)
	}
	return h, tok, nil
}

// renewable is a checkpoint as far as its renewals go: its text and signature, its newest token.
type renewable struct {
	text       string
	sig, token []byte
	at         time.Time // the newest token's time
	size       uint64
	firstAt    time.Time // the first renewal's time (zero: none)
	notAfter   time.Time // when the newest token's TSA certificate expires
	broken     bool      // a renewal came after the token before it had expired
}

// expiredCheckpoint is a checkpoint whose own token's TSA certificate has expired.
type expiredCheckpoint struct {
	size    uint64
	expires time.Time
}

// tokenAges keeps what Report.Expired and Unrenewed need: the checkpoints whose own token's TSA
// certificate has expired, and the renewed ones.
type tokenAges struct {
	expired []expiredCheckpoint
	chains  []*renewable
}

func (a *tokenAges) checkpoint(size uint64, cp Checkpoint, tok *tsa.Token, now time.Time) *renewable {
	r := &renewable{text: cp.Text, sig: cp.Signature, token: cp.Token, at: tok.Time, size: size, notAfter: tok.Authority.NotAfter}
	if now.After(r.notAfter) {
		a.expired = append(a.expired, expiredCheckpoint{size, r.notAfter})
	}
	return r
}

func (a *tokenAges) renewed(r *renewable, tok *tsa.Token) {
	if !tok.Time.Before(r.notAfter) {
		r.broken = true // too late: the token before had expired
	}
	if r.firstAt.IsZero() {
		r.firstAt = tok.Time
		a.chains = append(a.chains, r)
	}
	r.token, r.at, r.notAfter = tok.DER, tok.Time, tok.Authority.NotAfter
}

// count gives the checkpoints whose own token has expired, and those of them that no unbroken
// renewal chain, of them or of a later checkpoint, first renewed before that expiry and whose
// newest token is good still.
func (a *tokenAges) count(now time.Time) (expired, unrenewed int) {
	for _, e := range a.expired {
		covered := false
		for _, r := range a.chains {
			if r.size >= e.size && !r.broken && r.firstAt.Before(e.expires) && now.Before(r.notAfter) {
				covered = true
				break
			}
		}
		if !covered {
			unrenewed++
		}
	}
	return len(a.expired), unrenewed
}

// chainFields reads the seq and prev a record line begins with, as encode writes them:
// {"seq":N,"prev":"HEX",...}. ok is false for any other shape.
func chainFields(line []byte) (seq uint64, prev []byte, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte(`{"seq":`))
	if !found {
		return 0, nil, false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		if i == 19 {
			return 0, nil, false
		}
		seq = seq*10 + uint64(rest[i]-'0')
		i++
	}
	if i == 0 || (i > 1 && rest[0] == '0') {
		return 0, nil, false
	}
	rest, found = bytes.CutPrefix(rest[i:], []byte(`,"prev":"`))
	if !found || len(rest) < 65 || rest[64] != '"' {
		return 0, nil, false
	}
	if _, err := hex.Decode(make([]byte, 32), rest[:64]); err != nil {
		return 0, nil, false
	}
	if !bytes.HasSuffix(rest, []byte("}")) {
		return 0, nil, false
	}
	return seq, rest[:64], true
}

// Verify reads the whole log of b and checks every record's place in the chain, every
// checkpoint's signature, token and tree head, and that no record a checkpoint covers is
// missing. It names the first record that is not as appended; an error is a failure to read.
func Verify(b Backend, trust Trust) (Report, error) {
	var rep Report
	var heads []Head // verified checkpoints, in the order made
	var frontiers = map[uint64]Frontier{}
	now := trust.Now
	if now.IsZero() {
		now = time.Now()
	}
	var ages tokenAges
	var last *renewable // the newest checkpoint, which a renewal follows
	err := b.Checkpoints(func(line []byte) error {
		if rep.Problem != nil {
			return nil
		}
		n := len(heads) + rep.Renewals + 1
		fail := func(what string, cp Checkpoint) {
			rep.Problem = &Problem{Seq: 0, What: fmt.Sprintf("checkpoint %d: %s", n, what)}
			if h0, perr := ParseHead(cp.Text); perr == nil {
				rep.Problem.Seq = h0.Size
			}
		}
		cp, err := decodeCheckpoint(line)
		if err != nil {
			rep.Problem = &Problem{What: "a checkpoint is malformed: " + err.Error()}
			return nil
		}
		if cp.Renewal {
			if last == nil || cp.Text != last.text || !bytes.Equal(cp.Signature, last.sig) {
				fail("a renewal that does not follow the checkpoint it renews", cp)
				return nil
			}
			h, tok, err := checkCheckpoint(cp, trust, RenewalData(cp, last.token))
			switch {
			case err != nil:
				fail("renewal: "+err.Error(), cp)
			case tok.Time.Truncate(time.Second).Before(last.at.Truncate(time.Second)):
				fail("a renewal older than the token it renews", cp)
			case !cp.TokenTime.IsZero() && !cp.TokenTime.Equal(tok.Time):
				fail("a renewal whose token_time is not its token's", cp)
			}
			if rep.Problem != nil {
				return nil
			}
			ages.renewed(last, tok)
			rep.Renewals++
			rep.Renewed, rep.RenewedAt = h, tok.Time
			return nil
		}
		h, tok, err := checkCheckpoint(cp, trust, []byte(cp.Text))
		if err != nil {
			fail(err.Error(), cp)
			return nil
		}
		if n := len(heads); n > 0 && h.Size < heads[n-1].Size {
			rep.Problem = &Problem{Seq: h.Size, What: "checkpoints out of order"}
			return nil
		}
		heads = append(heads, h)
		frontiers[h.Size] = cp.Frontier
		last = ages.checkpoint(h.Size, cp, tok, now)
		return nil
	})
	rep.Expired, rep.Unrenewed = ages.count(now)
	if err != nil || rep.Problem != nil {
		return rep, err
	}
	segs, err := b.Segments()
	if err != nil {
		return rep, err
	}
	var f Frontier
	var prev Hash
	next := uint64(0)
	if len(segs) > 0 && segs[0].First > 0 {
		// Pruned: the chain goes on from the checkpoint made where the first kept segment begins.
		start := segs[0].First
		fr, ok := frontiers[start]
		var h Head
		for _, x := range heads {
			if x.Size == start {
				h = x
			}
		}
		if !ok || fr.Size != start || !fr.valid() || fr.Root() != h.Root {
			rep.Problem = &Problem{Seq: start, What: "the log begins after pruned segments, but no checkpoint at its first record gives the tree to go on from"}
			return rep, nil
		}
		f, prev, next, rep.From = fr.Clone(), h.Last, start, start
	}
	hi := 0 // the next checkpoint to meet
	for hi < len(heads) && heads[hi].Size < next {
		hi++
	}
	var prevPos Position
	var before Frontier    // the tree before the last record, to tell one changed record from a rewrite
	check := func() bool { // the checkpoints at the current size
		for hi < len(heads) && heads[hi].Size == f.Size {
			h := heads[hi]
			if f.Root() != h.Root || prev != h.Last {
				// Only the last record changed when putting the signed one in its place gives
				// the signed root.
				alt := before.Clone()
				alt.Append(h.Last)
				if f.Size > 0 && alt.Size == f.Size && alt.Root() == h.Root {
					rep.Problem = &Problem{Seq: f.Size - 1, At: prevPos,
						What: "changed: it is not the record the checkpoint signed at " + h.Time.Format(time.RFC3339) + " ends with"}
					return false
				}
				what := fmt.Sprintf("changed: the records do not match the checkpoint signed at %s (a record was changed and the chain after it rewritten)", h.Time.Format(time.RFC3339))
				seq := uint64(0)
				if hi > 0 {
					seq = heads[hi-1].Size
				}
				what += fmt.Sprintf("; the change is in records %d to %d", seq, h.Size-1)
				rep.Problem = &Problem{Seq: seq, What: what}
				return false
			}
			rep.Checkpoints++
			rep.Verified, rep.Newest = h.Size, h.Time
			hi++
		}
		return true
	}
	if !check() {
		return rep, nil
	}
	var stop = errors.New("stop")
	err = b.Scan(next, func(pos Position, first uint64, line []byte) error {
		// The chain needs a record's seq and prev only, which lead every line: read them without
		// decoding the rest (a line changed elsewhere breaks its successor's link all the same).
		seq, prevHex, ok := chainFields(line)
		var err error
		if !ok {
			var r *Record
			if r, err = Decode(line); err == nil {
				seq, prevHex = r.Seq, []byte(r.Prev)
			}
		}
		var want [64]byte
		hex.Encode(want[:], prev[:])
		switch {
		case err != nil:
			rep.Problem = &Problem{Seq: next, At: pos, What: "not a record (edited or damaged): " + err.Error()}
		case seq > next:
			rep.Problem = &Problem{Seq: next, At: pos, What: fmt.Sprintf("missing: record %d is here instead (removed, or moved)", seq)}
		case seq < next:
			rep.Problem = &Problem{Seq: seq, At: pos, What: fmt.Sprintf("out of place: it comes again after record %d (moved or copied)", next-1)}
		case string(prevHex) != string(want[:]):
			rep.Problem = &Problem{Seq: next - 1, At: prevPos, What: fmt.Sprintf("changed: record %d (%s) links to another record before it", next, pos)}
			if next == 0 {
				rep.Problem = &Problem{Seq: 0, At: pos, What: "changed: the first record links to a record before it"}
			}
		}
		if rep.Problem != nil {
			return stop
		}
		prev = LeafHash(line)
		if hi < len(heads) && heads[hi].Size == f.Size+1 {
			before = f.Clone()
		}
		f.Append(prev)
		prevPos = pos
		next++
		rep.Records++
		if !check() {
			return stop
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return rep, err
	}
	if rep.Problem == nil && hi < len(heads) {
		h := heads[len(heads)-1]
		rep.Problem = &Problem{Seq: next, What: fmt.Sprintf("missing: the log ends at record %d, but the checkpoint signed at %s covers %d records (truncated)", next, h.Time.Format(time.RFC3339), h.Size)}
	}
	return rep, nil
}
