package otp_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/otp"
	"github.com/sealpost/sealpost/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// A backend opens a fresh shared store, another handle on it (another node),
// and reads every byte it keeps of OTPs.
type backend struct {
	name string
	open func(t testing.TB) (st otp.Store, reopen func(testing.TB) otp.Store, dump func(testing.TB) []byte)
}

var backends = []backend{
	{"sqlite", func(t testing.TB) (otp.Store, func(testing.TB) otp.Store, func(testing.TB) []byte) {
		path := filepath.Join(t.TempDir(), "sealpost.db")
		reopen := func(t testing.TB) otp.Store {
			t.Helper()
			s, err := store.OpenSQLite(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		// The database and its write-ahead log, as a thief of the disk
		// would read them.
		dump := func(t testing.TB) []byte {
			var all []byte
			for _, suffix := range []string{"", "-wal", "-shm"} {
				b, err := os.ReadFile(path + suffix)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			return all
		}
		return reopen(t), reopen, dump
	}},
	{"postgres", func(t testing.TB) (otp.Store, func(testing.TB) otp.Store, func(testing.TB) []byte) {
		srv := pgtest.Start(t)
		cfg := store.DefaultPostgresConfig()
		cfg.DSN = srv.DSN(srv.NewDatabase(t))
		reopen := func(t testing.TB) otp.Store {
			t.Helper()
			p, err := store.OpenPostgres(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			return p
		}
		// Every column of the OTP tables, as the server sends them.
		dump := func(t testing.TB) []byte {
			ctx := context.Background()
			c, err := pgx.Connect(ctx, cfg.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			var all []byte
			for _, table := range []string{"otp_codes", "otp_rate"} {
				rows, err := c.Query(ctx, `SELECT * FROM `+table)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					all = append(all, bytes.Join(rows.RawValues(), []byte{0})...)
				}
				if rows.Err() != nil {
					t.Fatal(rows.Err())
				}
			}
			return all
		}
		return reopen(t), reopen, dump
	}},
}

// forEachStore runs test on a fresh store of each backend.
func forEachStore(t *testing.T, test func(t *testing.T, st otp.Store, reopen func(testing.TB) otp.Store, dump func(testing.TB) []byte)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st, reopen, dump := b.open(t)
			test(t, st, reopen, dump)
		})
	}
}

// clock is a settable time for the services of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_800_000_000, 0).UTC()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testKey is the server key of the tests' services.
var testKey = bytes.Repeat([]byte("k"), 32)

// Token IDs of two API clients.
const (
	tokenA = "tok_aaaaaaaaaaaaaaaa"
	tokenB = "tok_bbbbbbbbbbbbbbbb"
)

// newService returns a service of cfg on st reading c.
func newService(t testing.TB, cfg otp.Config, st otp.Store, c *clock) *otp.Service {
	t.Helper()
	s, err := otp.New(cfg, testKey, st, otp.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
