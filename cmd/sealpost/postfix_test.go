package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/queue"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/logtest"
	"github.com/sealpost/sealpost/keys"
)

// postfixLimit bounds every wait on Postfix (start, delivery, stop): a hang guard, not a timing
// assertion. Postfix's own retry is set to seconds, so one transient refusal does not use it up.
const postfixLimit = 60 * time.Second

// postfixLifetime is master's -e: should the test binary die before its cleanups ran (a -timeout
// panic), the instance still ends by itself, its daemons with it.
const postfixLifetime = 5 * time.Minute

// TestPostfixRelaysToSealpost runs a private Postfix instance (its own configuration, queue and
// data directories, loopback ports only, no local delivery) in front of sealpost, in the two set-ups
// the README shows, and opens what comes out with openssl and gpg:
//   - relayhost: Postfix relays everything to sealpost, which writes its Maildir;
//   - content_filter: Postfix hands mail to sealpost, sealpost hands it back on Postfix's
//     re-injection listener, and Postfix delivers it to its next hop.
//
// In both, a keyless recipient's 550 from sealpost must come back to the sending application as
// Postfix's bounce; the recording sink stands for the bank's own mail hub that bounces go to.
func TestPostfixRelaysToSealpost(t *testing.T) {
	requirePostfix(t)
	msg := func(id string) []byte {
		return []byte("From: statements@bank.example\r\nTo: alice@example.com, carol@example.org\r\nSubject: Statement\r\n" +
			"Message-ID: <" + id + "@bank.example>\r\n\r\nYour balance is 1 234,56 EUR.\r\n")
	}
	to := []string{demoAlice, demoCarol, "bob@example.net"}

	t.Run("relayhost", func(t *testing.T) {
		hub := newRecordingSink(t)
		inst, cfg, alice, carol := postfixSealpost(t, nil)
		listen := freeAddr(t)
		startPostfix(t, postfixRelayhostMain(inst.Addr().String(), hub.addr), postfixSubmissionMaster(listen), listen)
		res := submitTo(t, listen, to, msg("postfix-relayhost"))
		if res.Err != nil || len(res.Refused) != 0 {
			t.Fatalf("Postfix refused the submission: %v %q %v", res.Err, res.Reply, res.Refused)
		}
		msgs, err := waitForMaildir(cfg.Delivery.Maildir, 2, postfixLimit)
		if err != nil {
			t.Fatal(err)
		}
		openWithPeers(t, cfg, alice, carol, msgs)
		checkBounce(t, hub)
	})

	t.Run("content_filter", func(t *testing.T) {
		next := newRecordingSink(t) // the bank's outbound path after re-injection, and its mail hub
		reinject := freeAddr(t)
		inst, cfg, alice, carol := postfixSealpost(t, func(c *Config) {
			hop := defaultSmarthost()
			hop.Addr, hop.TLS = reinject, queue.TLSNone
			c.Delivery = DeliveryConfig{Smarthost: &hop}
		})
		listen := freeAddr(t)
		mainCF := postfixContentFilterMain(inst.Addr().String()) + "relayhost = " + postfixNexthop(next.addr) + "\n"
		startPostfix(t, mainCF, postfixSubmissionMaster(listen)+postfixContentFilterMaster(reinject), listen, reinject)
		res := submitTo(t, listen, to, msg("postfix-content-filter"))
		if res.Err != nil || len(res.Refused) != 0 {
			t.Fatalf("Postfix refused the submission: %v %q %v", res.Err, res.Reply, res.Refused)
		}
		all, err := next.wait(3, postfixLimit)
		if err != nil {
			t.Fatal(err)
		}
		var msgs [][]byte
		for _, m := range all {
			if m.from != "" {
				msgs = append(msgs, m.data)
			}
		}
		openWithPeers(t, cfg, alice, carol, msgs)
		checkBounce(t, next)
		// The evidence log has, per recipient, Postfix's address and its 250 with its queue ID
		// (outcomes are gathered for a moment before they are appended).
		var delivered []*evidence.Delivery
		waitFor(t, "alice's and carol's delivery records", func() bool {
			delivered = nil
			for _, r := range evidenceRecords(t, cfg.Data) {
				if d := r.Delivery; d != nil && d.Outcome == "delivered" {
					delivered = append(delivered, d)
				}
			}
			return len(delivered) >= 2
		})
		for _, d := range delivered {
			if d.NextHop != reinject || d.Code != 250 || !strings.Contains(d.Reply, "queued as") {
				t.Errorf("delivery record %+v; want Postfix's address %s and its 250 queued as", d, reinject)
			}
		}
		if len(delivered) != 2 {
			t.Errorf("%d delivery records; want alice's and carol's", len(delivered))
		}
	})
}

// checkBounce waits for Postfix's bounce to the sending application at hub and checks that it
// names bob and carries sealpost's 550.
func checkBounce(t *testing.T, hub *recordingSink) {
	t.Helper()
	deadline := time.Now().Add(postfixLimit)
	for {
		all, _ := hub.wait(0, 0)
		for _, m := range all {
			if m.from == "" && slices.Equal(m.to, []string{"statements@bank.example"}) {
				if !bytes.Contains(m.data, []byte("bob@example.net")) || !bytes.Contains(m.data, []byte("550 5.7.1")) {
					t.Fatalf("the bounce lacks bob or sealpost's 550:\n%s", m.data)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no bounce to statements@bank.example within %v", postfixLimit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPostfixREADMEShowsTheTestedConfig: the Postfix configuration in the README is the one
// TestPostfixRelaysToSealpost runs, with the README's addresses.
func TestPostfixREADMEShowsTheTestedConfig(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, want := range []string{
		postfixRelayhostMain("127.0.0.1:2525", "mailhub.bank.internal:25"),
		postfixContentFilterMain("127.0.0.1:2525"),
		postfixContentFilterMaster("127.0.0.1:10026"),
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md lacks the tested Postfix configuration:\n%s", want)
		}
	}
}

// postfixRelayhostMain is main.cf for the relayhost set-up: every message goes to sealpost, but
// for mail to the bank's own domain (Postfix's bounces to the applications among it), which goes
// to the bank's mail hub: sealpost would refuse it, having no key for the bank's own addresses.
func postfixRelayhostMain(sealpost, hub string) string {
	return "relayhost = " + postfixNexthop(sealpost) + "\n" +
		"transport_maps = inline:{ bank.example=smtp:" + postfixNexthop(hub) + " }\n"
}

// postfixContentFilterMain is main.cf for the content_filter set-up.
func postfixContentFilterMain(sealpost string) string {
	return "content_filter = sealpost:" + postfixNexthop(sealpost) + "\n"
}

// postfixContentFilterMaster is master.cf for the content_filter set-up: the transport to
// sealpost, and the re-injection listener sealpost delivers to, which filters nothing again.
func postfixContentFilterMaster(reinject string) string {
	return `sealpost  unix  -       -       n       -       10      smtp
    -o smtp_send_xforward_command=yes
    -o disable_mime_output_conversion=yes
    -o smtp_generic_maps=
` + reinject + ` inet n  -       n       -       10      smtpd
    -o content_filter=
    -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
    -o smtpd_helo_restrictions=
    -o smtpd_client_restrictions=
    -o smtpd_sender_restrictions=
    -o smtpd_relay_restrictions=
    -o smtpd_recipient_restrictions=permit_mynetworks,reject
    -o smtpd_data_restrictions=
    -o mynetworks=127.0.0.0/8
`
}

// postfixSubmissionMaster is the listener the bank's applications submit to.
func postfixSubmissionMaster(addr string) string {
	return addr + " inet n - n - - smtpd\n"
}

// postfixNexthop turns host:port into Postfix's "[host]:port" (no MX lookup).
func postfixNexthop(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return "[" + host + "]:" + port
}

// requirePostfix skips (fails under SEALPOST_INTEROP=require) unless Postfix can run here: its
// master must start as root, and the Debian package's postfix user and postdrop group must exist.
func requirePostfix(t *testing.T) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if interop.Required() {
			t.Fatalf("Postfix cannot run: %s, and SEALPOST_INTEROP=require", what)
		}
		t.Skipf("Postfix cannot run: %s; set SEALPOST_INTEROP=require to fail instead", what)
	}
	if os.Geteuid() != 0 {
		missing("its master daemon must be started as root (CI runs as root)")
	}
	interop.Tool(t, "postfix")
	if _, err := user.Lookup("postfix"); err != nil {
		missing("no postfix user (apt-get install postfix creates it)")
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		missing("no postdrop group (apt-get install postfix creates it)")
	}
}

// postfixSealpost starts sealpost for Postfix to talk to, retrying after seconds rather than
// minutes, and shows its log when the test fails.
func postfixSealpost(t *testing.T, edit func(*Config)) (*instance, Config, *keys.Identity, *openpgp.Entity) {
	t.Helper()
	log, logs := logtest.New()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sealpost log:\n%s", logs)
		}
	})
	return testInstanceLogging(t, func(c *Config) {
		c.Queue.MinBackoff, c.Queue.MaxBackoff = config.Duration(time.Second), config.Duration(2*time.Second)
		if edit != nil {
			edit(c)
		}
	}, log)
}

// postfixInstance is a running private Postfix. Its master runs in the foreground as the test's
// child (what `postfix start-fg` does, less the shell in between), so the test reaps it.
type postfixInstance struct {
	conf, maillog string
	done          chan struct{} // closed when master exited
}

// startPostfix writes main.cf (a private instance's settings, then mainCF) and master.cf (the
// internal services, then masterCF) into a fresh directory, starts Postfix, and waits until each
// of listen accepts connections. It stops Postfix at cleanup and checks that no master of this
// configuration remains; the maillog is shown when the test fails.
func startPostfix(t *testing.T, mainCF, masterCF string, listen ...string) {
	t.Helper()
	root := t.TempDir()
	// The daemons run as the postfix user and open their data directory by absolute path.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pf := &postfixInstance{conf: filepath.Join(root, "conf"), maillog: filepath.Join(root, "maillog"), done: make(chan struct{})}
	queue, data := filepath.Join(root, "queue"), filepath.Join(root, "data")
	for _, d := range []string{pf.conf, queue, data} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(pfUser.Uid)
	if err := os.Chown(data, uid, -1); err != nil {
		t.Fatal(err)
	}
	mainCFText := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %s
data_directory = %s
maillog_file = %s
maillog_file_prefixes = %s
myhostname = postfix-test.localhost
mydomain = localhost
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
`, queue, data, pf.maillog, root) + mainCF
	// Every service chroot n: the instance's directories are not laid out for a chroot.
	masterCFText := `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
` + masterCF
	os.WriteFile(filepath.Join(pf.conf, "main.cf"), []byte(mainCFText), 0o644)
	os.WriteFile(filepath.Join(pf.conf, "master.cf"), []byte(masterCFText), 0o644)

	// Cleanups run last-registered first: the log is shown after the stop, shutdown included.
	var out bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(pf.maillog)
			t.Logf("Postfix master output:\n%s\nPostfix maillog %s:\n%s", out.String(), pf.maillog, b)
		}
	})
	port25 := accepts("127.0.0.1:25")
	// check creates the queue directories with their owners, as start does.
	interop.Run(t, nil, "postfix", "-c", pf.conf, "check")
	daemons := strings.TrimSpace(string(interop.Run(t, nil, "postconf", "-c", pf.conf, "-h", "daemon_directory")))
	cmd := exec.Command(filepath.Join(daemons, "master"), "-c", pf.conf, "-s", "-e", strconv.Itoa(int(postfixLifetime/time.Second)))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = postfixLimit
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(pf.done) }()
	t.Cleanup(func() { pf.stop(t, cmd) })
	deadline := time.Now().Add(postfixLimit)
	for _, addr := range listen {
		for !accepts(addr) {
			select {
			case <-pf.done:
				t.Fatalf("Postfix exited before listening on %s", addr)
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("Postfix did not listen on %s within %v", addr, postfixLimit)
			}
		}
	}
	if !port25 && accepts("127.0.0.1:25") {
		t.Error("something listens on 127.0.0.1:25 since Postfix started")
	}
}

// stop runs `postfix stop` and waits for master to exit, killing it should it not. Either way no
// master of this configuration may remain.
func (pf *postfixInstance) stop(t *testing.T, master *exec.Cmd) {
	if _, stderr, err := interop.Try(t, nil, "postfix", "-c", pf.conf, "stop"); err != nil {
		t.Logf("postfix stop: %v\n%s", err, stderr)
	}
	select {
	case <-pf.done:
	case <-time.After(postfixLimit):
		t.Errorf("Postfix's master did not stop within %v of postfix stop; killing it", postfixLimit)
		master.Process.Kill()
		<-pf.done
	}
	// status exits 0 only while a master holds this configuration's lock.
	if _, _, err := interop.Try(t, nil, "postfix", "-c", pf.conf, "status"); err == nil {
		t.Errorf("a Postfix master of %s is still running after stop", pf.conf)
	}
}

// submitTo sends msg to Postfix's listener as the bank's application would.
func submitTo(t *testing.T, addr string, to []string, msg []byte) sendResult {
	t.Helper()
	c, err := dialSMTP(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return send(c, "statements@bank.example", to, msg)
}

func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// openWithPeers checks that msgs are alice's S/MIME message and carol's PGP/MIME message, neither
// holding the plaintext, and opens them with openssl cms and gpg.
func openWithPeers(t *testing.T, cfg Config, alice *keys.Identity, carol *openpgp.Entity, msgs [][]byte) {
	t.Helper()
	var sawSMIME, sawPGP bool
	for _, m := range msgs {
		if bytes.Contains(m, []byte("1 234,56")) {
			t.Fatalf("delivered message contains the plaintext:\n%s", headerOf(m))
		}
		switch {
		case bytes.Contains(m, []byte("application/pkcs7-mime")):
			sawSMIME = true
			out := opensslOpen(t, cfg, alice, m)
			if !bytes.Contains(out, []byte("1 234,56 EUR")) {
				t.Fatalf("openssl verified content lacks the statement:\n%s", out)
			}
		case bytes.Contains(m, []byte("application/pgp-encrypted")):
			sawPGP = true
			pub, err := keys.DataDir(cfg.Data).Export("pgp")
			if err != nil {
				t.Fatal(err)
			}
			gpg := gnupgHome(t, carol, pub)
			out, status, err := interop.Try(t, armoredMessage(m), "gpg", append(gpg, "--decrypt")...)
			if err != nil || !bytes.Contains(status, []byte("[GNUPG:] GOODSIG")) || !bytes.Contains(status, []byte("[GNUPG:] GOODMDC")) || !bytes.Contains(out, []byte("1 234,56 EUR")) {
				t.Fatalf("gpg: %v\n%s", err, status)
			}
		default:
			t.Errorf("delivered message is neither S/MIME nor PGP/MIME encrypted:\n%s", headerOf(m))
		}
	}
	if !sawSMIME || !sawPGP {
		t.Fatalf("delivered S/MIME %v, PGP %v; want both", sawSMIME, sawPGP)
	}
}

func headerOf(m []byte) []byte {
	if i := bytes.Index(m, []byte("\r\n\r\n")); i >= 0 {
		return m[:i]
	}
	return m
}

// recordingSink is an SMTP server that keeps every message it is given with its envelope.
type recordingSink struct {
	addr    string
	mu      sync.Mutex
	msgs    []sinkMessage
	changed chan struct{}
}

type sinkMessage struct {
	from string
	to   []string
	data []byte
}

func newRecordingSink(t *testing.T) *recordingSink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &recordingSink{addr: l.Addr().String(), changed: make(chan struct{})}
	srv := smtp.NewServer(s)
	srv.Domain = "sink.localhost"
	srv.MaxMessageBytes = 64 << 20
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

// NewSession implements smtp.Backend.
func (s *recordingSink) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &recordingSinkSession{s: s}, nil
}

// wait returns the messages once there are at least n, or an error after limit.
func (s *recordingSink) wait(n int, limit time.Duration) ([]sinkMessage, error) {
	deadline := time.After(limit)
	for {
		s.mu.Lock()
		msgs, ch := slices.Clone(s.msgs), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-deadline:
			return msgs, fmt.Errorf("only %d of %d messages reached the sink after %v", len(msgs), n, limit)
		}
	}
}

type recordingSinkSession struct {
	s   *recordingSink
	cur sinkMessage
}

func (ss *recordingSinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.cur = sinkMessage{from: from}
	return nil
}

func (ss *recordingSinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.cur.to = append(ss.cur.to, to)
	return nil
}

func (ss *recordingSinkSession) Reset()        { ss.cur = sinkMessage{} }
func (ss *recordingSinkSession) Logout() error { return nil }

func (ss *recordingSinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return errors.New("empty message")
	}
	ss.cur.data = b
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, ss.cur)
	close(ss.s.changed)
	ss.s.changed = make(chan struct{})
	ss.s.mu.Unlock()
	return nil
}
