package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/keys"
)

// TestMain lets the test binary be the sealpost command inside testscript scripts (copied into
// $PATH under that name, it runs main), and removes the binary the process tests share.
func TestMain(m *testing.M) {
	testscript.Main(removeBinDir{m}, map[string]func(){"sealpost": main})
}

// removeBinDir runs the tests, then stops the private PostgreSQL if one started and removes the
// directory testBinary built sealpost into.
type removeBinDir struct{ m *testing.M }

func (r removeBinDir) Run() int {
	code := pgtest.Main(r.m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}

// TestScripts runs the CLI scripts in testdata/script: each is a txtar archive whose commands run
// the real sealpost (the same run as the binary) in a fresh work directory. $CORPUS is the inbound
// corpus (testdata/inbound at the module root), whose keys and messages the verify scripts use.
func TestScripts(t *testing.T) {
	corpus, err := filepath.Abs(corpus)
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			e.Setenv("CORPUS", corpus)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"crlf":     cmdCRLF,
			"customer": cmdCustomer,
			"exits":    cmdExits,
			"freeport": cmdFreeport,
			"expand":   cmdExpand,
			"sendmail": cmdSendmail,
			"setmatch": cmdSetmatch,
			"waitfor":  cmdWaitfor,
		},
	})
}

// cmdExits: exits N COMMAND ARGS… — runs COMMAND like exec and fails unless its exit status is N
// (exec and ! exec tell zero from non-zero only; sealpost's 1 and 2 mean different things).
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N COMMAND ARGS…")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s: exit status %d, want %d", args[1], got, want)
	}
}

// cmdCRLF: crlf FILE… — rewrites each FILE with CRLF line ends, as mail is on the wire (txtar
// archives hold LF only).
func cmdCRLF(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: crlf FILE…")
	}
	for _, f := range args {
		ts.Check(os.WriteFile(ts.MkAbs(f), []byte(toCRLF(ts.ReadFile(f))), 0o600))
	}
}

func toCRLF(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// cmdCustomer: customer DATA ADDRESS NAME — writes NAME.pem (certificate) and NAME.key (PEM key)
// for a customer certificate that DATA's development CA issues to ADDRESS.
func cmdCustomer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: customer DATA ADDRESS NAME")
	}
	ca, err := keys.DataDir(ts.MkAbs(args[0])).Identity("ca")
	ts.Check(err)
	id, err := ca.NewDevCustomer(args[1])
	ts.Check(err)
	der, err := x509.MarshalPKCS8PrivateKey(id.Signer)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[2]+".pem"), keys.EncodeCertificates(id.Certificate()), 0o644))
	ts.Check(os.WriteFile(ts.MkAbs(args[2]+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
}

// cmdFreeport: freeport VAR… — sets each VAR to a loopback address with a port free just now.
func cmdFreeport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: freeport VAR…")
	}
	for _, v := range args {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		ts.Setenv(v, l.Addr().String())
		l.Close()
	}
}

// cmdExpand: expand IN OUT — writes IN to OUT with $VAR and ${VAR} replaced from the script's
// environment, for configuration files that name the addresses freeport chose.
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: expand IN OUT")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(os.Expand(ts.ReadFile(args[0]), ts.Getenv)), 0o600))
}

// cmdSendmail: [!] sendmail ADDR FROM TO FILE — sends FILE over SMTP (net/smtp, no TLS) to the
// listener at ADDR; with ! the server must refuse it, and the reply is printed on stdout.
func cmdSendmail(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 4 {
		ts.Fatalf("usage: sendmail ADDR FROM TO FILE")
	}
	msg := toCRLF(ts.ReadFile(args[3]))
	err := smtp.SendMail(args[0], nil, args[1], []string{args[2]}, []byte(msg))
	switch {
	case err != nil && !neg:
		ts.Fatalf("sendmail: %v", err)
	case err == nil && neg:
		ts.Fatalf("sendmail: the server accepted the message")
	case err != nil:
		ts.Logf("refused: %v", err)
		ts.Stdout().Write([]byte(err.Error() + "\n"))
	}
}

// cmdSetmatch: setmatch VAR REGEXP — sets VAR to the first group of REGEXP's first match in the
// last command's stdout (a queue or quarantine ID the next commands name).
func cmdSetmatch(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: setmatch VAR REGEXP")
	}
	m := regexp.MustCompile("(?m)" + args[1]).FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("no match for %s in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

// cmdWaitfor: waitfor ADDR — waits up to 30 seconds until something listens on ADDR (a serve
// started in the background).
func cmdWaitfor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfor ADDR")
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", args[0], time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("nothing listens on %s: %v", args[0], err)
		}
	}
}
