package store

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// contract is what both stores have: the contract tests use only this.
type contract interface {
	Register(ctx context.Context, r Registration) error
	Unregister(ctx context.Context, address, fingerprint string) error
	Registrations(ctx context.Context, address string) ([]Registration, error)
	NewThread(ctx context.Context, customer, method, fingerprint, subject string) (Thread, error)
	Thread(ctx context.Context, token string) (Thread, error)
	CustomerThreads(ctx context.Context, customer string, limit int) ([]Thread, error)
	ThreadForMessageIDs(ctx context.Context, ids []string) (Thread, error)
	AddMessage(ctx context.Context, m ThreadMessage) error
	Messages(ctx context.Context, token string) ([]ThreadMessage, error)
	Hold(ctx context.Context, h Held) error
	HeldList(ctx context.Context, includeReleased bool) ([]Held, error)
	HeldGet(ctx context.Context, id string) (Held, error)
	Release(ctx context.Context, id string, d Decision) error
	Delete(ctx context.Context, id string, d Decision) error
	EvidenceOutboxTake(ctx context.Context, node string, limit int, fn func(lines [][]byte) error) (int, error)
	QueueEvidence(ctx context.Context, node string, line []byte) error
	IndexEvidence(ctx context.Context, node string, next uint64, items []IndexedEvidence) error
	EvidenceIndexed(ctx context.Context, node string) (uint64, error)
	EvidenceAbout(ctx context.Context, addr string, limit int) ([]EvidenceEntry, error)
	PruneEvidenceIndex(ctx context.Context, node string, before uint64) error
	SetCapabilities(ctx context.Context, c Capabilities) error
	Capabilities(ctx context.Context, address string) (Capabilities, error)
	PutRecipientKey(ctx context.Context, k RecipientKey) error
	RecipientKey(ctx context.Context, method, fingerprint string) (RecipientKey, error)
	RecipientKeys(ctx context.Context) ([]RecipientKey, error)
	RemoveRecipientKey(ctx context.Context, method, fingerprint string) error
	PutDiscoveredKey(ctx context.Context, k DiscoveredKey) error
	DiscoveredKey(ctx context.Context, address string) (DiscoveredKey, error)
	DiscoveredKeys(ctx context.Context) ([]DiscoveredKey, error)
	RemoveDiscoveredKey(ctx context.Context, address string) error
	ChangeVersions(ctx context.Context) (map[string]int64, error)
	Watch(ctx context.Context, poll time.Duration, since map[string]int64, f func(topic string))
	ClaimReleased(ctx context.Context, owner string, lease time.Duration, limit int) ([]Held, error)
	MarkDelivered(ctx context.Context, id string) error

	PutConsoleAccount(ctx context.Context, a ConsoleAccount) error
	ConsoleAccount(ctx context.Context, name string) (ConsoleAccount, error)
	ConsoleAccounts(ctx context.Context) ([]ConsoleAccount, error)
	ResetConsoleAccount(ctx context.Context, name string, password, totp []byte, at time.Time) error
	DisableConsoleAccount(ctx context.Context, name string, at time.Time) error
	ConsoleSignInFailed(ctx context.Context, name string, at time.Time, max int, lockFor time.Duration) (bool, error)
	ConsoleSignedIn(ctx context.Context, name string, step int64) error
	PutConsoleSession(ctx context.Context, cs ConsoleSession) error
	ConsoleSession(ctx context.Context, idHash []byte, now time.Time, idle time.Duration) (ConsoleSession, error)
	DeleteConsoleSession(ctx context.Context, idHash []byte) error

	PutAPIToken(ctx context.Context, t APIToken) error
	APITokenByHash(ctx context.Context, hash []byte) (APIToken, error)
	APITokens(ctx context.Context) ([]APIToken, error)
	RevokeAPIToken(ctx context.Context, id string, at time.Time) error
	BeginIdempotent(ctx context.Context, c IdempotentCall) (stored IdempotentCall, fresh bool, err error)
	FinishIdempotent(ctx context.Context, tokenID, key string, status int, contentType string, body []byte) error
	AbandonIdempotent(ctx context.Context, tokenID, key string) error
	ExpireIdempotent(ctx context.Context, before time.Time) (int, error)
	AppendAudit(ctx context.Context, r AuditRecord) (int64, error)
	AuditLog(ctx context.Context, after int64, limit int) ([]AuditRecord, error)
	PutIssuedCert(ctx context.Context, c IssuedCert) error
	IssuedCert(ctx context.Context, serial string) (IssuedCert, error)
	IssuedCerts(ctx context.Context, address string) ([]IssuedCert, error)
	RevokeIssuedCert(ctx context.Context, serial string, at time.Time, reason int) error
	RevokedCerts(ctx context.Context) ([]IssuedCert, error)
	NextCRLNumber(ctx context.Context) (int64, error)
	PutMailboxItem(ctx context.Context, m MailboxItem) error
	MailboxItems(ctx context.Context, address string) ([]MailboxItem, error)
	MailboxItem(ctx context.Context, address, id string) (MailboxItem, error)
	MarkMailboxRead(ctx context.Context, address, id string, at time.Time) error
	ExpireMailbox(ctx context.Context, now time.Time) (int, error)
	MailboxCounts(ctx context.Context) (waiting, read int, err error)
	PutOTP(ctx context.Context, o OTP, limit int, since time.Time) (retryFrom time.Time, err error)
	UpdateOTP(ctx context.Context, id string, f func(o *OTP) (changed bool, err error)) (OTP, error)
	ExpireOTPs(ctx context.Context, before time.Time) (int, error)

	Close() error
}

var (
	_ contract = (*SQLite)(nil)
	_ contract = (*Postgres)(nil)
)

// A backend opens stores of one kind for the contract tests: open returns a
// store on fresh, empty storage, and a function that opens another handle on
// the same storage (another process of the node for SQLite, another node's
// pool for PostgreSQL), closed at the end of the test.
type backend struct {
	name string
	open func(t testing.TB) (contract, func(t testing.TB) contract)
}

var backends = []backend{
	{"sqlite", func(t testing.TB) (contract, func(testing.TB) contract) {
		s, path := openTemp(t)
		return s, func(t testing.TB) contract {
			t.Helper()
			s, err := OpenSQLite(path)
			if err != nil {
				t.Fatalf("OpenSQLite again: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}},
	{"postgres", func(t testing.TB) (contract, func(testing.TB) contract) {
		srv := pgtest.Start(t)
		cfg := DefaultPostgresConfig()
		cfg.DSN = srv.DSN(srv.NewDatabase(t))
		reopen := func(t testing.TB) contract { return openPostgres(t, cfg) }
		return reopen(t), reopen
	}},
}

// openPostgres opens the store of cfg, closed at the end of the test.
func openPostgres(t testing.TB, cfg PostgresConfig) *Postgres {
	t.Helper()
	p, err := OpenPostgres(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// forEachStore runs test as a subtest for each backend, with a fresh store
// and the backend's function to open another handle on it.
func forEachStore(t *testing.T, test func(t *testing.T, s contract, reopen func(testing.TB) contract)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, reopen := b.open(t)
			test(t, s, reopen)
		})
	}
}

// countRows counts the rows of table in either store.
func countRows(t *testing.T, s contract, table string) int {
	t.Helper()
	var n int
	var err error
	switch s := s.(type) {
	case *SQLite:
		err = s.db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n)
	case *Postgres:
		err = s.pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n)
	default:
		t.Fatalf("countRows: %T", s)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}
