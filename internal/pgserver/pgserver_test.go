package pgserver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sealpost/sealpost/internal/interop"
)

// TestHaltResumeKeepsData: after Halt the server refuses connections on its port and its socket;
// after Resume it answers on the same port with the data written before, and a second Halt and
// Stop still work.
func TestHaltResumeKeepsData(t *testing.T) {
	s, err := Start()
	if errors.Is(err, ErrNotInstalled) {
		if interop.Required() {
			t.Fatalf("%v and SEALPOST_INTEROP=require", err)
		}
		t.Skipf("%v; set SEALPOST_INTEROP=require to fail instead", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	db, err := s.CreateDatabase("halt")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exec := func(dsn, sql string) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(cctx, sql)
		return err
	}
	dsn := s.PasswordDSN(db, Password)
	if err := exec(dsn, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before halt')`); err != nil {
		t.Fatal(err)
	}
	port := s.Port()
	if err := s.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := s.Halt(); err != nil {
		t.Fatalf("a second Halt: %v", err)
	}
	for _, d := range []string{dsn, s.DSN(db)} {
		if err := exec(d, `SELECT 1`); err == nil {
			t.Fatalf("connected to a halted server (%s)", d)
		}
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := s.Resume(); err != nil {
		t.Fatalf("Resume of a running server: %v", err)
	}
	if s.Port() != port {
		t.Fatalf("resumed on port %d, was %d", s.Port(), port)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("after Resume: %v", err)
	}
	var v string
	err = conn.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v)
	conn.Close(ctx)
	if err != nil || v != "before halt" {
		t.Fatalf("after Resume the table holds %q (%v)", v, err)
	}
	if err := s.Halt(); err != nil {
		t.Fatal(err)
	}
}
