package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestAddressKey(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"alice@example.com", "alice@example.com", nil},
		{"Alice@Example.COM", "alice@example.com", nil},
		{" ALICE@EXAMPLE.COM ", "alice@example.com", nil},
		{"ÅSA@Bücher.Example", "åsa@bücher.example", nil},
		{"nodomain", "", ErrInvalid},
	}
	for _, tt := range tests {
		got, err := AddressKey(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("AddressKey(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestRegisterCaseVariant: registering a key under another spelling of an address that holds it
// already is the no-op that registering it again is; a new key joins the customer's registrations
// under their stored spelling, so lookups in either spelling find both.
func TestRegisterCaseVariant(t *testing.T) { forEachStore(t, testRegisterCaseVariant) }

func testRegisterCaseVariant(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	first := Registration{Address: "alice@example.com", Method: MethodSMIME, Fingerprint: fpA, Registered: at}
	for _, addr := range []string{"alice@example.com", "Alice@example.com", "ALICE@EXAMPLE.COM"} {
		r := first
		r.Address, r.Registered = addr, at
		if err := s.Register(ctx, r); err != nil {
			t.Fatalf("Register(%s): %v", addr, err)
		}
		at = at.Add(time.Hour)
	}
	if n := countRows(t, s, "registrations"); n != 1 {
		t.Fatalf("%d rows; want 1", n)
	}
	second := Registration{Address: "Alice@Example.com", Method: MethodPGP, Fingerprint: fpB, Registered: at}
	if err := s.Register(ctx, second); err != nil {
		t.Fatal(err)
	}
	second.Address = "alice@example.com"
	for _, addr := range []string{"alice@example.com", "Alice@example.com"} {
		if got, err := s.Registrations(ctx, addr); err != nil || !sameRegistrations(got, []Registration{first, second}) {
			t.Errorf("Registrations(%s) = %+v, %v; want %+v", addr, got, err, []Registration{first, second})
		}
	}
}

// TestCapabilitiesCaseVariant: a reply from another spelling of the address updates the
// capabilities recorded, and lookups in any spelling read them.
func TestCapabilitiesCaseVariant(t *testing.T) { forEachStore(t, testCapabilitiesCaseVariant) }

func testCapabilitiesCaseVariant(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []Capabilities{
		{Address: "alice@example.com", SMIMEGCM: true, Updated: t0},
		{Address: "Alice@example.com", PGPSEIPDv2: true, Updated: t0.Add(time.Hour)},
		{Address: "ALICE@example.com", SMIMEGCM: true, Updated: t0.Add(time.Minute)}, // older: ignored
	} {
		if err := s.SetCapabilities(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if n := countRows(t, s, "capabilities"); n != 1 {
		t.Fatalf("%d rows; want 1", n)
	}
	want := Capabilities{Address: "alice@example.com", PGPSEIPDv2: true, Updated: t0.Add(time.Hour)}
	for _, addr := range []string{"alice@example.com", "Alice@Example.COM"} {
		if got, err := s.Capabilities(ctx, addr); err != nil || got != want {
			t.Errorf("Capabilities(%s) = %+v, %v; want %+v", addr, got, err, want)
		}
	}
}

// TestCaseVariantsFromVersion1ExactSpellingWins: a version 1 database may hold entries for
// addresses that differ only by case (they were different addresses then). A lookup in one of
// those spellings gets its own entries; in a third spelling, those of every spelling (for
// capabilities, the newest).
func TestCaseVariantsFromVersion1ExactSpellingWins(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	upper := Registration{Address: "Alice@example.com", Method: MethodSMIME, Fingerprint: fpA, Registered: t0}
	lower := Registration{Address: "alice@example.com", Method: MethodPGP, Fingerprint: fpB, Registered: t0.Add(time.Hour)}
	oldCaps := Capabilities{Address: "alice@example.com", SMIMEGCM: true, Updated: t0.Add(time.Hour)}
	newCaps := Capabilities{Address: "Alice@example.com", PGPSEIPDv2: true, Updated: t0.Add(2 * time.Hour)}
	withCaseVariants(t, []Registration{upper, lower}, []Capabilities{oldCaps, newCaps}, func(t *testing.T, s contract) {
		for _, tt := range []struct {
			lookup string
			want   []Registration
			caps   Capabilities
		}{
			{"Alice@example.com", []Registration{upper}, newCaps},
			{"Alice@EXAMPLE.com", []Registration{upper}, newCaps},
			{"alice@example.com", []Registration{lower}, oldCaps},
			{"ALICE@example.com", []Registration{upper, lower}, newCaps},
			{"aLiCe@example.com", []Registration{upper, lower}, newCaps},
		} {
			got, err := s.Registrations(ctx, tt.lookup)
			if err != nil || !sameRegistrations(got, tt.want) {
				t.Errorf("Registrations(%q) = %+v, %v; want %+v", tt.lookup, got, err, tt.want)
			}
			if c, err := s.Capabilities(ctx, tt.lookup); err != nil || c != tt.caps {
				t.Errorf("Capabilities(%q) = %+v, %v; want %+v", tt.lookup, c, err, tt.caps)
			}
		}
		// Registering under one spelling what the other holds adds it there: a lookup in that
		// spelling must find it.
		if err := s.Register(ctx, Registration{Address: "alice@example.com", Method: MethodSMIME, Fingerprint: fpA, Registered: t0.Add(3 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Registrations(ctx, "alice@example.com"); err != nil || len(got) != 2 {
			t.Errorf("after registering Alice's key for alice: %+v, %v; want 2", got, err)
		}
		// Unregister removes only what Registrations lists for the same spelling.
		if err := s.Unregister(ctx, "Alice@example.com", fpB); !errors.Is(err, ErrNotFound) {
			t.Errorf("Unregister(Alice, alice's key) = %v; want ErrNotFound", err)
		}
		if err := s.Unregister(ctx, "Alice@example.com", fpA); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Registrations(ctx, "ALICE@example.com"); err != nil || len(got) != 2 || got[0].Address != "alice@example.com" || got[1].Address != "alice@example.com" {
			t.Errorf("after Unregister: %+v, %v; want alice's two", got, err)
		}
	})
}

// TestUnregisterExactSpellingOnly: where both spellings hold one key (a version 1 database),
// unregistering it from one spelling leaves the other's.
func TestUnregisterExactSpellingOnly(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	withCaseVariants(t, []Registration{
		{Address: "Alice@example.com", Method: MethodSMIME, Fingerprint: fpA, Registered: at},
		{Address: "alice@example.com", Method: MethodSMIME, Fingerprint: fpA, Registered: at.Add(1)},
	}, nil, func(t *testing.T, s contract) {
		if err := s.Unregister(ctx, "Alice@example.com", fpA); err != nil {
			t.Fatal(err)
		}
		got, err := s.Registrations(ctx, "ALICE@example.com")
		if err != nil || len(got) != 1 || got[0].Address != "alice@example.com" {
			t.Errorf("after Unregister(Alice): %+v, %v; want alice's registration only", got, err)
		}
	})
}

// withCaseVariants runs test, for each backend, on a store holding regs and caps, entries that
// differ by case alone included: for SQLite a version 1 database (migrated at open), for
// PostgreSQL the rows as they are stored (as copying such a database into it would).
func withCaseVariants(t *testing.T, regs []Registration, caps []Capabilities, test func(t *testing.T, s contract)) {
	t.Run("sqlite", func(t *testing.T) {
		var rows []v1Row
		for _, r := range regs {
			rows = append(rows, v1Row{`INSERT INTO registrations VALUES (?, ?, ?, ?)`, []any{r.Address, r.Method, r.Fingerprint, r.Registered.UnixNano()}})
		}
		for _, c := range caps {
			rows = append(rows, v1Row{`INSERT INTO capabilities VALUES (?, ?, ?, ?)`, []any{c.Address, b2i(c.SMIMEGCM), b2i(c.PGPSEIPDv2), c.Updated.UnixNano()}})
		}
		test(t, openVersion1(t, rows...))
	})
	t.Run("postgres", func(t *testing.T) {
		cfg, _, _ := freshPostgres(t)
		p := openPostgres(t, cfg)
		ctx := context.Background()
		for _, r := range regs {
			if _, err := p.pool.Exec(ctx, `INSERT INTO registrations (address, address_key, method, fingerprint, registered) VALUES ($1, $2, $3, $4, $5)`,
				b(r.Address), b(foldAddress(r.Address)), r.Method, r.Fingerprint, r.Registered.UnixNano()); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range caps {
			if _, err := p.pool.Exec(ctx, `INSERT INTO capabilities (address, address_key, smime_gcm, pgp_seipdv2, updated) VALUES ($1, $2, $3, $4, $5)`,
				b(c.Address), b(foldAddress(c.Address)), c.SMIMEGCM, c.PGPSEIPDv2, c.Updated.UnixNano()); err != nil {
				t.Fatal(err)
			}
		}
		test(t, p)
	})
}

type v1Row struct {
	sql  string
	args []any
}

// openVersion1 writes a database at schema version 1 holding rows, and opens it as the store.
func openVersion1(t *testing.T, rows ...v1Row) *SQLite {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append([]v1Row{{schemaV1DDL, nil}}, rows...) {
		if _, err := db.Exec(r.sql, r.args...); err != nil {
			db.Close()
			t.Fatalf("version 1 database: %v", err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("open version 1 database: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// schemaV1DDL is the schema sealpost created at version 1, as released (a copy, so that a change
// to the migration itself shows here).
const schemaV1DDL = `CREATE TABLE schema_version (version INTEGER NOT NULL);
	INSERT INTO schema_version (version) VALUES (1);
	CREATE TABLE registrations (
		address     TEXT NOT NULL,
		method      TEXT NOT NULL CHECK (method IN ('smime', 'pgp')),
		fingerprint TEXT NOT NULL,
		registered  INTEGER NOT NULL,
		PRIMARY KEY (address, method, fingerprint)
	);
	CREATE TABLE threads (
		token       TEXT PRIMARY KEY,
		customer    TEXT NOT NULL,
		method      TEXT NOT NULL,
		fingerprint TEXT NOT NULL,
		created     INTEGER NOT NULL,
		subject     TEXT NOT NULL
	);
	CREATE TABLE thread_messages (
		message_key TEXT PRIMARY KEY,
		message_id  TEXT NOT NULL,
		token       TEXT NOT NULL REFERENCES threads(token) ON DELETE CASCADE,
		inbound     INTEGER NOT NULL,
		verdict     TEXT NOT NULL,
		at          INTEGER NOT NULL
	);
	CREATE INDEX thread_messages_token ON thread_messages(token, at);
	CREATE TABLE held (
		id       TEXT PRIMARY KEY,
		received INTEGER NOT NULL,
		sender   TEXT NOT NULL,
		reason   TEXT NOT NULL,
		verdict  TEXT NOT NULL,
		ref      TEXT NOT NULL,
		released INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX held_received ON held(released, received);
	CREATE TABLE capabilities (
		address      TEXT PRIMARY KEY,
		smime_gcm    INTEGER NOT NULL,
		pgp_seipdv2  INTEGER NOT NULL,
		updated      INTEGER NOT NULL
	);`

// TestMigrateVersion1AddressKeys: a database written at schema version 1 (addresses compared with
// their local part's case) opens at the current version, and what it holds is found under any
// spelling, non-ASCII upper case included.
func TestMigrateVersion1AddressKeys(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	s := openVersion1(t,
		v1Row{`INSERT INTO registrations VALUES (?, ?, ?, ?)`, []any{"Alice@example.com", MethodSMIME, fpA, at}},
		v1Row{`INSERT INTO registrations VALUES (?, ?, ?, ?)`, []any{"ÅSA@example.com", MethodPGP, fpB, at}},
		v1Row{`INSERT INTO capabilities VALUES (?, ?, ?, ?)`, []any{"Bob@example.com", 1, 0, at}},
	)
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("schema version %d, %v; want %d", v, err, schemaVersion)
	}
	for lookup, want := range map[string]string{
		"Alice@example.com": fpA,
		"alice@example.com": fpA,
		"ALICE@Example.com": fpA,
		"åsa@example.com":   fpB,
		"Åsa@example.com":   fpB,
	} {
		got, err := s.Registrations(ctx, lookup)
		if err != nil || len(got) != 1 || got[0].Fingerprint != want {
			t.Errorf("Registrations(%q) after migration = %+v, %v; want %s", lookup, got, err, want)
		} else if got[0].Address != "Alice@example.com" && got[0].Address != "ÅSA@example.com" {
			t.Errorf("the stored spelling changed: %q", got[0].Address)
		}
	}
	if c, err := s.Capabilities(ctx, "bob@example.com"); err != nil || !c.SMIMEGCM || c.Address != "Bob@example.com" {
		t.Errorf("Capabilities after migration = %+v, %v", c, err)
	}
	// Registering the stored key under another spelling adds no row.
	if err := s.Register(ctx, Registration{Address: "alice@example.com", Method: MethodSMIME, Fingerprint: fpA}); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "registrations"); n != 2 {
		t.Errorf("%d registrations; want 2", n)
	}
	for _, index := range []string{"registrations_address_key", "capabilities_address_key"} {
		var name string
		if err := s.db.QueryRowContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND name = ?`, index).Scan(&name); err != nil {
			t.Errorf("index %s: %v", index, err)
		}
	}
}
