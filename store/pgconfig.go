package store

import (
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sealpost/sealpost/config"
)

// PostgresConfig is how OpenPostgres reaches the shared database, with the
// keys of the configuration file's store.postgres section. Start from
// DefaultPostgresConfig.
type PostgresConfig struct {
	// DSN is the libpq connection string (key=value or a postgres:// URL).
	// It holds the password, so it is never in the configuration file: the
	// caller reads it from a file of its own and sets it here.
	DSN string `json:"-"`
	// MaxConns bounds the connections of this node's pool.
	MaxConns int32 `json:"max_conns"`
	// StatementTimeout is PostgreSQL's statement_timeout for every
	// connection, so that a stuck query fails instead of holding a message;
	// zero means none.
	StatementTimeout config.Duration `json:"statement_timeout"`
}

// Defaults of DefaultPostgresConfig.
const (
	DefaultPostgresMaxConns         = 10
	DefaultPostgresStatementTimeout = 30 * time.Second
	// defaultConnectTimeout applies when the DSN sets no connect_timeout, so
	// that an unreachable host fails the start rather than hanging it.
	defaultConnectTimeout = 10 * time.Second
)

// DefaultPostgresConfig is DefaultPostgresMaxConns connections and
// DefaultPostgresStatementTimeout, with no DSN.
func DefaultPostgresConfig() PostgresConfig {
	return PostgresConfig{MaxConns: DefaultPostgresMaxConns, StatementTimeout: config.Duration(DefaultPostgresStatementTimeout)}
}

// Validate checks the settings and changes nothing. Its problems are
// *config.FieldError named by their key (dsn, max_conns,
// statement_timeout); none of them shows the DSN, which holds the password.
func (c PostgresConfig) Validate() error {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, &config.FieldError{Path: "dsn", Problem: "is empty: give a PostgreSQL connection string"})
	} else if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		// pgx's message quotes the string, password redacted only on a best
		// effort, and its error holds it whole: neither goes further.
		errs = append(errs, &config.FieldError{Path: "dsn", Problem: "is not a PostgreSQL connection string (key=value pairs or a postgres:// URL)"})
	}
	if c.MaxConns <= 0 {
		errs = append(errs, &config.FieldError{Path: "max_conns", Problem: "must be positive (e.g. 10)"})
	}
	if c.StatementTimeout < 0 {
		errs = append(errs, &config.FieldError{Path: "statement_timeout", Problem: "must not be negative (0 means none; e.g. \"30s\")"})
	}
	return errors.Join(errs...)
}
