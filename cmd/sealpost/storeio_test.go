package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/inbound"

	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/store"
)

// customerCert writes a development certificate for addr, issued by data's CA, and returns the
// file and its fingerprint.
func customerCert(t *testing.T, data, addr string) (string, string) {
	t.Helper()
	ca, err := keys.DataDir(data).Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.NewDevCustomer(addr)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "customer.pem")
	if err := os.WriteFile(f, keys.EncodeCertificates(c.Certificate()), 0o644); err != nil {
		t.Fatal(err)
	}
	return f, keys.CertFingerprint(c.Certificate())
}

// configData is the data directory of a configuration pgConfigFile wrote, made a data directory
// with development identities.
func configData(t *testing.T, configFile string) string {
	t.Helper()
	data := filepath.Join(filepath.Dir(configFile), "data")
	if code, _, stderr := runCLI(t, "", "keys", "init", "-data", data); code != 0 {
		t.Fatalf("keys init: %s", stderr)
	}
	return data
}

// TestStoreExportImportPostgres: a node's SQLite state moves into PostgreSQL with store export and
// store import; importing again adds nothing; PostgreSQL's export equals SQLite's; a truncated or
// foreign file is refused, naming the problem, and imports nothing.
func TestStoreExportImportPostgres(t *testing.T) {
	data := initData(t)
	cert, fp := customerCert(t, data, "alice@example.com")
	if code, _, stderr := runCLI(t, "", "keys", "import", "-data", data, cert); code != 0 {
		t.Fatalf("keys import: %s", stderr)
	}
	code, export, stderr := runCLI(t, "", "store", "export", "-data", data)
	// Two records: alice's registration and her certificate in the shared recipient directory.
	const end = `{"end":{"records":2}}` + "\n"
	if code != 0 || !strings.HasPrefix(export, `{"sealpost-store-export":1}`+"\n") || !strings.HasSuffix(export, end) || !strings.Contains(export, `{"recipient_key":{"method":"smime","fingerprint":"`+fp+`"`) {
		t.Fatalf("store export: %d %q %s", code, export, stderr)
	}
	file := filepath.Join(t.TempDir(), "export.jsonl")
	os.WriteFile(file, []byte(export), 0o600)

	pg := pgtest.Start(t)
	db := pg.NewDatabase(t)
	cfg := pgConfigFile(t, pg.PasswordDSN(db, pgtest.Password))
	configData(t, cfg)
	for name, bad := range map[string]string{
		"truncated": export[:len(export)-len(end)],
		"foreign":   "From: someone\r\n\r\nnot an export\r\n",
	} {
		f := filepath.Join(t.TempDir(), name)
		os.WriteFile(f, []byte(bad), 0o600)
		code, _, stderr := runCLI(t, "", "store", "import", "-config", cfg, f)
		if code != 1 || !strings.Contains(stderr, "not a valid sealpost store export") || !strings.Contains(stderr, "nothing was imported") {
			t.Fatalf("store import of a %s file: %d %q", name, code, stderr)
		}
	}
	if code, out, _ := runCLI(t, "", "store", "export", "-config", cfg); code != 0 || !strings.HasSuffix(out, `{"end":{"records":0}}`+"\n") {
		t.Fatalf("after refused imports PostgreSQL exports %d %q", code, out)
	}
	code, out, stderr := runCLI(t, "", "store", "import", "-config", cfg, file)
	if code != 0 || !strings.HasPrefix(out, "added 1 registrations, 1 recipient keys, 0 threads") {
		t.Fatalf("store import: %d %q %s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, export, "store", "import", "-config", cfg, "-")
	if code != 0 || !strings.HasPrefix(out, "added 0 registrations, 0 recipient keys, 0 threads, 0 thread messages, 0 held messages (0 with their bytes), 0 capabilities") {
		t.Fatalf("store import again (stdin): %d %q %s", code, out, stderr)
	}
	if code, out, stderr := runCLI(t, "", "store", "export", "-config", cfg); code != 0 || out != export {
		t.Fatalf("PostgreSQL's export %d %s\n%q\nwant SQLite's\n%q", code, stderr, out, export)
	}
	st, err := store.OpenPostgres(context.Background(), store.PostgresConfig{DSN: pg.DSN(db), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if regs, err := st.Registrations(context.Background(), "alice@example.com"); err != nil || len(regs) != 1 || regs[0].Fingerprint != fp {
		t.Fatalf("PostgreSQL registrations of alice: %+v, %v", regs, err)
	}
	if k, err := st.RecipientKey(context.Background(), store.MethodSMIME, fp); err != nil || !bytes.Contains(k.Data, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("PostgreSQL's copy of alice's certificate: %+v, %v", k, err)
	}
	missing := filepath.Join(t.TempDir(), "nonexistent")
	if code, _, stderr := runCLI(t, "", "store", "export", "-data", missing); code != 1 || !strings.Contains(stderr, "does not exist") {
		t.Fatalf("store export -data missing: %d %q", code, stderr)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("store export created the missing data directory")
	}
	if code, _, _ := runCLI(t, "", "store", "import", "-config", cfg); code != 2 {
		t.Fatalf("store import without FILE: exit %d; want a usage error", code)
	}
}

// TestKeysConfiguredStoreSharedByNodes: keys import, list and remove with -config work on the
// configured PostgreSQL, not the data directory's SQLite: a key imported and registered through
// node A is in node B's store, and node B's keys remove takes it away for node A too.
func TestKeysConfiguredStoreSharedByNodes(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.NewDatabase(t)
	nodeA := pgConfigFile(t, pg.PasswordDSN(db, pgtest.Password))
	nodeB := pgConfigFile(t, pg.PasswordDSN(db, pgtest.Password))
	dataA, dataB := configData(t, nodeA), configData(t, nodeB)
	cert, fp := customerCert(t, dataA, "alice@example.com")
	if code, out, stderr := runCLI(t, "", "keys", "import", "-config", nodeA, cert); code != 0 || !strings.Contains(out, "registered certificate "+fp[:16]+" for alice@example.com") {
		t.Fatalf("keys import -config A: %d %q %s", code, out, stderr)
	}
	for _, data := range []string{dataA, dataB} {
		if _, err := os.Stat(filepath.Join(data, storeFile)); err == nil {
			t.Fatalf("keys with -config on PostgreSQL made a SQLite store in %s", data)
		}
	}
	registered := regexp.MustCompile(`(?m)^alice@example\.com +S/MIME +registered +` + fp[:16] + ` +registered, usable `)
	if _, list, _ := runCLI(t, "", "keys", "list", "-config", nodeA); !registered.MatchString(list) {
		t.Fatalf("keys list -config A does not show alice registered:\n%s", list)
	}
	// Node B's own development CA did not issue alice's certificate: there it is registered but
	// does not chain to a trusted root.
	registeredOnB := regexp.MustCompile(`(?m)^alice@example\.com +S/MIME +registered +` + fp[:16] + ` +registered, `)
	if _, list, _ := runCLI(t, "", "keys", "list", "-config", nodeB); !registeredOnB.MatchString(list) {
		t.Fatalf("keys list -config B does not show alice's key imported on A:\n%s", list)
	}
	for _, data := range []string{dataA, dataB} {
		if ents, _ := os.ReadDir(filepath.Join(data, "recipients")); len(ents) != 0 {
			t.Fatalf("keys import -config wrote %d files under %s/recipients: the key belongs in the store", len(ents), data)
		}
	}
	// The key and its registration are in node B's store: its keys remove finds and removes both.
	code, out, stderr := runCLI(t, "", "keys", "remove", "-config", nodeB, "alice@example.com")
	if code != 0 || !strings.Contains(out, "removed S/MIME "+fp[:16]+" of alice@example.com") {
		t.Fatalf("keys remove -config B: %d %q %s", code, out, stderr)
	}
	if _, list, _ := runCLI(t, "", "keys", "list", "-config", nodeA); strings.Contains(list, fp[:16]) {
		t.Fatalf("after node B's keys remove, keys list -config A still lists the key:\n%s", list)
	}
	// Without -config the keys commands still use the data directory's own SQLite.
	if code, _, stderr := runCLI(t, "", "keys", "import", "-data", dataA, cert); code != 0 {
		t.Fatalf("keys import -data: %s", stderr)
	}
	if _, list, _ := runCLI(t, "", "keys", "list", "-config", nodeA); registered.MatchString(list) {
		t.Fatalf("keys import -data registered in PostgreSQL:\n%s", list)
	}
	if _, list, _ := runCLI(t, "", "keys", "list", "-data", dataA); !registered.MatchString(list) {
		t.Fatalf("keys list -data does not show the SQLite registration:\n%s", list)
	}
}

// TestStoreExportTakesHeldFilesToPostgres: a single node's quarantine keeps held bytes as files;
// store export carries them (sealed, as they are), so that after store import a node on PostgreSQL
// with the same held.key shows the held reply, and the export holds no word of it in clear.
func TestStoreExportTakesHeldFilesToPostgres(t *testing.T) {
	inst, cfg, _, _ := testInstance(t, func(c *Config) { c.Inbound.OnUnsigned = inbound.ActionQuarantine })
	b, _ := json.Marshal(map[string]any{"identities": "development", "data": cfg.Data, "inbound": map[string]any{"on_unsigned": inbound.ActionQuarantine}})
	single := filepath.Join(t.TempDir(), "single.json")
	if err := os.WriteFile(single, b, 0o600); err != nil {
		t.Fatal(err)
	}
	id := holdReply(t, inst, single)
	code, export, stderr := runCLI(t, "", "store", "export", "-config", single)
	if code != 0 || !strings.Contains(export, `{"held_blob":{"id":"`+base64.StdEncoding.EncodeToString([]byte(id))+`"`) {
		t.Fatalf("store export of a node holding %s: %d %s\n%.3000s", id, code, stderr, export)
	}
	if strings.Contains(export, heldPhrase) || strings.Contains(export, base64.StdEncoding.EncodeToString([]byte(heldPhrase))) {
		t.Fatal("the export holds the held reply in clear")
	}
	file := filepath.Join(t.TempDir(), "export.jsonl")
	os.WriteFile(file, []byte(export), 0o600)

	pg := pgtest.Start(t)
	heldKey, err := os.ReadFile(filepath.Join(cfg.Data, keys.HeldKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	_, _, shared := pgNode(t, pg.PasswordDSN(pg.NewDatabase(t), pgtest.Password), heldKey)
	if code, out, stderr := runCLI(t, "", "store", "import", "-config", shared, file); code != 0 || !strings.Contains(out, "1 held messages (1 with their bytes)") {
		t.Fatalf("store import: %d %q %s", code, out, stderr)
	}
	if code, out, stderr := runCLI(t, "", "quarantine", "show", "-config", shared, id); code != 0 || !strings.Contains(out, heldEnvelope) {
		t.Fatalf("quarantine show on PostgreSQL after the import: %d %q %s", code, out, stderr)
	}
}
