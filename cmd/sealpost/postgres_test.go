package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/store"
)

// pgConfigFile writes a configuration on development identities, loopback ports and a fresh data
// directory whose store is PostgreSQL at dsn (written to a 0600 DSN file), and returns its path.
func pgConfigFile(t *testing.T, dsn string) string {
	t.Helper()
	dir := t.TempDir()
	dsnFile := filepath.Join(dir, "pg.dsn")
	if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"identities": "development",
		"data":       filepath.Join(dir, "data"),
		"smtp":       map[string]any{"addr": "127.0.0.1:0"},
		"inbound":    map[string]any{"listener": map[string]any{"addr": "127.0.0.1:0"}},
		"ops":        map[string]any{"addr": "127.0.0.1:0"},
		"api":        map[string]any{"addr": "127.0.0.1:0"},
		"store":      map[string]any{"postgres": map[string]any{"dsn_file": dsnFile}},
	}
	b, _ := json.Marshal(cfg)
	f := filepath.Join(dir, "sealpost.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestServePostgresUnreachableStopsAtStart: with PostgreSQL configured at a closed port, serve
// and serve -check stop within the connect timeout, naming store.postgres, and never print the
// password. No server is needed.
func TestServePostgresUnreachableStopsAtStart(t *testing.T) {
	const password = "Unreachable-Pw-4e1d"
	f := pgConfigFile(t, fmt.Sprintf("host=127.0.0.1 port=%d user=sealpost password=%s dbname=sealpost connect_timeout=2 sslmode=disable", closedPort(t), password))
	for _, args := range [][]string{{"serve", "-check", "-config", f}, {"serve", "-config", f}} {
		start := time.Now()
		code, out, errOut := runCLI(t, "", args...)
		if code != 1 || !strings.Contains(errOut, "store.postgres") {
			t.Fatalf("%v with PostgreSQL unreachable: exit %d\n%s\n%s", args, code, out, errOut)
		}
		if strings.Contains(out+errOut, password) {
			t.Fatalf("%v prints the password:\n%s%s", args, out, errOut)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Fatalf("%v took %v", args, d)
		}
	}
}

// TestServePostgresWrongPasswordStopsAtStart: a wrong password stops serve and serve -check at
// start with an error naming store.postgres that does not print the password.
func TestServePostgresWrongPasswordStopsAtStart(t *testing.T) {
	pg := pgtest.Start(t)
	const wrong = "Wrong-Pw-91c2e7"
	f := pgConfigFile(t, pg.PasswordDSN(pg.NewDatabase(t), wrong))
	for _, args := range [][]string{{"serve", "-check", "-config", f}, {"serve", "-config", f}, {"store", "migrate", "-config", f}} {
		code, out, errOut := runCLI(t, "", args...)
		if code != 1 || !strings.Contains(errOut, "store.postgres") || !strings.Contains(errOut, "password authentication failed") {
			t.Fatalf("%v with a wrong password: exit %d\n%s\n%s", args, code, out, errOut)
		}
		if strings.Contains(out+errOut, wrong) {
			t.Fatalf("%v prints the password:\n%s%s", args, out, errOut)
		}
	}
}

// TestServeCheckPostgresDSNFile: serve -check names the DSN file's problem at its key: missing,
// readable by others (with the chmod), not a connection string; with the right file it connects
// and says OK, and has created nothing in the database.
func TestServeCheckPostgresDSNFile(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.NewDatabase(t)
	f := pgConfigFile(t, pg.PasswordDSN(db, pgtest.Password))
	dsnFile := filepath.Join(filepath.Dir(f), "pg.dsn")
	if code, out, errOut := runCLI(t, "", "serve", "-check", "-config", f); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("serve -check with PostgreSQL: exit %d\n%s\n%s", code, out, errOut)
	}
	if v := schemaVersion(t, pg.DSN(db)); v != 0 {
		t.Fatalf("serve -check migrated the database to version %d", v)
	}
	os.Chmod(dsnFile, 0o644)
	if code, _, errOut := runCLI(t, "", "serve", "-check", "-config", f); code != 1 || !strings.Contains(errOut, "store.postgres.dsn_file: ") || !strings.Contains(errOut, "chmod 600 "+dsnFile) || strings.Contains(errOut, pgtest.Password) {
		t.Fatalf("serve -check with a DSN file others may read: exit %d\n%s", code, errOut)
	}
	os.WriteFile(dsnFile, []byte("postgres://sealpost:"+pgtest.Password+"@[::1/x\n"), 0o600)
	os.Chmod(dsnFile, 0o600)
	if code, _, errOut := runCLI(t, "", "serve", "-check", "-config", f); code != 1 || !strings.Contains(errOut, "store.postgres.dsn_file: "+dsnFile+" does not hold a PostgreSQL connection string") || strings.Contains(errOut, pgtest.Password) {
		t.Fatalf("serve -check with a DSN file that does not parse: exit %d\n%s", code, errOut)
	}
	os.Remove(dsnFile)
	if code, _, errOut := runCLI(t, "", "serve", "-check", "-config", f); code != 1 || !strings.Contains(errOut, "store.postgres.dsn_file: "+dsnFile+" does not exist") {
		t.Fatalf("serve -check without the DSN file: exit %d\n%s", code, errOut)
	}
}

// schemaVersion reads the schema version the database records (0 before any migration).
func schemaVersion(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil && !strings.Contains(err.Error(), "does not exist") {
		t.Fatal(err)
	}
	return v
}

// TestStoreMigrate: store migrate brings a new database to the current schema and says so;
// again it changes nothing; against a schema newer than this binary it exits 1 saying so, and
// serve refuses to start on it.
func TestStoreMigrate(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.NewDatabase(t)
	f := pgConfigFile(t, pg.PasswordDSN(db, pgtest.Password))
	code, out, errOut := runCLI(t, "", "store", "migrate", "-config", f)
	if code != 0 || !strings.Contains(out, "store.postgres: schema version ") || !strings.Contains(out, "(migrated from 0)") {
		t.Fatalf("store migrate on a new database: exit %d\n%s\n%s", code, out, errOut)
	}
	v := schemaVersion(t, pg.DSN(db))
	if v < 1 || !strings.Contains(out, fmt.Sprintf("schema version %d ", v)) {
		t.Fatalf("the database records version %d; store migrate said %s", v, out)
	}
	if code, out, errOut = runCLI(t, "", "store", "migrate", "-config", f); code != 0 || out != fmt.Sprintf("store.postgres: schema version %d, up to date\n", v) {
		t.Fatalf("store migrate again: exit %d\n%s\n%s", code, out, errOut)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v+1); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	for _, args := range [][]string{{"store", "migrate", "-config", f}, {"serve", "-config", f}} {
		code, out, errOut := runCLI(t, "", args...)
		if code != 1 || !strings.Contains(errOut, "store.postgres") || !strings.Contains(errOut, "newer than this sealpost") {
			t.Fatalf("%v on a newer schema: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	// SQLite: the embedded store migrates when it opens; the command says where it is.
	data := t.TempDir()
	if code, out, errOut := runCLI(t, "", "store", "migrate", "-data", data); code != 0 || !strings.Contains(out, filepath.Join(data, storeFile)) {
		t.Fatalf("store migrate on SQLite: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestServeOnPostgres: a gateway on PostgreSQL keeps its threads there; when the database stops
// taking connections /readyz is 503 and sealpost_store_up 0, a support message gets 451 4.3.0 and
// is not queued; when it takes them again the node recovers by itself.
func TestServeOnPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.NewDatabase(t)
	dsnFile := filepath.Join(t.TempDir(), "pg.dsn")
	os.WriteFile(dsnFile, []byte(pg.PasswordDSN(db, pgtest.Password)+" connect_timeout=2"), 0o600)
	inst, _, _, _ := testInstance(t, func(c *Config) {
		p := defaultPostgres()
		p.DSNFile = dsnFile
		c.Store.Postgres = &p
	})
	if _, ok := inst.data.store.(*store.Postgres); !ok {
		t.Fatalf("the store is %T, want *store.Postgres", inst.data.store)
	}
	base := "http://" + inst.ops.Addr().String()
	ready := func(want int, up string) {
		t.Helper()
		waitFor(t, fmt.Sprintf("/readyz %d and sealpost_store_up %s", want, up), func() bool {
			code, _ := httpGet(t, base+"/readyz")
			_, metrics := httpGet(t, base+"/metrics")
			return code == want && strings.Contains(metrics, "sealpost_store_up "+up)
		})
	}
	ready(200, "1")
	support := "From: support@bank.example\r\nTo: alice@example.com\r\nSubject: Case 4711\r\n\r\nPlease confirm the payee.\r\n"
	if res := submit(t, inst, "support@bank.example", []string{"alice@example.com"}, support); res.Err != nil {
		t.Fatalf("a support message on PostgreSQL: %s", res.Reply)
	}
	admin := func(sql string) {
		t.Helper()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	var threads int
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM threads`).Scan(&threads); err != nil || threads != 1 {
		t.Fatalf("threads in PostgreSQL: %d (%v)", threads, err)
	}
	conn.Close(ctx)
	// The database refuses the gateway's role, and its connections are cut: as if it were down.
	admin(`ALTER ROLE ` + pgtest.PasswordRole + ` NOLOGIN`)
	admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '` + pgtest.PasswordRole + `'`)
	t.Cleanup(func() { admin(`ALTER ROLE ` + pgtest.PasswordRole + ` LOGIN`) })
	ready(503, "0")
	before, _ := inst.spool.List()
	res := submit(t, inst, "support@bank.example", []string{"alice@example.com"}, support)
	if res.Err == nil || !strings.Contains(res.Reply, "451") || strings.Contains(res.Reply, pgtest.Password) {
		t.Fatalf("a support message with PostgreSQL down: %q, want 451", res.Reply)
	}
	if after, _ := inst.spool.List(); len(after) != len(before) {
		t.Fatalf("queued %d entries while PostgreSQL was down", len(after)-len(before))
	}
	admin(`ALTER ROLE ` + pgtest.PasswordRole + ` LOGIN`)
	ready(200, "1")
	if res := submit(t, inst, "support@bank.example", []string{"alice@example.com"}, support); res.Err != nil {
		t.Fatalf("a support message once PostgreSQL is back: %s", res.Reply)
	}
}
