package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sealpost/sealpost/inbound"
	"github.com/sealpost/sealpost/keys"
)

// cluster is two `sealpost serve` processes, each with its own data directory and spool, on one
// PostgreSQL database, as README's "Running several nodes" installs them: node B's data directory
// holds node A's identities and held.key. Both deliver to the same loopback smarthost sink, and
// their desks to the same desk sink.
type cluster struct {
	t       *testing.T
	bin     string
	dsnFile string
	sink    *recordingSink // the smarthost both nodes deliver outbound mail to
	desk    *recordingSink // the desk's next hop of both nodes
	nodes   []*clusterNode
	files   string // customers' certificate and key files
}

// clusterNode is one node: its files, its loopback addresses and, while it runs, its process.
type clusterNode struct {
	name      string
	data      string
	config    string
	smarthost string // where it delivers outbound mail: the sink unless a test says otherwise
	smtp      string
	inbound   string
	ops       string

	mu     sync.Mutex // guards the process and its output, which start replaces
	proc   *os.Process
	exited chan struct{} // closed when proc has exited
	stderr *lockedBuffer
}

// newCluster sets up two nodes named A and B on the database at dsn and imports alice's
// certificate on each (`keys import -config`), as README says to; the nodes are not started.
func newCluster(t *testing.T, dsn string) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("runs two sealpost processes; skipped with -short")
	}
	tmp := t.TempDir()
	c := &cluster{t: t, bin: testBinary(t), dsnFile: filepath.Join(tmp, "pg.dsn"), sink: newRecordingSink(t), desk: newRecordingSink(t),
		files: filepath.Join(tmp, "files")}
	if err := os.Mkdir(c.files, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"A", "B"} {
		n := &clusterNode{name: name, data: filepath.Join(tmp, name, "data"), config: filepath.Join(tmp, name, "sealpost.json"),
			smarthost: c.sink.addr, smtp: freeAddr(t), inbound: freeAddr(t), ops: freeAddr(t)}
		if err := os.MkdirAll(filepath.Dir(n.data), 0o700); err != nil {
			t.Fatal(err)
		}
		c.writeConfig(n)
		c.nodes = append(c.nodes, n)
		t.Cleanup(n.stop)
	}
	a := keys.DataDir(c.nodes[0].data)
	if err := a.Init(defaultConfig().Senders); err != nil {
		t.Fatal(err)
	}
	if _, err := a.HeldKey(); err != nil {
		t.Fatal(err)
	}
	// What every node must have alike: the identities (the CA a trusted root among them) and held.key.
	copyTree(t, c.nodes[0].data, c.nodes[1].data)
	cert, _ := writeIdentity(t, c.files, "alice", c.customer(demoAlice))
	for _, n := range c.nodes {
		c.mustCLI("keys", "import", "-config", n.config, cert)
	}
	return c
}

// writeConfig writes n's configuration: its own data directory and loopback listeners, the
// shared database, its smarthost and the desk sink without TLS, unsigned replies held, quick
// retries.
func (c *cluster) writeConfig(n *clusterNode) {
	hop := func(addr string) map[string]any {
		return map[string]any{"smarthost": map[string]any{"addr": addr, "tls": "none"}}
	}
	cfg := map[string]any{
		"data":       n.data,
		"identities": identitiesDevelopment,
		"smtp":       map[string]any{"addr": n.smtp},
		"queue":      map[string]any{"workers": 4, "min_backoff": "1s", "max_backoff": "2s"},
		"delivery":   hop(n.smarthost),
		"inbound": map[string]any{"enabled": true, "listener": map[string]any{"addr": n.inbound},
			"on_unsigned": inbound.ActionQuarantine, "delivery": hop(c.desk.addr)},
		"ops":   map[string]any{"enabled": true, "addr": n.ops},
		"api":   map[string]any{"addr": "127.0.0.1:0"},
		"store": map[string]any{"postgres": map[string]any{"dsn_file": c.dsnFile}},
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(n.config, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// customer makes a customer's S/MIME identity for addr, issued by node A's development CA, which
// both nodes trust.
func (c *cluster) customer(addr string) *keys.Identity {
	c.t.Helper()
	ca, err := keys.DataDir(c.nodes[0].data).Identity("ca")
	if err != nil {
		c.t.Fatal(err)
	}
	id, err := ca.NewDevCustomer(addr)
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

// copyTree copies the regular files under src into dst, keeping their modes.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// cli runs the built binary with args and returns its exit status and output.
func (c *cluster) cli(args ...string) (code int, stdout, stderr string) {
	cmd := exec.Command(c.bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), o.String(), e.String()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return 0, o.String(), e.String()
}

// mustCLI is cli that fails the test unless the command succeeds; it returns stdout.
func (c *cluster) mustCLI(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.cli(args...)
	if code != 0 {
		c.t.Fatalf("sealpost %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// startAll starts every node.
func (c *cluster) startAll() {
	c.t.Helper()
	for _, n := range c.nodes {
		c.start(n)
	}
}

// start runs `sealpost serve` for n and waits until its outbound and inbound listeners accept
// connections.
func (c *cluster) start(n *clusterNode) {
	c.t.Helper()
	cmd := exec.Command(c.bin, "serve", "-config", n.config)
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	n.mu.Lock()
	n.proc, n.exited, n.stderr = cmd.Process, exited, stderr
	n.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range []string{n.smtp, n.inbound} {
		for !listening(addr) {
			select {
			case <-exited:
				c.t.Fatalf("node %s exited at start:\n%s", n.name, stderr)
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("node %s does not listen on %s:\n%s", n.name, addr, stderr)
			}
		}
	}
}

// signal sends sig to n's process, if it runs, and waits up to limit for it to exit; it reports
// whether it did.
func (n *clusterNode) signal(sig syscall.Signal, limit time.Duration) bool {
	n.mu.Lock()
	proc, exited := n.proc, n.exited
	n.mu.Unlock()
	if proc == nil {
		return true
	}
	proc.Signal(sig)
	select {
	case <-exited:
		return true
	case <-time.After(limit):
		return false
	}
}

// kill ends n with SIGKILL, as a machine that dies: nothing is flushed or closed.
func (n *clusterNode) kill() { n.signal(syscall.SIGKILL, time.Minute) }

// stop ends n as systemd does (SIGTERM, SIGKILL if it lingers).
func (n *clusterNode) stop() {
	if !n.signal(syscall.SIGTERM, 20*time.Second) {
		n.kill()
	}
}

// log is what n's current process wrote to stderr.
func (n *clusterNode) log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stderr == nil {
		return ""
	}
	return n.stderr.String()
}

// submitSMTP sends msg to addr over SMTP on a new connection.
func submitSMTP(addr, from string, to []string, msg string) sendResult {
	c, err := dialSMTP(addr)
	if err != nil {
		return sendResult{Err: err, Reply: err.Error()}
	}
	defer c.Close()
	return send(c, from, to, []byte(msg))
}

func listening(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	return err == nil
}

// sinkKeys counts the messages a sink got by the key keyOf gives each one's header.
func sinkKeys(msgs []sinkMessage, keyOf func(mail.Header) string) map[string]int {
	out := map[string]int{}
	for _, m := range msgs {
		if h, err := mail.ReadMessage(bytes.NewReader(m.data)); err == nil {
			out[keyOf(h.Header)]++
		}
	}
	return out
}

// waitReady waits until n's /readyz answers code and its metrics say sealpost_store_up up.
func (c *cluster) waitReady(n *clusterNode, code int, up string) {
	c.t.Helper()
	base := "http://" + n.ops
	waitFor(c.t, fmt.Sprintf("node %s: /readyz %d and sealpost_store_up %s", n.name, code, up), func() bool {
		got, _ := httpGet(c.t, base+"/readyz")
		_, metrics := httpGet(c.t, base+"/metrics")
		return got == code && strings.Contains(metrics, "sealpost_store_up "+up)
	})
}

// snapshot is what the sink holds now.
func (s *recordingSink) snapshot() []sinkMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMessage(nil), s.msgs...)
}

// gate is a loopback address that forwards connections to target once opened; until then nothing
// listens there, as a smarthost a node cannot reach.
type gate struct {
	addr, target string
}

// open starts forwarding (until the test ends).
func (g gate) open(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", g.target)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { io.Copy(out, in); out.(*net.TCPConn).CloseWrite() }()
				io.Copy(in, out)
			}()
		}
	}()
}

// lockedBuffer is a process's stderr, written by exec's copying goroutine and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
