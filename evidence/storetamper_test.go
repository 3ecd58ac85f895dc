package evidence

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/store"
)

// TestTamperingFoundInTheStore: a chain kept in SQLite or PostgreSQL, edited with SQL by someone
// with access to the database — a record's line changed, a row deleted, two lines swapped, the
// newest rows deleted — is caught by Verify, which names the record.
func TestTamperingFoundInTheStore(t *testing.T) {
	type db struct {
		backend Backend
		exec    func(q string, args ...any)
	}
	kinds := []struct {
		name string
		open func(t *testing.T) db
	}{
		{"sqlite", func(t *testing.T) db {
			path := filepath.Join(t.TempDir(), "sealpost.db")
			st, err := store.OpenSQLite(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			b, err := OpenStoreBackend(st, "node-a")
			if err != nil {
				t.Fatal(err)
			}
			raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { raw.Close() })
			return db{b, func(q string, args ...any) {
				t.Helper()
				if _, err := raw.Exec(q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}}
		}},
		{"postgres", func(t *testing.T) db {
			srv := pgtest.Start(t)
			cfg := store.DefaultPostgresConfig()
			cfg.DSN = srv.DSN(srv.NewDatabase(t))
			p, err := store.OpenPostgres(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			b, err := OpenStoreBackend(p, "node-a")
			if err != nil {
				t.Fatal(err)
			}
			conn, err := pgx.Connect(context.Background(), cfg.DSN)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close(context.Background()) })
			return db{b, func(q string, args ...any) {
				t.Helper()
				if _, err := conn.Exec(context.Background(), q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}}
		}},
	}
	node := []byte("node-a")
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				tamper []string // SQL, $1 the node
				seq    uint64
				what   string
			}{
				{"EditOneByte", []string{`UPDATE evidence_records SET line = replace(line, 'c7@example.com', 'c7@example.org') WHERE node = $1 AND seq = 7`}, 7, "changed"},
				{"Delete", []string{`DELETE FROM evidence_records WHERE node = $1 AND seq = 5`}, 5, "missing"},
				{"Swap", []string{
					`UPDATE evidence_records SET seq = -1 WHERE node = $1 AND seq = 11`,
					`UPDATE evidence_records SET seq = 11 WHERE node = $1 AND seq = 12`,
					`UPDATE evidence_records SET seq = 12 WHERE node = $1 AND seq = -1`,
				}, 11, "missing"},
				{"Truncate", []string{`DELETE FROM evidence_records WHERE node = $1 AND seq >= 25`}, 25, "truncated"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					d := kind.open(t)
					l, err := Open(d.backend, "node-a", testBank(t).signer, testBank(t).tsa)
					if err != nil {
						t.Fatal(err)
					}
					fill(t, l, 30, 10)
					if rep, err := Verify(d.backend, testBank(t).trust); err != nil || rep.Problem != nil {
						t.Fatalf("before: %+v %v", rep, err)
					}
					for _, q := range tc.tamper {
						if kind.name == "postgres" {
							q = strings.ReplaceAll(q, "replace(line, 'c7@example.com', 'c7@example.org')",
								"convert_to(replace(convert_from(line, 'UTF8'), 'c7@example.com', 'c7@example.org'), 'UTF8')")
						} else {
							q = strings.ReplaceAll(q, "replace(line,", "CAST(replace(CAST(line AS TEXT),")
							q = strings.ReplaceAll(q, "'c7@example.org')", "'c7@example.org') AS BLOB)")
						}
						d.exec(q, node)
					}
					rep, err := Verify(d.backend, testBank(t).trust)
					if err != nil {
						t.Fatal(err)
					}
					if rep.Problem == nil || rep.Problem.Seq != tc.seq || !strings.Contains(rep.Problem.What, tc.what) {
						t.Fatalf("problem %v; want record %d %s", rep.Problem, tc.seq, tc.what)
					}
				})
			}
		})
	}
}
