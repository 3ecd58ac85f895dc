package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
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
func TestCrashLosesNothingThatGot250(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped with -short")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "sealpost")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := filepath.Join(tmp, "data")
	dir := keys.DataDir(data)
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := demoCustomers(dir); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfg := map[string]any{"data": data, "identities": "development", "smtp": map[string]any{"addr": addr},
		"queue":   map[string]any{"workers": 4, "min_backoff": "1s", "max_backoff": "2s"},
		"inbound": map[string]any{"enabled": false}, "ops": map[string]any{"enabled": false}}
	cfgFile := filepath.Join(tmp, "config.json")
	b, _ := json.Marshal(cfg)
	os.WriteFile(cfgFile, b, 0o600)

	var mu sync.Mutex
	acked := map[string]bool{}
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
					if res := send(c, "statements@bank.example", []string{demoAlice}, []byte(msg)); res.Err != nil {
						return // the server died under us: no 250 for this one
					}
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
		proc.Process.Signal(syscall.SIGKILL)
		proc.Wait()
		close(stop)
		wg.Wait()
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
	dups := 0
	for id, n := range delivered {
		if !attempted[id] {
			t.Fatalf("delivered %s, which was never sent", id)
		}
		dups += n - 1
	}
	t.Logf("%d acknowledged, %d delivered (%d without a 250 — in flight at a crash, at-least-once), %d duplicate deliveries, none lost",
		len(acked), len(delivered), len(delivered)-len(acked), dups)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

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
