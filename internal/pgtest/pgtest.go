package pgtest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/pgserver"
)

// The role that logs in over the loopback port with a password.
const (
	PasswordRole = pgserver.PasswordRole
	Password     = pgserver.Password // distinctive, so a test can look for it in error text
)

// Server is the test binary's private PostgreSQL.
type Server struct {
	*pgserver.Server
}

var (
	once      sync.Once
	server    *Server
	startErr  error
	missingTo string // why the binaries were not found
)

// Start returns the binary's server, starting it at the first call. It
// skips the test when PostgreSQL is not installed (fails under
// SEALPOST_INTEROP=require) and fails it when the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	once.Do(func() {
		s, err := pgserver.Start()
		switch {
		case errors.Is(err, pgserver.ErrNotInstalled):
			missingTo = err.Error()
		case err != nil:
			startErr = err
		default:
			server = &Server{s}
		}
	})
	switch {
	case missingTo != "" && interop.Required():
		t.Fatalf("PostgreSQL not installed (Debian package postgresql: %s) and SEALPOST_INTEROP=require", missingTo)
	case missingTo != "":
		t.Skipf("PostgreSQL not installed (apt-get install postgresql: %s); set SEALPOST_INTEROP=require to fail instead", missingTo)
	case startErr != nil:
		t.Fatalf("private PostgreSQL: %v", startErr)
	}
	return server
}

// Main runs the tests, then stops the server if one started; a TestMain is
// os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if server != nil {
		if err := server.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	return code
}

// NewDatabase creates an empty database, owned by PasswordRole, and returns
// its name; it is dropped at the end of the test.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name, err := s.CreateDatabase("test")
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if err := s.DropDatabase(name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return name
}
