package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/internal/pgtest"
)

// freshPostgres returns the config of a new empty database on the private server.
func freshPostgres(t *testing.T) (PostgresConfig, *pgtest.Server, string) {
	t.Helper()
	srv := pgtest.Start(t)
	db := srv.NewDatabase(t)
	cfg := DefaultPostgresConfig()
	cfg.DSN = srv.DSN(db)
	return cfg, srv, db
}

// TestPostgresMigrationRace: nodes starting together on a fresh database all
// open it, and each migration is applied once.
func TestPostgresMigrationRace(t *testing.T) {
	cfg, _, _ := freshPostgres(t)
	const nodes = 4
	stores := make([]*Postgres, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { stores[i], errs[i] = OpenPostgres(context.Background(), cfg) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	var n, v int
	if err := stores[0].pool.QueryRow(context.Background(), `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != pgSchemaVersion || v != pgSchemaVersion {
		t.Errorf("schema_migrations has %d rows up to version %d; want %d, %d", n, v, pgSchemaVersion, pgSchemaVersion)
	}
	from, to, err := MigratePostgres(context.Background(), cfg)
	if err != nil || from != pgSchemaVersion || to != pgSchemaVersion {
		t.Errorf("MigratePostgres on a current schema = %d, %d, %v; want %d, %d", from, to, err, pgSchemaVersion, pgSchemaVersion)
	}
	if got, err := stores[1].SchemaVersion(context.Background()); err != nil || got != pgSchemaVersion {
		t.Errorf("SchemaVersion = %d, %v", got, err)
	}
}

// TestPostgresMigrate: MigratePostgres takes an empty database to the
// current version, and SchemaVersion reads 0 before.
func TestPostgresMigrate(t *testing.T) {
	cfg, _, _ := freshPostgres(t)
	p, err := connectPostgres(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if v, err := p.SchemaVersion(context.Background()); err != nil || v != 0 {
		t.Errorf("SchemaVersion of an empty database = %d, %v; want 0", v, err)
	}
	from, to, err := MigratePostgres(context.Background(), cfg)
	if err != nil || from != 0 || to != pgSchemaVersion {
		t.Errorf("MigratePostgres = %d, %d, %v; want 0, %d", from, to, err, pgSchemaVersion)
	}
}

func TestPostgresSchemaTooNew(t *testing.T) {
	cfg, _, _ := freshPostgres(t)
	p := openPostgres(t, cfg)
	if _, err := p.pool.Exec(context.Background(), `INSERT INTO schema_migrations (version) VALUES ($1)`, pgSchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	p.Close()
	for name, open := range map[string]func() error{
		"OpenPostgres": func() error {
			p, err := OpenPostgres(context.Background(), cfg)
			if err == nil {
				p.Close()
			}
			return err
		},
		"MigratePostgres": func() error { _, _, err := MigratePostgres(context.Background(), cfg); return err },
	} {
		err := open()
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("%s = %v; want ErrSchemaTooNew", name, err)
		}
		if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(pgSchemaVersion+1)) || !strings.Contains(msg, "upgrade sealpost") {
			t.Errorf("%s: error %q does not say which version and what to do", name, msg)
		}
	}
	// Refused means untouched: no migration ran.
	var n int
	p2, err := connectPostgres(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if err := p2.pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != pgSchemaVersion+1 {
		t.Errorf("schema_migrations has %d rows, %v; want %d", n, err, pgSchemaVersion+1)
	}
}

// TestPostgresPasswordNeverShown: a wrong password, a closed port and an
// unreachable host each stop OpenPostgres with an error that says where it
// tried and never holds the password; the right password works.
func TestPostgresPasswordNeverShown(t *testing.T) {
	_, srv, db := freshPostgres(t)
	closed := closedPort(t)
	const wrong = "Wrong-Secret-91d2"
	tests := []struct {
		name, dsn, password string
	}{
		{"wrong password", srv.PasswordDSN(db, wrong), wrong},
		{"wrong password in a URL", fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", pgtest.PasswordRole, wrong, srv.Port(), db), wrong},
		{"closed port", fmt.Sprintf("host=127.0.0.1 port=%d user=u password=%s dbname=d sslmode=disable", closed, pgtest.Password), pgtest.Password},
		// TEST-NET-1 (RFC 5737) is not routed: the connect timeout ends it.
		{"unreachable host", fmt.Sprintf("host=192.0.2.1 port=5432 user=u password=%s dbname=d sslmode=disable connect_timeout=1", pgtest.Password), pgtest.Password},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultPostgresConfig()
			cfg.DSN = tt.dsn
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			p, err := OpenPostgres(ctx, cfg)
			if err == nil {
				p.Close()
				t.Fatal("OpenPostgres succeeded")
			}
			if msg := fmt.Sprintf("%v %+v", err, err); strings.Contains(msg, tt.password) {
				t.Errorf("error holds the password: %s", msg)
			}
			if !strings.Contains(err.Error(), "PostgreSQL") {
				t.Errorf("error %q does not say what failed", err)
			}
			t.Log(err)
		})
	}
	cfg := DefaultPostgresConfig()
	cfg.DSN = srv.PasswordDSN(db, pgtest.Password)
	openPostgres(t, cfg)
}

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

func TestPostgresConfigValidate(t *testing.T) {
	if err := DefaultPostgresConfig().Validate(); len(config.FieldErrors(err)) != 1 || config.FieldErrors(err)[0].Path != "dsn" {
		t.Errorf("DefaultPostgresConfig().Validate() = %v; want one problem, dsn", err)
	}
	good := DefaultPostgresConfig()
	good.DSN = "host=/run/postgresql dbname=sealpost"
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", good, err)
	}
	const secret = "Secret-In-A-Bad-DSN"
	tests := []struct {
		name string
		edit func(*PostgresConfig)
		path string
	}{
		{"malformed URL", func(c *PostgresConfig) { c.DSN = "postgres://u:" + secret + "@host:notaport/db" }, "dsn"},
		{"malformed key=value", func(c *PostgresConfig) { c.DSN = "password=" + secret + " host='unterminated" }, "dsn"},
		{"no connections", func(c *PostgresConfig) { c.MaxConns = 0 }, "max_conns"},
		{"negative timeout", func(c *PostgresConfig) { c.StatementTimeout = -1 }, "statement_timeout"},
	}
	for _, tt := range tests {
		c := good
		tt.edit(&c)
		err := c.Validate()
		fes := config.FieldErrors(err)
		if len(fes) != 1 || fes[0].Path != tt.path {
			t.Errorf("%s: Validate = %v; want one problem at %s", tt.name, err, tt.path)
		}
		if err != nil && strings.Contains(fmt.Sprintf("%v %+v", err, fes[0].Err), secret) {
			t.Errorf("%s: the problem shows the password: %v", tt.name, err)
		}
		if _, err := OpenPostgres(context.Background(), c); !errors.Is(err, ErrInvalid) || (err != nil && strings.Contains(err.Error(), secret)) {
			t.Errorf("%s: OpenPostgres = %v; want ErrInvalid without the password", tt.name, err)
		}
	}
}

// TestPostgresSettings: the pool has MaxConns and every connection the
// statement timeout.
func TestPostgresSettings(t *testing.T) {
	cfg, _, _ := freshPostgres(t)
	cfg.MaxConns = 3
	cfg.StatementTimeout = config.Duration(1234 * time.Millisecond)
	p := openPostgres(t, cfg)
	var timeout string
	if err := p.pool.QueryRow(context.Background(), `SHOW statement_timeout`).Scan(&timeout); err != nil || timeout != "1234ms" {
		t.Errorf("statement_timeout = %q, %v; want 1234ms", timeout, err)
	}
	if got := p.pool.Config().MaxConns; got != 3 {
		t.Errorf("MaxConns = %d; want 3", got)
	}
	if err := p.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	p.Close()
	if err := p.Ping(context.Background()); err == nil {
		t.Error("Ping of a closed store succeeded")
	}
}

// TestPostgresWatchReconnects: when its listening connection is killed,
// Watch reconnects and is woken by NOTIFY again (its poll is an hour).
func TestPostgresWatchReconnects(t *testing.T) {
	cfg, _, _ := freshPostgres(t)
	p, other := openPostgres(t, cfg), openPostgres(t, cfg)
	ctx := context.Background()
	events := watchEvents(t, p, time.Hour)
	register := func(i int) error {
		return other.Register(ctx, Registration{Address: fmt.Sprintf("r%d@example.com", i), Method: MethodPGP, Fingerprint: fpA})
	}
	awaitTopic(t, events, TopicRegistrations, register)
	var killed int
	if err := other.pool.QueryRow(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+notifyChannel+`'`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("killed %d listening connections; want 1", killed)
	}
	awaitTopic(t, events, TopicDirectory, func(i int) error {
		return other.PutRecipientKey(ctx, RecipientKey{Method: MethodPGP, Fingerprint: fpB, Data: fmt.Appendf(nil, "k%d", i)})
	})
}

// TestPostgresMigrateMarksDelivered: schema version 3 counts released held
// messages whose bytes are gone (removed when delivered) as delivered.
func TestPostgresMigrateMarksDelivered(t *testing.T) {
	cfg, _, _ := freshPostgres(t)
	ctx := context.Background()
	p, err := connectPostgres(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for v, ddl := range pgMigrations[:2] {
		if _, err := p.pool.Exec(ctx, ddl); err != nil {
			t.Fatalf("schema version %d: %v", v+1, err)
		}
	}
	if _, err := p.pool.Exec(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied TIMESTAMPTZ NOT NULL DEFAULT now());
		INSERT INTO schema_migrations (version) VALUES (1), (2);
		INSERT INTO held (id, received, sender, reason, verdict, ref, released) VALUES
			('delivered', 1, '', '', '', '', true), ('waiting', 2, '', '', '', '', true), ('held', 3, '', '', '', '', false);
		INSERT INTO held_blobs (id, data) VALUES ('waiting', 'x'), ('held', 'y')`); err != nil {
		t.Fatal(err)
	}
	if from, to, err := p.Migrate(ctx); err != nil || from != 2 || to != pgSchemaVersion {
		t.Fatalf("Migrate = %d, %d, %v", from, to, err)
	}
	for id, want := range map[string]bool{"delivered": true, "waiting": false, "held": false} {
		if h, err := p.HeldGet(ctx, id); err != nil || h.Delivered != want {
			t.Errorf("HeldGet(%s) = %+v, %v; want Delivered %v", id, h, err, want)
		}
	}
}
