package main

import (
	"bytes"
	"cmp"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sealpost/sealpost/keys"
)

// serveProcess is `sealpost serve` run by the bench as its own process (-process), driven from
// outside over SMTP like a bank's MTA drives it: the figures read from it — its CPU time and its
// peak resident memory, from /proc — are the gateway's alone, not the clients' and the sink's.
type serveProcess struct {
	cmd  *exec.Cmd
	addr string
	done chan error // the process's end
	log  *tailBuffer
}

// startServeProcess writes cfg (its SMTP listener on a free loopback port) to a file under tmp,
// starts this executable's serve on it, and returns once the listener answers.
func startServeProcess(cfg Config, tmp string) (*serveProcess, error) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return nil, errors.New("-process reads the gateway's CPU and memory from /proc (Linux)")
	}
	addr, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	cfg.SMTP.Addr = addr
	file := filepath.Join(tmp, "serve-"+strconv.Itoa(os.Getpid())+"-"+strings.ReplaceAll(addr, ":", "-")+".json")
	if err := os.WriteFile(file, cfg.marshal(), 0o600); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// Its log (a line for each message, as in production: its cost is counted) is kept only to
	// say why it ended, should it.
	p := &serveProcess{cmd: exec.Command(exe, "serve", "-config", file), addr: addr, done: make(chan error, 1), log: &tailBuffer{max: 4096}}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return p, nil
		}
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("serve ended before it listened: %v\n%s", err, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("serve did not listen on %s within a minute", addr)
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// freeLoopbackPort is a loopback address nothing listens on now.
func freeLoopbackPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// stop ends the process as an operator would (SIGTERM), killing it after 30 s.
func (p *serveProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on every Linux
// architecture Go runs on.
const clockTicks = 100

// cpu is the CPU time (user and system) the process has used so far; 0 when /proc cannot say.
func (p *serveProcess) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: the fields count from after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14 of stat(5)
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// peakRSS is the process's peak resident set (VmHWM) in bytes; 0 when /proc cannot say.
func (p *serveProcess) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// statementMemory sends one statement of each size (a text part and a base64 attachment, as a
// bank's statement run sends them) to a fresh serve process, waits until the sink has it, and
// prints the process's peak resident memory before and after, and the growth per MB of message.
func (b *bench) statementMemory(sizes []int) error {
	type point struct{ size, idle, peak int64 }
	var points []point
	for _, mb := range sizes {
		cluster, done, err := benchNodes(b.sink, benchOptions{process: true}, 1, b.stderr)
		if err != nil {
			return err
		}
		p := cluster[0].proc
		time.Sleep(time.Second) // the start's own allocations settle
		idle := p.peakRSS()
		msg := benchStatement(fmt.Sprintf("<bench-memory-%d@bank.example>", mb), mb*1000*1000) // 25 MB fits under the 25 MiB limit
		base := b.sink.total()
		c, err := dialSMTP(p.addr)
		if err == nil {
			_, err = submitTimed(c, benchStatements, msg)
			c.Close()
		}
		if err == nil {
			_, err = b.sink.waitTotal(base+1, 2*time.Minute)
		}
		peak := p.peakRSS()
		done()
		if err != nil {
			return fmt.Errorf("a %d MB statement: %w", mb, err)
		}
		points = append(points, point{int64(len(msg)), idle, peak})
		b.w("memory: a %d MB statement (%d bytes) through serve: peak RSS %.1f MB (%.1f MB before it: %.1f MB more, %.2f × the message)",
			mb, len(msg), mib(peak), mib(idle), mib(peak-idle), float64(peak-idle)/float64(len(msg)))
	}
	for i := 1; i < len(points); i++ {
		a, z := points[i-1], points[i]
		b.w("memory: growth per MB of message from %d to %d bytes: %.2f MB (target ≤ 2.5)", a.size, z.size, float64(z.peak-a.peak)/float64(z.size-a.size))
	}
	return nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// benchStatement is a statement of at least size bytes: a short text part and a PDF-like
// attachment in base64 lines of 76.
func benchStatement(id string, size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 1024)
	b.WriteString("From: Example Bank <" + benchStatements + ">\r\nTo: alice@example.com\r\nSubject: Your statement\r\nMessage-ID: " + id +
		"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"bench-s1\"\r\n\r\n" +
		"--bench-s1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nYour statement is attached.\r\n" +
		"--bench-s1\r\nContent-Type: application/pdf; name=statement.pdf\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=statement.pdf\r\n\r\n")
	line := "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29k\r\n"
	for b.Len() < size-len("--bench-s1--\r\n") {
		b.WriteString(line)
	}
	b.WriteString("--bench-s1--\r\n")
	return b.Bytes()
}

// opensslPipelinePerSecond is how many messages a second `openssl cms -sign | openssl cms
// -encrypt` protects on every core (one pipeline per core, for d): the yardstick of a gateway
// that runs OpenSSL per message. The signer and the recipient are throw-away RSA-2048
// identities; msg is signed as it is.
func opensslPipelinePerSecond(msg []byte, d time.Duration) (float64, error) {
	if _, err := exec.LookPath("openssl"); err != nil {
		return 0, errors.New("openssl is not installed (Debian: apt-get install openssl)")
	}
	tmp, err := os.MkdirTemp("", "sealpost-bench-openssl-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	ca, err := keys.NewDevCA("bench CA")
	if err != nil {
		return 0, err
	}
	files := map[string][]byte{"msg.eml": msg}
	for _, who := range []string{"signer", "alice"} {
		id, err := ca.NewDevCustomer(who + "@example.com")
		if err != nil {
			return 0, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(id.Signer)
		if err != nil {
			return 0, err
		}
		files[who+".pem"] = keys.EncodeCertificates(id.Certificate())
		files[who+".key"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o600); err != nil {
			return 0, err
		}
	}
	script := "openssl cms -sign -in msg.eml -signer signer.pem -inkey signer.key | openssl cms -encrypt -aes256 alice.pem > /dev/null"
	var count atomic.Int64
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
				cmd.Dir = tmp
				if out, err := cmd.CombinedOutput(); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, fmt.Errorf("%s: %v\n%s", script, err, out))
					mu.Unlock()
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(count.Load()) / time.Since(start).Seconds(), nil
}

// serveCPU is the CPU time of the cluster's serve processes so far (0 in-process).
func (c benchCluster) serveCPU() time.Duration {
	var d time.Duration
	for _, n := range c {
		if n.proc != nil {
			d += n.proc.cpu()
		}
	}
	return d
}

// peakRSS is the largest peak resident set of the cluster's serve processes.
func (c benchCluster) peakRSS() int64 {
	var m int64
	for _, n := range c {
		if n.proc != nil {
			m = max(m, n.proc.peakRSS())
		}
	}
	return m
}

// parseSizes reads -statements: sizes in MB, 1 to 25 (the largest message serve takes).
func parseSizes(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 25 {
			return nil, fmt.Errorf("statement size %q: want 1 to 25 (MB)", f)
		}
		out = append(out, n)
	}
	return out, nil
}
