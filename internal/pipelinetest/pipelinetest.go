package pipelinetest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/pgp"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/tsa"
)

// MemSpool records what a pipeline queues; FailAt makes the n-th Put fail (1-based).
type MemSpool struct {
	mu      sync.Mutex
	Msgs    map[string]*queue.Message
	n       int
	FailAt  int
	Deleted []string
	order   []string // IDs in the order put
}

// Nth is the n-th message put (1-based), or nil.
func (s *MemSpool) Nth(n int) *queue.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 1 || n > len(s.order) {
		return nil
	}
	return s.Msgs[s.order[n-1]]
}

// Put records m under its ID (the one the caller chose), else a fresh one (Q1, Q2…), or fails
// when it is the FailAt-th call.
func (s *MemSpool) Put(_ context.Context, m *queue.Message) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if s.n == s.FailAt {
		return "", errors.New("disk full")
	}
	if s.Msgs == nil {
		s.Msgs = map[string]*queue.Message{}
	}
	id := m.ID
	if id == "" {
		id = fmt.Sprintf("Q%d", s.n)
	}
	s.Msgs[id] = m
	s.order = append(s.order, id)
	return id, nil
}

// Delete forgets id and remembers that it was deleted.
func (s *MemSpool) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.Msgs, id)
	s.Deleted = append(s.Deleted, id)
	return nil
}

// Fixture is the bank the pipelines' tests run against.
type Fixture struct {
	Dir    keys.DataDir
	CA     *keys.Identity
	Alice  *keys.Identity  // S/MIME customer, alice@example.com
	Carol  *openpgp.Entity // OpenPGP customer, carol@example.org
	Bank   *openpgp.Entity // the bank's OpenPGP key
	Roots  *x509.CertPool  // the development CA
	SMIME  *smime.Protector
	PGP    *pgp.Protector
	Direct *keys.Directory // alice's certificate and carol's key
	Signer *keys.Identity  // the bank's S/MIME signer
	TSA    *tsa.Authority  // the embedded TSA both protectors use
}

var (
	once    sync.Once
	fix     *Fixture
	fixErr  error
	fixTemp string
)

// Get returns the shared fixture, making it on first use. Call Cleanup from TestMain.
func Get(t testing.TB) *Fixture {
	t.Helper()
	once.Do(func() {
		// Shared by every test, so not any one test's TempDir.
		if fixTemp, fixErr = os.MkdirTemp("", "sealpost-pipeline-"); fixErr == nil {
			fix, fixErr = newFixture(fixTemp)
		}
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

// Cleanup removes the fixture's files; TestMain calls it after m.Run.
func Cleanup() {
	if fixTemp != "" {
		os.RemoveAll(fixTemp)
	}
}

func newFixture(tmp string) (*Fixture, error) {
	f := &Fixture{Dir: keys.DataDir(tmp)}
	if err := f.Dir.Init([]string{"statements@bank.example", "otp@bank.example", "support@bank.example"}); err != nil {
		return nil, err
	}
	var err error
	if f.CA, err = f.Dir.Identity("ca"); err != nil {
		return nil, err
	}
	if f.Alice, err = f.CA.NewDevCustomer("alice@example.com"); err != nil {
		return nil, err
	}
	if _, err := f.Dir.Import(keys.EncodeCertificates(f.Alice.Certificate()), keys.ImportOptions{}); err != nil {
		return nil, err
	}
	if f.Carol, err = keys.NewDevPGPKey("Carol", []string{"carol@example.org"}); err != nil {
		return nil, err
	}
	pub, err := keys.EncodePGPPublicKeys(f.Carol)
	if err != nil {
		return nil, err
	}
	if _, err := f.Dir.Import(pub, keys.ImportOptions{}); err != nil {
		return nil, err
	}
	if f.Direct, err = f.Dir.Directory(); err != nil {
		return nil, err
	}
	if err := f.protectors(); err != nil {
		return nil, err
	}
	f.Roots = x509.NewCertPool()
	f.Roots.AddCert(f.CA.Certificate())
	return f, nil
}

// protectors makes the bank's S/MIME and OpenPGP protectors, timestamped by an embedded TSA.
func (f *Fixture) protectors() error {
	signer, err := f.Dir.Identity("signer")
	if err != nil {
		return err
	}
	tsaID, err := f.Dir.Identity("tsa")
	if err != nil {
		return err
	}
	authority, err := tsa.NewAuthority(tsaID.Signer, tsaID.Chain)
	if err != nil {
		return err
	}
	f.Signer, f.TSA = signer, authority
	// As serve does: every token is noted for the evidence log of the message it seals.
	sealing := evidence.SealingTimestamper{Timestamper: authority}
	if f.SMIME, err = smime.NewProtector(signer, smime.WithTimestamper(sealing)); err != nil {
		return err
	}
	if f.Bank, err = f.Dir.PGPKey(); err != nil {
		return err
	}
	f.PGP, err = pgp.NewProtector(f.Bank, pgp.WithTimestamper(sealing))
	return err
}

// Trusted is a submitter on a trusted network.
var Trusted = gateway.Client{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Trusted: true}

// Transaction runs MAIL, RCPT… and DATA through h and returns the queue ID or the first error.
func Transaction(t *testing.T, h gateway.Handler, c gateway.Client, from string, to []string, msg string) (string, error) {
	t.Helper()
	ctx := context.Background()
	s, err := h.NewSession(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Mail(ctx, from, 0); err != nil {
		return "", err
	}
	for _, r := range to {
		if err := s.Rcpt(ctx, r); err != nil {
			return "", err
		}
	}
	return s.Data(ctx, []byte(msg))
}

// Reply returns err as the *gateway.Error it must be, failing the test otherwise.
func Reply(t testing.TB, err error) *gateway.Error {
	t.Helper()
	var e *gateway.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *gateway.Error", err)
	}
	return e
}

// Puts is how many times Put was called, failed calls included.
func (s *MemSpool) Puts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Queued returns a copy of what is queued now, by queue ID.
func (s *MemSpool) Queued() map[string]*queue.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.Msgs)
}

// InspectSMIME and InspectPGP check sealpost's output from the customer's side through the
// verifier customers' mail goes through, its findings as one error (Inbound.Err).
func InspectSMIME(msg []byte, opts smime.InboundOptions) (*smime.Inbound, error) {
	in, err := smime.Inspect(msg, opts)
	if err != nil {
		return nil, err
	}
	return in, in.Err()
}

// InspectPGP is InspectSMIME for PGP/MIME.
func InspectPGP(msg []byte, opts pgp.InboundOptions) (*pgp.Inbound, error) {
	in, err := pgp.Inspect(msg, opts)
	if err != nil {
		return nil, err
	}
	return in, in.Err()
}
