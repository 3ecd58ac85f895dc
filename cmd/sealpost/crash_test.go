package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sealpost/sealpost/keys"
)

// TestCrashLosesNothingThatGot250 runs the built binary under load, kills it with SIGKILL at random
// moments, restarts it, and checks that every message that got a 250 is delivered (duplicates are
// counted and reported: delivery is at-least-once), and that nothing without a 250 is delivered.
// The evidence log, checked by evidence verify after every kill and at the end, holds a record
// of every queue ID a 250 named, and no torn record is left unnoticed.
func TestCrashLosesNothingThatGot250(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped with -short")
	}
	tmp := t.TempDir()
	bin, data := testBinary(t), crashData(t, tmp)
	addr := freeAddr(t)
	cfg := map[string]any{"data": data, "identities": "development", "smtp": map[string]any{"addr": addr},
		"queue":   map[string]any{"workers": 4, "min_backoff": "1s", "max_backoff": "2s"},
		"inbound": map[string]any{"enabled": false}, "ops": map[string]any{"enabled": false}, "api": map[string]any{"enabled": false}}
	cfgFile := filepath.Join(tmp, "config.json")
	b, _ := json.Marshal(cfg)
	os.WriteFile(cfgFile, b, 0o600)

	var mu sync.Mutex
	acked := map[string]bool{}
	ackedIDs := map[string]bool{} // the queue IDs the 250s named
	attempted := map[string]bool{}
	seq := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 4 {
		proc := startBinary(t, bin, cfgFile, addr)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := dialSMTP(addr)
				if err != nil {
					return
				}
				defer c.Close()
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					seq++
					id := fmt.Sprintf("<crash-%d-%d-%d@bank.example>", round, g, seq)
					attempted[id] = true
					mu.Unlock()
					msg := "From: statements@bank.example\r\nTo: alice@example.com\r\nMessage-ID: " + id + "\r\n\r\nstatement\r\n"
					res := send(c, "statements@bank.example", []string{demoAlice}, []byte(msg))
					if res.Err != nil {
						return // the server died under us: no 250 for this one
					}
					mu.Lock()
					acked[id] = true
					if _, qid, ok := strings.Cut(res.Reply, "queued as "); ok {
						ackedIDs[strings.TrimSpace(qid)] = true
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
		proc.Process.Signal(syscall.SIGKILL)
		proc.Wait()
		close(stop)
		wg.Wait()
		// As the crash left it: whole up to its last complete record.
		if out, err := exec.Command(bin, "evidence", "verify", "-data", data).CombinedOutput(); err != nil {
			t.Fatalf("evidence verify after the SIGKILL of round %d: %v\n%s", round, err, out)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no message was acknowledged: the load did not run")
	}

	// The last start drains the queue, including what the crashes left.
	proc := startBinary(t, bin, cfgFile, addr)
	defer func() { proc.Process.Signal(syscall.SIGTERM); proc.Wait() }()
	maildir := filepath.Join(data, "outbox")
	deadline := time.Now().Add(90 * time.Second)
	var delivered map[string]int
	for {
		delivered = deliveredIDs(t, maildir)
		missing := 0
		for id := range acked {
			if delivered[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never delivered", missing, len(acked))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A crash alone damages nothing: nothing was set aside as corrupt.
	if aside, _ := os.ReadDir(filepath.Join(data, "spool", "corrupt")); len(aside) != 0 {
		t.Fatalf("SIGKILL alone left entries set aside as corrupt: %v", aside)
	}
	dups := 0
	for id, n := range delivered {
		if !attempted[id] {
			t.Fatalf("delivered %s, which was never sent", id)
		}
		dups += n - 1
	}
	t.Logf("%d acknowledged, %d delivered (%d without a 250 — in flight at a crash, at-least-once), %d duplicate deliveries, none lost",
		len(acked), len(delivered), len(delivered)-len(acked), dups)

	// No accepted message without its record.
	if out, err := exec.Command(bin, "evidence", "verify", "-data", data).CombinedOutput(); err != nil {
		t.Fatalf("evidence verify after the crashes: %v\n%s", err, out)
	}
	recorded := map[string]bool{}
	for _, r := range evidenceRecords(t, data) {
		if r.Outbound != nil {
			recorded[r.Outbound.QueueID] = true
		}
	}
	if len(ackedIDs) != len(acked) {
		t.Fatalf("%d queue IDs read from %d 250 replies", len(ackedIDs), len(acked))
	}
	for id := range ackedIDs {
		if !recorded[id] {
			t.Errorf("queue ID %s got a 250 but has no evidence record", id)
		}
	}
	t.Logf("evidence: %d outbound records, every acknowledged one among them", len(recorded))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	// Below the kernel's ephemeral range (32768 and up on Linux): a port from there, free when
	// looked at, can be taken by any outgoing connection before the process it is for binds it.
	// Each port is handed out once per test binary.
	freePorts.Lock()
	defer freePorts.Unlock()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		if freePorts.given[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		freePorts.given[port] = true
		return l.Addr().String()
	}
	t.Fatal("no free port between 20000 and 32000")
	return ""
}

// freePorts are the ports freeAddr handed out.
var freePorts = struct {
	sync.Mutex
	given map[int]bool
}{given: map[int]bool{}}

func startBinary(t *testing.T, bin, cfgFile, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "-config", cfgFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the binary did not start listening:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deliveredIDs counts Message-IDs in a Maildir's new/ (the outer header of a protected statement
// keeps its Message-ID).
func deliveredIDs(t *testing.T, maildir string) map[string]int {
	files, _ := filepath.Glob(filepath.Join(maildir, "new", "*"))
	out := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if i := bytes.Index(b, []byte("\r\n\r\n")); i > 0 {
			b = b[:i]
		}
		for _, line := range strings.Split(string(b), "\r\n") {
			if v, ok := strings.CutPrefix(line, "Message-ID: "); ok {
				out[strings.TrimSpace(v)]++
			}
		}
	}
	return out
}

// TestCrashKeepsDamagedAcceptedMail: entries that got their 250 and are then damaged on disk while
// the binary is dead (SIGKILL) — truncated, a byte flipped, the end record removed, opened to
// others, replaced by a directory, a state file broken — are never deleted by the next start:
// each is set aside in corrupt/ byte for byte (0600), reported by /readyz and
// sealpost_queue_corrupt_entries and listed by `sealpost queue list -corrupt`, and stays so across
// another SIGKILL; an entry whose state was broken is still queued. The ops listener refuses queue
// control without the token (0600 in the data directory). The code before this test deleted the
// damaged entries at start with one ERROR line each.
func TestCrashKeepsDamagedAcceptedMail(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped with -short")
	}
	tmp := t.TempDir()
	bin, data := testBinary(t), crashData(t, tmp)
	addr, opsAddr, dead := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := map[string]any{"data": data, "identities": "development", "smtp": map[string]any{"addr": addr},
		"queue":    map[string]any{"workers": 2, "min_backoff": "1s", "max_backoff": "2s"},
		"delivery": map[string]any{"smarthost": map[string]any{"addr": dead, "tls": "none"}}, // nothing listens: entries stay queued
		"inbound":  map[string]any{"enabled": false}, "ops": map[string]any{"enabled": true, "addr": opsAddr}, "api": map[string]any{"addr": "127.0.0.1:0"}}
	cfgFile := filepath.Join(tmp, "config.json")
	b, _ := json.Marshal(cfg)
	os.WriteFile(cfgFile, b, 0o600)

	proc := startBinary(t, bin, cfgFile, addr)
	c, err := dialSMTP(addr)
	if err != nil {
		t.Fatal(err)
	}
	const accepted = 8
	for i := range accepted {
		msg := fmt.Sprintf("From: statements@bank.example\r\nTo: alice@example.com\r\nMessage-ID: <damage-%d@bank.example>\r\n\r\nstatement\r\n", i)
		if res := send(c, "statements@bank.example", []string{demoAlice}, []byte(msg)); res.Err != nil {
			t.Fatalf("message %d: %v", i, res.Err)
		}
	}
	c.Close()
	proc.Process.Signal(syscall.SIGKILL)
	proc.Wait()

	if fi, err := os.Stat(filepath.Join(data, "ops.token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the ops token: %v; want a 0600 file", err)
	}
	spool := filepath.Join(data, "spool")
	q := filepath.Join(spool, "queue")
	msgs, _ := filepath.Glob(filepath.Join(q, "*.msg"))
	if len(msgs) != accepted {
		t.Fatalf("%d entries in the spool after %d 250s", len(msgs), accepted)
	}
	idOf := func(p string) string { return strings.TrimSuffix(filepath.Base(p), ".msg") }
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// What each damaged file holds after the damage: the bytes corrupt/ must keep.
	want := map[string][]byte{}
	damage := []struct {
		name string
		do   func(p string) (name string, b []byte)
	}{
		{"truncated", func(p string) (string, []byte) {
			b := read(p)[:200]
			os.WriteFile(p, b, 0o600)
			return filepath.Base(p), b
		}},
		{"a byte flipped", func(p string) (string, []byte) {
			b := read(p)
			b[len(b)/2] ^= 0x40
			os.WriteFile(p, b, 0o600)
			return filepath.Base(p), b
		}},
		{"end record removed", func(p string) (string, []byte) {
			b := read(p)
			b = b[:len(b)-86]
			os.WriteFile(p, b, 0o600)
			return filepath.Base(p), b
		}},
		{"readable by others", func(p string) (string, []byte) {
			os.Chmod(p, 0o644)
			return filepath.Base(p), read(p)
		}},
		{"a directory where the file should be", func(p string) (string, []byte) {
			os.Remove(p)
			os.Mkdir(p, 0o700)
			return filepath.Base(p), nil
		}},
		{"state file broken", func(p string) (string, []byte) {
			st := strings.TrimSuffix(p, ".msg") + ".state"
			b := []byte("sealpost-state 1\nid garbage\n")
			os.WriteFile(st, b, 0o600)
			return filepath.Base(st), b
		}},
	}
	damagedIDs := map[string]bool{}
	for i, d := range damage {
		name, b := d.do(msgs[i])
		want[name] = b
		damagedIDs[idOf(msgs[i])] = true
		t.Logf("%s: %s", name, d.name)
	}
	stateBroken := idOf(msgs[len(damage)-1])
	os.WriteFile(filepath.Join(spool, "tmp", "AAAAAAAAAAAAAAAA.msg.1"), []byte("sealpost-entry 1\nid AAAAAAAAAAAAAAAA\n"), 0o600) // a write cut short

	checkAside := func() {
		t.Helper()
		for name, b := range want {
			p := filepath.Join(spool, "corrupt", name)
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatalf("%s is not in corrupt/: %v", name, err)
			}
			if b == nil {
				if !fi.IsDir() {
					t.Fatalf("corrupt/%s is not the directory", name)
				}
				continue
			}
			if got := read(p); !bytes.Equal(got, b) || fi.Mode().Perm() != 0o600 {
				t.Fatalf("corrupt/%s: mode %v, %d bytes; want 0600 and the %d bytes it had", name, fi.Mode(), len(got), len(b))
			}
			if _, err := os.Stat(p + ".why"); err != nil {
				t.Fatalf("corrupt/%s has no note: %v", name, err)
			}
		}
		if left, _ := filepath.Glob(filepath.Join(spool, "corrupt", "*.1")); len(left) != 0 {
			t.Fatalf("set aside twice: %v", left)
		}
	}
	base := "http://" + opsAddr
	for round := range 2 {
		proc = startBinary(t, bin, cfgFile, addr)
		checkAside()
		if _, err := os.Stat(filepath.Join(spool, "tmp", "AAAAAAAAAAAAAAAA.msg.1")); err == nil {
			t.Fatal("the torn write in tmp/ is still there")
		}
		code, body := httpGet(t, base+"/readyz")
		if code != 200 || !strings.Contains(body, fmt.Sprintf("%d entries failed their checks", len(damage))) ||
			!strings.Contains(body, filepath.Join(spool, "corrupt")) {
			t.Fatalf("round %d: /readyz: %d %s", round, code, body)
		}
		_, metrics := httpGet(t, base+"/metrics")
		if !strings.Contains(metrics, fmt.Sprintf(`sealpost_queue_corrupt_entries{queue="outbound"} %d`, len(damage))) {
			t.Fatalf("round %d: /metrics:\n%s", round, grepLines(metrics, "sealpost_queue"))
		}
		out, err := exec.Command(bin, "queue", "list", "-corrupt", "-config", cfgFile).CombinedOutput()
		if err != nil {
			t.Fatalf("queue list -corrupt: %v\n%s", err, out)
		}
		for id := range damagedIDs {
			if !strings.Contains(string(out), id) {
				t.Fatalf("queue list -corrupt does not list %s:\n%s", id, out)
			}
		}
		out, err = exec.Command(bin, "queue", "list", "-config", cfgFile).CombinedOutput()
		if err != nil {
			t.Fatalf("queue list: %v\n%s", err, out)
		}
		for _, p := range msgs {
			id := idOf(p)
			if listed := strings.Contains(string(out), id); listed != (!damagedIDs[id] || id == stateBroken) {
				t.Fatalf("queue list: %s listed %v:\n%s", id, listed, out)
			}
		}
		// Queue control without the token changes nothing.
		victim := idOf(msgs[len(msgs)-1])
		req, _ := http.NewRequest("DELETE", base+"/queue/"+victim, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("DELETE without the token: %s", resp.Status)
		}
		if _, err := os.Stat(filepath.Join(q, victim+".msg")); err != nil {
			t.Fatalf("DELETE without the token removed the entry: %v", err)
		}
		proc.Process.Signal(syscall.SIGKILL)
		proc.Wait()
	}
}

// crashData makes a data directory in tmp with development identities for statements@ and the demo
// customers, as the crash tests run the binary on.
func crashData(t *testing.T, tmp string) string {
	t.Helper()
	data := filepath.Join(tmp, "data")
	dir := keys.DataDir(data)
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := demoCustomers(dir); err != nil {
		t.Fatal(err)
	}
	return data
}

// The sealpost binary the tests that run it as a process share: built once per test binary.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// testBinary builds sealpost once (into a directory TestMain, in script_test.go, removes) and returns its path.
func testBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "sealpost-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "sealpost")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}
