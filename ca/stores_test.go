package ca_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/ca"
	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// stores are the shared stores the CA runs on: the embedded SQLite and PostgreSQL (a private
// server; skipped without PostgreSQL unless SEALPOST_INTEROP=require). Each open gives a fresh one.
var stores = []struct {
	name string
	open func(t testing.TB) ca.Store
}{
	{"sqlite", func(t testing.TB) ca.Store {
		t.Helper()
		s, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"postgres", func(t testing.TB) ca.Store {
		t.Helper()
		srv := pgtest.Start(t)
		cfg := store.DefaultPostgresConfig()
		cfg.DSN = srv.DSN(srv.NewDatabase(t))
		p, err := store.OpenPostgres(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}},
}

// sqlite is the store the tests that need one, and not both, run on.
func sqlite(t testing.TB) ca.Store { return stores[0].open(t) }
