package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/logtest"
	"github.com/sealpost/sealpost/keys"
)

// bankPKIScript issues, with openssl, what a bank's own PKI gives sealpost: an issuing CA, the
// signer as PKCS#12 (password in pass.txt), the support identity and the TSA as PEM certificate and
// key, and a support certificate made for the wrong role (no keyEncipherment).
const bankPKIScript = `set -e
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -subj "/CN=Example Bank Issuing CA/O=Example Bank AG" \
  -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
issue() { # name, key spec, extensions
  openssl req -new -newkey $2 -nodes -keyout $1.key -subj "/CN=Example Bank $1/O=Example Bank AG" -out $1.csr 2>/dev/null
  printf "$3" > $1.ext
  openssl x509 -req -in $1.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile $1.ext -out $1.pem 2>/dev/null
}
issue signer rsa:2048 'subjectAltName=email:statements@bank.example,email:otp@bank.example,email:support@bank.example\nkeyUsage=critical,digitalSignature,nonRepudiation\nextendedKeyUsage=emailProtection\n'
issue support rsa:2048 'subjectAltName=email:support@bank.example\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=emailProtection\n'
issue tsa 'ec -pkeyopt ec_paramgen_curve:P-256' 'keyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n'
issue wrong rsa:2048 'subjectAltName=email:support@bank.example\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n'
printf 's3cret\n' > pass.txt
openssl pkcs12 -export -inkey signer.key -in signer.pem -certfile ca.pem -out signer.p12 -passout file:pass.txt
`

func bankPKI(t *testing.T) string {
	t.Helper()
	interop.Tool(t, "openssl")
	dir := t.TempDir()
	cmd := exec.Command("bash", "-c", bankPKIScript)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("making the bank's PKI with openssl: %v\n%s", err, out)
	}
	return dir
}

// writeConfig writes a configuration file for a gateway on free loopback ports.
func writeConfig(t *testing.T, cfg map[string]any) string {
	t.Helper()
	cfg["smtp"] = map[string]any{"addr": "127.0.0.1:0"}
	cfg["ops"] = map[string]any{"enabled": true, "addr": "127.0.0.1:0"}
	if a, ok := cfg["api"].(map[string]any); ok {
		a["addr"] = "127.0.0.1:0"
	} else {
		cfg["api"] = map[string]any{"addr": "127.0.0.1:0"}
	}
	if in, ok := cfg["inbound"].(map[string]any); ok {
		in["listener"] = map[string]any{"addr": "127.0.0.1:0"}
	} else {
		cfg["inbound"] = map[string]any{"listener": map[string]any{"addr": "127.0.0.1:0"}}
	}
	b, _ := json.Marshal(cfg)
	f := filepath.Join(t.TempDir(), "sealpost.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestServeWithAConfigurationNeedsTheBanksIdentities: a configuration file is a deployment. Without
// the bank's identities serve refuses to start, names the command that installs them, and writes
// nothing: no development CA appears in what would be the production data directory.
func TestServeWithAConfigurationNeedsTheBanksIdentities(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	file := writeConfig(t, map[string]any{"data": data})
	code, _, stderr := runCLI(t, "", "serve", "-config", file)
	for _, want := range []string{"signer: no signer identity", "keys import-identity signer", "support: no support identity", "tsa: no tsa identity"} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Fatalf("serve without the bank's identities: code %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("serve wrote the data directory before refusing: %v", err)
	}

	// The same for the hardened configuration shipped for systemd, pointed at a fresh directory.
	data = filepath.Join(t.TempDir(), "deploy-data")
	code, _, stderr = runCLI(t, "", "serve", "-config", "../../deploy/sealpost.json", "-data", data)
	if code != 1 || strings.Contains(stderr, "created development") {
		t.Fatalf("serve -config deploy/sealpost.json: code %d\n%s", code, stderr)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("serve -config deploy/sealpost.json wrote %s before refusing: %v", data, err)
	}
}

// TestServeValidatesBeforeWriting: even with development identities allowed, a configuration that
// cannot run (here a DKIM key that is not there) is refused before the identities are created.
func TestServeValidatesBeforeWriting(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	file := writeConfig(t, map[string]any{"data": data, "identities": "development",
		"dkim": map[string]any{"keys": []any{map[string]any{"domain": "bank.example", "selector": "s1", "key_file": filepath.Join(t.TempDir(), "missing.key")}}}})
	code, _, stderr := runCLI(t, "", "serve", "-config", file)
	if code != 1 || !strings.Contains(stderr, "dkim") {
		t.Fatalf("serve with a missing DKIM key: code %d\n%s", code, stderr)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("serve created %s before refusing a configuration that cannot run", data)
	}
}

// TestServeRefusesDevelopmentIdentitiesInProduction: identities that keys init made are refused by a
// configuration that does not ask for development identities, naming each.
func TestServeRefusesDevelopmentIdentitiesInProduction(t *testing.T) {
	data := initData(t)
	file := writeConfig(t, map[string]any{"data": data})
	code, _, stderr := runCLI(t, "", "serve", "-config", file)
	for _, role := range []string{"signer", "support", "tsa"} {
		if code != 1 || !strings.Contains(stderr, role+": "+filepath.Join(data, role+".pem")+" is a development identity") {
			t.Fatalf("serve on development identities with a configuration: code %d, nothing about %s:\n%s", code, role, stderr)
		}
	}
	code, stdout, stderr := runCLI(t, "", "serve", "-check", "-config", file)
	if code != 1 || stdout != "" || strings.Count(stderr, "is a development identity") != 3 {
		t.Fatalf("serve -check: code %d, stdout %q\n%s", code, stdout, stderr)
	}
}

// TestDevelopmentIdentitiesAreAnnounced: a gateway on development identities says so at every
// start (WARN), in /readyz's body and in the sealpost_development_identities gauge.
func TestDevelopmentIdentitiesAreAnnounced(t *testing.T) {
	logs := &logtest.Buffer{}
	inst, _, _, _ := testInstanceLogging(t, nil, slog.New(slog.NewTextHandler(logs, nil)))
	if !strings.Contains(logs.String(), `level=WARN msg="running on development identities`) {
		t.Fatalf("no WARN about development identities:\n%s", logs)
	}
	base := "http://" + inst.ops.Addr().String()
	if code, body := httpGet(t, base+"/readyz"); code != 200 || !strings.Contains(body, `"identities": "development: signer, tsa, support`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if _, metrics := httpGet(t, base+"/metrics"); !strings.Contains(metrics, "sealpost_development_identities 1") {
		t.Fatal("sealpost_development_identities is not 1")
	}
}

// TestBanksIdentitiesFromOpenSSL: the bank's own identities, issued by an openssl CA, install with
// keys import-identity (PKCS#12 and PEM), a certificate for another role is refused with its
// reasons, serve -check passes, and the gateway runs on them without a word about development:
// openssl verifies a statement it sent against the bank's CA.
func TestBanksIdentitiesFromOpenSSL(t *testing.T) {
	pki := bankPKI(t)
	in := func(name string) string { return filepath.Join(pki, name) }
	data := filepath.Join(t.TempDir(), "data")
	for _, tt := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"WrongKeyUsage", []string{"support", in("wrong.pem"), in("wrong.key")}, 1, "does not allow key encipherment"},
		{"TSAAsSigner", []string{"signer", in("tsa.pem"), in("tsa.key")}, 1, "does not allow email protection"},
		{"PKCS12WithoutPassword", []string{"signer", in("signer.p12")}, 1, "PKCS#12 password"},
		{"UnknownRole", []string{"ca", in("signer.p12")}, 2, "signer"},
		{"SignerFromPKCS12", []string{"signer", in("signer.p12"), "-pass-file", in("pass.txt")}, 0, "installed the signer identity"},
		{"SupportFromPEM", []string{"support", in("support.key"), in("support.pem"), in("ca.pem")}, 0, "installed the support identity"},
		{"TSAFromPEM", []string{"tsa", in("tsa.pem"), in("tsa.key")}, 0, "installed the tsa identity"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", append([]string{"keys", "import-identity", "-data", data}, tt.args...)...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.out) {
				t.Fatalf("code %d (want %d), stdout %q, stderr %q (want %q)", code, tt.code, stdout, stderr, tt.out)
			}
		})
	}
	// alice's certificate comes from a CA the bank trusts for customers.
	custCA, err := keys.NewDevCA("customers' CA")
	if err != nil {
		t.Fatal(err)
	}
	alice, err := custCA.NewDevCustomer("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(in("cust-ca.pem"), keys.EncodeCertificates(custCA.Certificate()), 0o644)
	aliceCert, aliceKey := writeIdentity(t, pki, "alice", alice)
	for _, args := range [][]string{{"-root", in("cust-ca.pem")}, {aliceCert}} {
		if code, _, stderr := runCLI(t, "", append([]string{"keys", "import", "-data", data}, args...)...); code != 0 {
			t.Fatalf("keys import %v: %s", args, stderr)
		}
	}
	file := writeConfig(t, map[string]any{"data": data})
	if code, stdout, stderr := runCLI(t, "", "serve", "-check", "-config", file); code != 0 || !strings.Contains(stdout, "OK (data "+data+", identities bank)") {
		t.Fatalf("serve -check: %d %q %q", code, stdout, stderr)
	}

	cfg, err := loadConfig(file, "")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	inst, err := startInstance(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if strings.Contains(logs.String(), "development") {
		t.Fatalf("a gateway on the bank's identities talks of development ones:\n%s", logs)
	}
	base := "http://" + inst.ops.Addr().String()
	if _, metrics := httpGet(t, base+"/metrics"); !strings.Contains(metrics, "sealpost_development_identities 0") {
		t.Fatal("sealpost_development_identities is not 0")
	}
	if res := submit(t, inst, "statements@bank.example", []string{"alice@example.com"}, cliMessage); res.Err != nil {
		t.Fatalf("statement: %v", res.Err)
	}
	msgs, err := waitForMaildir(cfg.Delivery.Maildir, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	out := interop.Run(t, msgs[0], "bash", "-o", "pipefail", "-c", "openssl cms -decrypt -recip "+aliceCert+" -inkey "+aliceKey+
		" | openssl cms -verify -purpose smimesign -CAfile "+in("ca.pem"))
	if !bytes.Contains(out, []byte("Hello")) {
		t.Fatalf("openssl did not open the statement:\n%s", out)
	}
}

// TestKeysCSRThenImport: keys csr makes the key in the data directory and a request the bank's CA
// (openssl here) signs; importing the certificate without a key pairs it with the pending key.
func TestKeysCSRThenImport(t *testing.T) {
	pki := bankPKI(t)
	data := filepath.Join(t.TempDir(), "data")
	code, csr, stderr := runCLI(t, "", "keys", "csr", "support", "-data", data, "-subject", "/CN=Example Bank support/O=Example Bank AG", "-email", "support@bank.example")
	if code != 0 || !strings.HasPrefix(csr, "-----BEGIN CERTIFICATE REQUEST-----") {
		t.Fatalf("keys csr: %d %q %q", code, csr, stderr)
	}
	if fi, err := os.Stat(filepath.Join(data, "support.pending.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pending key: %v", err)
	}
	os.WriteFile(filepath.Join(pki, "req.csr"), []byte(csr), 0o600)
	interop.Run(t, nil, "bash", "-c", "cd "+pki+" && openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile support.ext -out issued.pem 2>/dev/null")
	code, stdout, stderr := runCLI(t, "", "keys", "import-identity", "-data", data, "support", filepath.Join(pki, "issued.pem"), filepath.Join(pki, "ca.pem"))
	if code != 0 || !strings.Contains(stdout, "installed the support identity") {
		t.Fatalf("import of the issued certificate: %d %q %q", code, stdout, stderr)
	}
	if code, out, _ := runCLI(t, "", "keys", "export", "-data", data, "support"); code != 0 || !strings.Contains(out, "BEGIN CERTIFICATE") {
		t.Fatalf("export support: %d", code)
	}
}

// TestKeysImportRefusesUnusable: keys import refuses, naming the file and the reason, certificates
// that cannot be used, unless -force.
func TestKeysImportRefusesUnusable(t *testing.T) {
	data := initData(t)
	ca, err := keys.DataDir(data).Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, keys.EncodeCertificates(ca.Certificate()), 0o644)
	text := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(text, []byte("Dear team, here is the certificate you asked for.\n"), 0o644)
	// Customers' certificates as a CA would issue them by mistake, made with openssl from the
	// development CA: expired, without an email address, with an RSA-1024 key.
	interop.Tool(t, "openssl")
	certs := t.TempDir()
	script := `set -e
mk() { # name, key size, days, extensions
  openssl req -new -newkey rsa:$2 -nodes -keyout $1.key -subj /CN=$1 -out $1.csr 2>/dev/null
  printf "$4" > $1.ext
  openssl x509 -req -in $1.csr -CA ` + filepath.Join(data, "ca.pem") + ` -CAkey ` + filepath.Join(data, "ca.key") + ` $3 -extfile $1.ext -out $1.pem 2>/dev/null
}
mk expired 2048 "-days -1" 'subjectAltName=email:old@example.com\nkeyUsage=keyEncipherment\nextendedKeyUsage=emailProtection\n'
mk noemail 2048 "-days 30" 'keyUsage=keyEncipherment\nextendedKeyUsage=emailProtection\n'
mk weak 1024 "-days 30" 'subjectAltName=email:weak@example.com\nkeyUsage=keyEncipherment\nextendedKeyUsage=emailProtection\n'
`
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = certs
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	for _, tt := range []struct{ name, file, says string }{
		{"CAWithoutRoot", caFile, "CA certificate"},
		{"TextFile", text, "no certificate or OpenPGP key found"},
		{"Expired", filepath.Join(certs, "expired.pem"), "expired"},
		{"NoEmailAddress", filepath.Join(certs, "noemail.pem"), "email address"},
		{"RSA1024", filepath.Join(certs, "weak.pem"), "1024"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", "keys", "import", "-data", data, tt.file)
			if code != 1 || stdout != "" || !strings.Contains(stderr, tt.file) || !strings.Contains(stderr, tt.says) {
				t.Fatalf("code %d, stdout %q, stderr %q; want 1 naming %s and %q", code, stdout, stderr, tt.file, tt.says)
			}
		})
	}
	for _, f := range []string{caFile, filepath.Join(certs, "expired.pem")} {
		if code, _, stderr := runCLI(t, "", "keys", "import", "-force", "-data", data, f); code != 0 {
			t.Fatalf("keys import -force %s: %s", f, stderr)
		}
	}
}

// TestPrintConfigOfAFile: serve -print-config -config FILE prints what FILE runs: its values, every
// default filled in, and identities "bank" since it does not ask for development ones.
func TestPrintConfigOfAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(f, []byte(`{"data": "/var/lib/sealpost", "queue": {"workers": 8}}`), 0o600)
	code, stdout, stderr := runCLI(t, "", "serve", "-print-config", "-config", f)
	if code != 0 {
		t.Fatalf("serve -print-config -config: %d %s", code, stderr)
	}
	var printed Config
	if err := json.Unmarshal([]byte(stdout), &printed); err != nil {
		t.Fatal(err)
	}
	if printed.Queue.Workers != 8 || printed.Identities != identitiesBank || printed.Delivery.Maildir != "/var/lib/sealpost/outbox" ||
		len(printed.Gateway.Rules) != 3 || printed.Gateway.DefaultClass != "unclassified" || printed.SMTP.MaxRecipients != 100 {
		t.Fatalf("printed configuration of the file:\n%s", stdout)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"queue": {"workers": "many"}}`), 0o600)
	if code, stdout, stderr := runCLI(t, "", "serve", "-print-config", "-config", bad); code != 1 || stdout != "" || !strings.Contains(stderr, "queue.workers") {
		t.Fatalf("serve -print-config of a bad file: %d %q %q", code, stdout, stderr)
	}
}

// TestCheckChangesNothing: serve -check on the embedded defaults and a fresh data directory says the
// first start would create development identities, and creates nothing itself.
func TestCheckChangesNothing(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	code, stdout, stderr := runCLI(t, "", "serve", "-check", "-data", data)
	if code != 0 || !strings.Contains(stdout, "the embedded defaults: OK") || !strings.Contains(stdout, "first start creates development identities in "+data+": signer, support, tsa") {
		t.Fatalf("serve -check: %d %q %q", code, stdout, stderr)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("serve -check created %s", data)
	}
	// A rule whose sender the signing certificate does not name is reported, with its path.
	data = initData(t)
	f := writeConfig(t, map[string]any{"data": data, "identities": "development",
		"gateway": map[string]any{"rules": []any{map[string]any{"sender": "alerts@bank.example", "class": "otp"}, map[string]any{"sender": "@bank.example", "class": "statement"}, map[string]any{"sender": "otp@bank.example", "class": "otp"}}}})
	code, _, stderr = runCLI(t, "", "serve", "-check", "-config", f)
	for _, want := range []string{"gateway.rules[0].sender: alerts@bank.example is not named in the signing certificate", "gateway.rules[2].sender: otp@bank.example is already matched by rules[1]"} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Fatalf("serve -check: %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}
}

// TestLogFormatJSON: log.format json makes every log line a JSON object, for the bank's pipeline.
func TestLogFormatJSON(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(LogConfig{Format: "json"}.handler(&b, nil))
	cfg := defaultConfig()
	cfg.Data, cfg.SMTP.Addr, cfg.Inbound.Listener.Addr, cfg.Ops.Addr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.API.Addr = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	inst, err := startInstance(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	inst.Close()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["level"] == nil || m["msg"] == nil {
			t.Fatalf("not a JSON log line: %q (%v)", l, err)
		}
	}
	if len(lines) < 2 {
		t.Fatalf("only %d log lines", len(lines))
	}
}

// TestServeCheckFindsABadAPICertificate: serve -check loads the API's TLS certificate and key as
// the start would, and names api.tls when they do not load.
func TestServeCheckFindsABadAPICertificate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "api.pem")
	os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600)
	file := writeConfig(t, map[string]any{"identities": "development", "data": filepath.Join(dir, "data"),
		"api": map[string]any{"tls": map[string]any{"cert_file": bad, "key_file": bad}}})
	code, stdout, stderr := runCLI(t, "", "serve", "-check", "-config", file)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "api.tls") {
		t.Fatalf("serve -check with a bad API certificate: code %d, stdout %q\n%s", code, stdout, stderr)
	}
}

// TestServeRefusesABrokenTemplateOverride: a template under DATA/templates that does not parse
// (or names no template) stops serve -check and serve, naming the file.
func TestServeRefusesABrokenTemplateOverride(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(data, "templates"), 0o700); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(data, "templates", "notice.en.txt")
	os.WriteFile(broken, []byte(`{{define "subject"}}Hello {{.Bank{{end}}`), 0o600)
	file := writeConfig(t, map[string]any{"identities": "development", "data": data})
	for _, args := range [][]string{{"serve", "-check", "-config", file}, {"serve", "-config", file}} {
		code, _, stderr := runCLI(t, "", args...)
		if code != 1 || !strings.Contains(stderr, broken) {
			t.Fatalf("%v with a broken template: code %d\n%s", args, code, stderr)
		}
	}
	os.Remove(broken)
	typo := filepath.Join(data, "templates", "notcie.en.txt")
	os.WriteFile(typo, []byte("x"), 0o600)
	if code, _, stderr := runCLI(t, "", "serve", "-check", "-config", file); code != 1 || !strings.Contains(stderr, typo) {
		t.Fatalf("serve -check with a misnamed template: code %d\n%s", code, stderr)
	}
}
