package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sealpost/sealpost/inbound"
	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
	"github.com/sealpost/sealpost/store"
)

// heldPhrase is a phrase of the held reply that neither a file nor the database may hold in clear.
const heldPhrase = "IBAN DE44 5001 0517 5407 3249 31"

// heldEnvelope is how quarantine show prints the envelope, which only the held bytes hold.
const heldEnvelope = "envelope:\talice@example.com -> [support@bank.example]"

const heldReply = "From: Alice <alice@example.com>\r\nTo: support@bank.example\r\nSubject: new payee\r\n\r\nPlease pay " + heldPhrase + ".\r\n"

// pgNode starts an in-process node on the PostgreSQL database dsn that holds unsigned mail, with
// heldKey (when not nil) as its quarantine key, and writes a configuration file for its CLI.
func pgNode(t *testing.T, dsn string, heldKey []byte) (*instance, Config, string) {
	t.Helper()
	files := map[string][]byte{}
	if heldKey != nil {
		files[keys.HeldKeyFile] = heldKey
	}
	inst, cfg, file, _ := pgNodeWith(t, dsn, files)
	return inst, cfg, file
}

// pgNodeWith is pgNode with files (name → content, 0600) written into the node's data directory
// before it starts: the keys every node of a bank shares.
func pgNodeWith(t *testing.T, dsn string, files map[string][]byte) (*instance, Config, string, *keys.Identity) {
	t.Helper()
	dir := t.TempDir()
	dsnFile := filepath.Join(dir, "pg.dsn")
	if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pc := &PostgresConfig{DSNFile: dsnFile, PostgresConfig: store.DefaultPostgresConfig()}
	inst, cfg, alice, _ := testInstance(t, func(c *Config) {
		c.Store.Postgres = pc
		c.Inbound.OnUnsigned = inbound.ActionQuarantine
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(c.Data, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	})
	b, _ := json.Marshal(map[string]any{
		"identities": "development",
		"data":       cfg.Data,
		"inbound":    map[string]any{"on_unsigned": inbound.ActionQuarantine},
		"store":      map[string]any{"postgres": map[string]any{"dsn_file": dsnFile}},
	})
	file := filepath.Join(dir, "sealpost.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return inst, cfg, file, alice
}

// holdReply sends the unsigned reply to inst's inbound listener and returns the held ID that
// quarantine list (through the CLI with configFile) shows.
func holdReply(t *testing.T, inst *instance, configFile string) string {
	t.Helper()
	c, err := dialSMTP(inst.InboundAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if res := send(c, "alice@example.com", []string{"support@bank.example"}, []byte(heldReply)); res.Err != nil || !strings.Contains(res.Reply, "queued as") {
		t.Fatalf("unsigned reply: %v %q", res.Err, res.Reply)
	}
	code, list, errOut := runCLI(t, "", "quarantine", "list", "-config", configFile)
	ids := regexp.MustCompile(`(?m)^([A-Z2-7]{16}) `).FindStringSubmatch(list)
	if code != 0 || ids == nil {
		t.Fatalf("quarantine list: %d\n%s\n%s", code, list, errOut)
	}
	return ids[1]
}

// storedHeld reads the held bytes of id straight from the database, as a dump would show them.
func storedHeld(t *testing.T, dsn, id string) []byte {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var data []byte
	if err := conn.QueryRow(ctx, `SELECT data FROM held_blobs WHERE id = $1`, []byte(id)).Scan(&data); err != nil {
		t.Fatalf("the held bytes of %s in the database: %v", id, err)
	}
	return data
}

// TestQuarantineOnPostgresHoldsSealedBytesInTheDatabase: with the store on PostgreSQL a held reply
// leaves no file under DATA/quarantine; its bytes are in the database, sealed (neither a phrase
// of the message nor its envelope in clear), and quarantine show opens them (the envelope).
func TestQuarantineOnPostgresHoldsSealedBytesInTheDatabase(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.DSN(pg.NewDatabase(t))
	inst, cfg, file := pgNode(t, dsn, nil)
	id := holdReply(t, inst, file)
	var left []string
	filepath.WalkDir(quarantineDir(cfg), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("files under DATA/quarantine with the store on PostgreSQL: %v", left)
	}
	raw := storedHeld(t, dsn, id)
	for _, clear := range []string{heldPhrase, "new payee", "alice@example.com", "support@bank.example"} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Fatalf("the database holds %q of the held reply in clear", clear)
		}
	}
	if code, show, errOut := runCLI(t, "", "quarantine", "show", "-config", file, id); code != 0 || !strings.Contains(show, heldEnvelope) {
		t.Fatalf("quarantine show: %d\n%s\n%s", code, show, errOut)
	}
}

// TestQuarantineTwoNodesReleaseOnTheOther: two nodes, each with its own data directory, share one
// PostgreSQL database and the quarantine key. A reply node A holds is listed and released with
// node B's CLI, and node B delivers it to its own desk, marked released; node A's desk gets
// nothing, and the bytes are gone from the database once delivered.
func TestQuarantineTwoNodesReleaseOnTheOther(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.DSN(pg.NewDatabase(t))
	a, cfgA, fileA := pgNode(t, dsn, nil)
	id := holdReply(t, a, fileA)
	key, err := keys.DataDir(cfgA.Data).HeldKey()
	if err != nil {
		t.Fatal(err)
	}
	// A stops, so that only B's release loop can deliver what B releases.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, cfgB, fileB := pgNode(t, dsn, key)
	if code, show, errOut := runCLI(t, "", "quarantine", "show", "-config", fileB, id); code != 0 || !strings.Contains(show, heldEnvelope) {
		t.Fatalf("node B's quarantine show of A's held reply: %d\n%s\n%s", code, show, errOut)
	}
	if code, _, errOut := runCLI(t, "", "quarantine", "release", "-config", fileB, "-reason", "checked with the customer by phone", id); code != 0 {
		t.Fatalf("node B's quarantine release: %d %s", code, errOut)
	}
	desk, err := waitForMaildir(cfgB.Inbound.Delivery.Maildir, 1, 3*releaseInterval)
	if err != nil {
		t.Fatal(err)
	}
	d := mime.ToCRLF(desk[0])
	if !bytes.HasPrefix(d, []byte("Sealpost-Released:")) || !strings.HasPrefix(mime.HeaderValue(d, "Sealpost-Verdict"), "unsigned") || !bytes.Contains(d, []byte(heldPhrase)) {
		t.Fatalf("node B's desk got:\n%s", d)
	}
	if files, _ := filepath.Glob(filepath.Join(cfgA.Inbound.Delivery.Maildir, "new", "*")); len(files) != 0 {
		t.Fatalf("node A's desk got %d messages", len(files))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, m, err := b.inbound.held.Get(context.Background(), id)
		if err == nil && m == nil && h.Released {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after delivery on node B: %+v %v %v; want released and no bytes", h, m, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
