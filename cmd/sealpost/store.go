package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/ops"
	"github.com/sealpost/sealpost/quarantine"
	"github.com/sealpost/sealpost/store"
)

// storeFile is the embedded store in the data directory.
const storeFile = "sealpost.db"

// Bounds of reaching PostgreSQL from the command line and at start.
const (
	// maxDSNLen bounds the connection string file: a DSN is one line.
	maxDSNLen = 4 << 10
	// storeOpenTimeout bounds opening the store at start, migrations included (another node
	// may hold the migration lock a moment); the DSN's connect_timeout bounds each attempt.
	storeOpenTimeout = time.Minute
	// checkConnectTimeout is serve -check's connect_timeout when the DSN sets none.
	checkConnectTimeout = 10 * time.Second
)

// postgresPath is the configuration's key for PostgreSQL, which every error of reaching it names.
const postgresPath = "store.postgres"

// openStore opens the shared store sc configures: PostgreSQL (its schema migrated) when set, else
// the embedded SQLite in the data directory. No error holds PostgreSQL's password.
func openStore(data string, sc StoreConfig) (backend, error) {
	if p := sc.Postgres; p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
		defer cancel()
		cfg, password, err := p.storeConfig()
		if err != nil {
			return nil, err
		}
		st, err := store.OpenPostgres(ctx, cfg)
		if err != nil {
			return nil, hidePassword(fmt.Errorf("%s: %w", postgresPath, err), password)
		}
		return st, nil
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	st, err := store.OpenSQLite(filepath.Join(data, storeFile))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return st, nil
}

// storeConfig is the store's configuration with the connection string read from DSNFile (which
// must be private to the service user, as the ops token is), and the password it holds, for
// keeping it out of errors. Every problem is a *config.FieldError at store.postgres.dsn_file.
func (p PostgresConfig) storeConfig() (store.PostgresConfig, string, error) {
	bad := func(problem string, err error) (store.PostgresConfig, string, error) {
		return store.PostgresConfig{}, "", &config.FieldError{Path: postgresPath + ".dsn_file", Problem: problem, Err: err}
	}
	b, err := ops.ReadPrivateFile(p.DSNFile, maxDSNLen+1)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return bad(fmt.Sprintf("%s does not exist: write the connection string there (mode 0600)", p.DSNFile), err)
	case err != nil:
		return bad(err.Error(), err)
	case len(b) > maxDSNLen:
		return bad(fmt.Sprintf("%s is longer than a connection string (%d bytes at most)", p.DSNFile, maxDSNLen), nil)
	}
	cfg := p.PostgresConfig
	cfg.DSN = strings.TrimSpace(string(b))
	if cfg.DSN == "" {
		return bad(p.DSNFile+" is empty: write the connection string there", nil)
	}
	cc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's message quotes the string: only the file is named.
		return bad(p.DSNFile+" does not hold a PostgreSQL connection string (key=value pairs or a postgres:// URL)", nil)
	}
	return cfg, cc.Password, nil
}

// hidePassword returns err with password masked in its text (a driver or server could echo it)
// and only store.ErrSchemaTooNew kept for errors.Is: pgx's errors carry the whole connection
// configuration, so they go no further than their text.
func hidePassword(err error, password string) error {
	msg := err.Error()
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
	var cause error
	if errors.Is(err, store.ErrSchemaTooNew) {
		cause = store.ErrSchemaTooNew
	}
	return &maskedError{msg: msg, cause: cause}
}

// maskedError is an error of reaching PostgreSQL with the password masked (hidePassword).
type maskedError struct {
	msg   string
	cause error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.cause }

// checkStore is serve -check's look at the store: for PostgreSQL the connection string file
// (exists, private, parses) and, with connect, a connection, changing nothing (migrations run at
// start and with store migrate); the embedded SQLite needs nothing.
func checkStore(sc StoreConfig, connect bool) error {
	p := sc.Postgres
	if p == nil {
		return nil
	}
	cfg, password, err := p.storeConfig()
	if err != nil || !connect {
		return err
	}
	cc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return err // storeConfig parsed it
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = checkConnectTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*checkConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	if err != nil {
		return hidePassword(fmt.Errorf("%s: cannot reach PostgreSQL (database %q on %s as %q): %w", postgresPath, cc.Database, cc.Host, cc.User, err), password)
	}
	return nil
}

// cmdStoreMigrate applies the store's schema migrations (idempotent) and prints the schema
// version; a database newer than this binary is refused.
func cmdStoreMigrate(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("store migrate", stdout)
	configFile, data := configFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: store migrate takes no arguments", errUsage)
	}
	cfg, err := loadConfig(*configFile, *data)
	if err != nil {
		return err
	}
	p := cfg.Store.Postgres
	if p == nil {
		// SQLite migrates itself whenever it opens.
		st, err := openStore(cfg.Data, cfg.Store)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "store: the embedded SQLite %s is up to date\n", filepath.Join(cfg.Data, storeFile))
		return st.Close()
	}
	sc, password, err := p.storeConfig()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
	defer cancel()
	from, to, err := store.MigratePostgres(ctx, sc)
	if err != nil {
		return hidePassword(fmt.Errorf("%s: %w", postgresPath, err), password)
	}
	if from == to {
		fmt.Fprintf(stdout, "%s: schema version %d, up to date\n", postgresPath, to)
	} else {
		fmt.Fprintf(stdout, "%s: schema version %d (migrated from %d)\n", postgresPath, to, from)
	}
	return nil
}

// pinger is a store that can say directly whether it answers (PostgreSQL's pool).
type pinger interface {
	Ping(ctx context.Context) error
}

// pingAddress is what storePing looks up in a store without Ping: an address no customer has
// (.invalid, RFC 2606), so the answer is always "not found" while the store works.
const pingAddress = "readyz@sealpost.invalid"

// storePing is the question /readyz and sealpost_store_up ask the store: its Ping, or, for one
// without (SQLite), a read that finds nothing.
func storePing(st backend) ops.Check {
	if p, ok := st.(pinger); ok {
		return p.Ping
	}
	return func(ctx context.Context) error {
		_, err := st.Capabilities(ctx, pingAddress)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
}

// storeMover is a store that export and import move rows out of and into (both stores are).
type storeMover interface {
	store.Exporter
	store.Importer
}

var (
	_ storeMover = (*store.SQLite)(nil)
	_ storeMover = (*store.Postgres)(nil)
)

// openConfiguredStore opens the store of -config and -data for store export and import. For the
// embedded SQLite the data directory must exist: a mistyped path is named, not created.
func openConfiguredStore(configFile, data string) (storeMover, io.Closer, error) {
	cfg, err := loadConfig(configFile, data)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Store.Postgres == nil {
		if _, err := existingDataDir(cfg.Data); err != nil {
			return nil, nil, err
		}
	}
	st, err := openStore(cfg.Data, cfg.Store)
	if err != nil {
		return nil, nil, err
	}
	m, ok := st.(storeMover)
	if !ok {
		st.Close()
		return nil, nil, fmt.Errorf("store: %T cannot export or import", st)
	}
	return m, st, nil
}

// cmdStoreExport writes every row of the configured store to stdout in the export format.
func cmdStoreExport(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("store export", stdout)
	configFile, data := configFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: store export takes no arguments (it writes to stdout)", errUsage)
	}
	cfg, err := loadConfig(*configFile, *data)
	if err != nil {
		return err
	}
	st, closer, err := openConfiguredStore(*configFile, *data)
	if err != nil {
		return err
	}
	defer closer.Close()
	ctx := context.Background()
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if cfg.Store.Postgres == nil {
		if err := addHeldFiles(ctx, cfg, closer, snap); err != nil {
			return err
		}
	}
	return store.WriteExport(stdout, snap)
}

// addHeldFiles adds to snap the bytes of what a single node holds in its quarantine directory
// (sealed, as they are: held.key goes to the other nodes as a file, never into an export), so that
// moving to PostgreSQL takes the held messages with their index. A message already delivered to
// the desk has no bytes left, and needs none.
func addHeldFiles(ctx context.Context, cfg Config, st any, snap *store.Snapshot) error {
	idx, ok := st.(quarantine.Index)
	if !ok {
		return fmt.Errorf("store: %T keeps no quarantine index", st)
	}
	q, err := quarantine.Open(quarantineDir(cfg), idx)
	if err != nil {
		return err
	}
	for _, h := range snap.Held {
		if h.Delivered {
			continue
		}
		data, err := q.Sealed(ctx, h.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("held %s: %w", h.ID, err)
		}
		if err := snap.AddHeldBlob(h.ID, data); err != nil {
			return fmt.Errorf("held %s: %w", h.ID, err)
		}
	}
	return nil
}

// cmdStoreImport adds the rows of an export to the configured store, in one transaction, and says
// how many of each it added.
func cmdStoreImport(args []string, stdin io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("store import", stdout)
	configFile, data := configFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: store import [-config FILE] FILE|-", errUsage)
	}
	in := stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	st, closer, err := openConfiguredStore(*configFile, *data)
	if err != nil {
		return err
	}
	defer closer.Close()
	n, err := store.Import(context.Background(), st, in)
	if err != nil {
		return fmt.Errorf("%s: %w (nothing was imported)", fs.Arg(0), err)
	}
	fmt.Fprintf(stdout, "added %d registrations, %d recipient keys, %d threads, %d thread messages, %d held messages (%d with their bytes), %d capabilities; rows already stored were kept\n",
		n.Registrations, n.RecipientKeys, n.Threads, n.Messages, n.Held, n.HeldBlobs, n.Capabilities)
	return closer.Close()
}
