package queue

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // the path of the problem
	}{
		{"defaults", withDir(DefaultConfig(), "/x"), ""},
		{"no dir", DefaultConfig(), "dir"},
		{"negative workers", with(func(c *Config) { c.Workers = -1 }), "workers"},
		{"zero workers", with(func(c *Config) { c.Workers = 0 }), "workers"},
		{"too many workers", with(func(c *Config) { c.Workers = 1025 }), "workers"},
		{"tiny min backoff", with(func(c *Config) { c.MinBackoff = config.Duration(time.Millisecond) }), "min_backoff"},
		{"max below min", with(func(c *Config) { c.MinBackoff, c.MaxBackoff = config.Duration(time.Hour), config.Duration(time.Minute) }), "max_backoff"},
		{"negative scan", with(func(c *Config) { c.ScanInterval = config.Duration(-time.Second) }), "scan_interval"},
		{"zero scan", with(func(c *Config) { c.ScanInterval = 0 }), "scan_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			err := cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Workers != DefaultWorkers || cfg.MinBackoff != config.Duration(DefaultMinBackoff) ||
					cfg.MaxBackoff != config.Duration(DefaultMaxBackoff) || cfg.ScanInterval != config.Duration(DefaultScanInterval) {
					t.Errorf("defaults: %+v", cfg)
				}
				return
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) || fe.Path != tt.wantErr {
				t.Errorf("Validate() = %v, want a problem at %s", err, tt.wantErr)
			}
		})
	}
	// Every problem is reported, not only the first.
	c := DefaultConfig()
	c.Workers, c.MinBackoff = -1, config.Duration(time.Millisecond)
	if n := len(config.FieldErrors(c.Validate())); n != 3 {
		t.Errorf("Validate() of three problems reported %d: %v", n, c.Validate())
	}
}

func TestPutRejectsInvalidMessage(t *testing.T) {
	s := openSpool(t, t.TempDir(), &recordingHop{})
	for name, mutate := range map[string]func(*Message){
		"no recipients":     func(m *Message) { m.Recipients = nil },
		"no data":           func(m *Message) { m.Data = nil },
		"CRLF in recipient": func(m *Message) { m.Recipients = []string{"a@b\r\nRCPT TO:<x@y>"} },
		"bad sender":        func(m *Message) { m.From = "a b@c" },
		"no expiry":         func(m *Message) { m.Expires = time.Time{} },
		"expired":           func(m *Message) { m.Expires = time.Now().Add(-time.Second) },
	} {
		t.Run(name, func(t *testing.T) {
			m := testMessage("s@bank.example", "r@a.example")
			mutate(m)
			if _, err := s.Put(context.Background(), m); !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("Put = %v, want ErrInvalidMessage", err)
			}
		})
	}
	if l, _ := s.List(); len(l) != 0 {
		t.Fatalf("rejected messages were queued: %v", l)
	}
}

// Invariant 1 and 2: once Put returned, the entry survives a crash and is
// delivered by the next process.
func TestPutDurableAcrossCrash(t *testing.T) {
	dir := t.TempDir()
	s1 := openSpool(t, dir, &recordingHop{})
	m := testMessage("s@bank.example", "r1@a.example", "r2@b.example")
	id, err := s1.Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	crash(s1)

	md := &Maildir{Dir: filepath.Join(t.TempDir(), "Maildir")}
	s2 := openSpool(t, dir, md)
	in, err := s2.Get(id)
	if err != nil {
		t.Fatalf("entry lost across a crash: %v", err)
	}
	if in.From != m.From || len(in.Recipients) != 2 || in.Size != len(m.Data) || in.Class != "statement" {
		t.Errorf("recovered entry = %+v", in)
	}
	start(t, s2)
	waitFor(t, "delivery after restart", gone(s2, id))
	files := spoolFiles(t, md.Dir, "new")
	if len(files) != 1 {
		t.Fatalf("maildir new/ = %v, want one message", files)
	}
	got, _ := os.ReadFile(filepath.Join(md.Dir, "new", files[0]))
	if !bytes.Equal(got, m.Data) {
		t.Errorf("delivered %q, want %q", got, m.Data)
	}
}

// failingOps injects one failure into the spool's file operations.
type failingOps struct {
	osOps
	fail string // "write", "fsync", "rename", "dirsync", "enospc"
}

type failingFile struct {
	*os.File
	fail string
}

func (f failingFile) Write(p []byte) (int, error) {
	switch f.fail {
	case "write":
		return 0, errors.New("injected write error")
	case "enospc":
		n := len(p) / 2
		f.File.Write(p[:n])
		return n, syscall.ENOSPC
	}
	return f.File.Write(p)
}

func (f failingFile) Sync() error {
	if f.fail == "fsync" {
		return errors.New("injected fsync error")
	}
	return f.File.Sync()
}

func (o failingOps) CreateTemp(dir, pattern string) (tempFile, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return failingFile{f, o.fail}, nil
}

func (o failingOps) Reuse(path string) (tempFile, error) {
	f, err := o.osOps.Reuse(path)
	if err != nil {
		return nil, err
	}
	return failingFile{f.(*os.File), o.fail}, nil
}

func (o failingOps) Rename(oldpath, newpath string) error {
	if o.fail == "rename" {
		return errors.New("injected rename error")
	}
	return os.Rename(oldpath, newpath)
}

func (o failingOps) SyncDir(dir string) error {
	if o.fail == "dirsync" && filepath.Base(dir) == "queue" {
		return errors.New("injected directory fsync error")
	}
	return o.osOps.SyncDir(dir)
}

// Invariant 1: every way the write can fail is ErrSpoolWrite, and leaves
// nothing that a later process would deliver.
func TestPutFaultInjection(t *testing.T) {
	for _, fail := range []string{"write", "enospc", "fsync", "rename", "dirsync"} {
		t.Run(fail, func(t *testing.T) {
			dir := t.TempDir()
			s1 := openSpool(t, dir, &recordingHop{}, withFileOps(failingOps{fail: fail}))
			id, err := s1.Put(context.Background(), testMessage("s@bank.example", "r@a.example"))
			if !errors.Is(err, ErrSpoolWrite) {
				t.Fatalf("Put = %q, %v; want ErrSpoolWrite", id, err)
			}
			if fail == "enospc" && !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("Put error %v does not carry ENOSPC", err)
			}
			if l, _ := s1.List(); len(l) != 0 {
				t.Errorf("List after failed Put = %v", l)
			}
			if names := spoolFiles(t, dir, "queue"); len(names) != 0 {
				t.Errorf("queue dir after failed Put = %v", names)
			}
			if names := spoolFiles(t, dir, "tmp"); len(names) != 0 {
				t.Errorf("tmp dir after failed Put = %v", names)
			}
			crash(s1)

			hop := &recordingHop{}
			s2 := openSpool(t, dir, hop)
			start(t, s2)
			// A message queued now is delivered after anything recovered,
			// so once it is gone the hop has seen all there is.
			probe, err := s2.Put(context.Background(), testMessage("probe@bank.example", "r@a.example"))
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "probe delivered", gone(s2, probe))
			for _, c := range hop.Calls() {
				if c.From != "probe@bank.example" {
					t.Errorf("a failed Put was delivered: %+v", c.From)
				}
			}
		})
	}
}

// Invariants 3 and 5 against a real SMTP server: a 550 fails its recipient
// and sends one DSN, the accepted recipient is never sent the message again,
// not even after a restart, and the message file is never rewritten.
func TestSMTPPartialFailureAcrossRestart(t *testing.T) {
	sk := newSink(t, nil, nil)
	reply := func(greylist bool) func(string) error {
		return func(to string) error {
			switch {
			case to == "bad@c.example":
				return smtpErr(550, [3]int{5, 1, 1}, "no such user here")
			case to == "later@b.example" && greylist:
				return smtpErr(451, [3]int{4, 3, 0}, "greylisted, try later")
			}
			return nil
		}
	}
	sk.setRcptReply(reply(true))
	hop := newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone})
	dir := t.TempDir()
	clock := newFakeClock()
	s1 := openSpool(t, dir, hop, WithClock(clock.Now))
	m := testMessage("sender@bank.example", "ok@a.example", "later@b.example", "bad@c.example")
	m.Expires = clock.Now().Add(48 * time.Hour)
	id, err := s1.Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	msgPath := filepath.Join(dir, "queue", id+".msg")
	before, _ := os.ReadFile(msgPath)
	start(t, s1)
	waitFor(t, "first attempt", attempts(s1, id, 1))
	waitFor(t, "DSN delivered", func() bool { return sk.received("sender@bank.example") == 1 })

	in, _ := s1.Get(id)
	want := map[string]string{"ok@a.example": "delivered", "later@b.example": "pending", "bad@c.example": "failed"}
	for _, r := range in.Recipients {
		if r.Status != want[r.Address] {
			t.Errorf("%s: status %s, want %s", r.Address, r.Status, want[r.Address])
		}
	}
	after, _ := os.ReadFile(msgPath)
	if !bytes.Equal(before, after) {
		t.Errorf("the message file was rewritten")
	}
	s1.Close()

	sk.setRcptReply(reply(false))
	s2 := openSpool(t, dir, hop, WithClock(clock.Now))
	start(t, s2)
	s2.Flush()
	waitFor(t, "delivery after restart", gone(s2, id))

	for rcpt, n := range map[string]int{"ok@a.example": 1, "later@b.example": 1, "bad@c.example": 0, "sender@bank.example": 1} {
		if got := sk.received(rcpt); got != n {
			t.Errorf("%s received %d messages, want %d", rcpt, got, n)
		}
	}
	for _, msg := range sk.Messages() {
		if len(msg.To) == 1 && msg.To[0] == "sender@bank.example" {
			if msg.From != "" {
				t.Errorf("DSN sent from %q, want the null sender", msg.From)
			}
			checkDSN(t, msg.Data, map[string]string{"bad@c.example": "5.1.1"}, "550 5.1.1 no such user here")
		} else if !bytes.Equal(msg.Data, m.Data) {
			t.Errorf("relayed message differs from what was queued")
		}
	}
	if l, _ := s2.List(); len(l) != 0 {
		t.Errorf("spool not empty: %v", l)
	}
}

// Invariant 4: a 451 is retried when its backoff has passed, not before.
func TestTemporaryFailureRetriedAfterBackoff(t *testing.T) {
	sk := newSink(t, nil, nil)
	refusals := 1
	sk.setRcptReply(func(to string) error {
		if to == "slow@b.example" && refusals > 0 {
			refusals--
			return smtpErr(451, [3]int{4, 7, 1}, "greylisted")
		}
		return nil
	})
	clock := newFakeClock()
	s := openSpool(t, t.TempDir(), newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone}), WithClock(clock.Now))
	m := testMessage("s@bank.example", "slow@b.example")
	m.Expires = clock.Now().Add(24 * time.Hour)
	id, err := s.Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	waitFor(t, "first attempt", attempts(s, id, 1))
	in, _ := s.Get(id)
	wait := in.NextAttempt.Sub(clock.Now())
	if lo, hi := time.Duration(0.8*float64(DefaultMinBackoff)), time.Duration(1.2*float64(DefaultMinBackoff)); wait < lo || wait > hi {
		t.Fatalf("next attempt in %v, want within [%v, %v]", wait, lo, hi)
	}
	if r := in.Recipients[0]; r.Status != "pending" || !strings.Contains(r.LastError, "451 4.7.1 greylisted") {
		t.Fatalf("after a 451: %+v", r)
	}

	// Not due yet: a later message goes through, the deferred one waits.
	probe, _ := s.Put(context.Background(), testMessage("s@bank.example", "probe@a.example"))
	waitFor(t, "probe delivered", gone(s, probe))
	if in, _ := s.Get(id); in.Recipients[0].Attempts != 1 {
		t.Fatalf("retried before its backoff: %+v", in.Recipients[0])
	}

	clock.Set(in.NextAttempt)
	waitFor(t, "retry delivered", gone(s, id))
	if n := sk.received("slow@b.example"); n != 1 {
		t.Errorf("slow@b.example received %d, want 1", n)
	}
}

// Invariants 4 and 5: at expiry the pending recipient fails with its last
// error, and the DSN says so.
func TestExpiryBouncesWithLastError(t *testing.T) {
	sk := newSink(t, nil, func(sk *sink) {
		sk.rcptReply = func(to string) error {
			if to == "full@b.example" {
				return smtpErr(452, [3]int{4, 2, 2}, "mailbox full")
			}
			return nil
		}
	})
	clock := newFakeClock()
	s := openSpool(t, t.TempDir(), newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone}), WithClock(clock.Now))
	m := testMessage("s@bank.example", "full@b.example")
	m.Class = "otp"
	m.Expires = clock.Now().Add(20 * time.Second) // shorter than the otp lane's first backoff
	id, err := s.Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	waitFor(t, "first attempt", attempts(s, id, 1))
	in, _ := s.Get(id)
	if !in.NextAttempt.Equal(m.Expires) {
		t.Errorf("next attempt %v, want clamped to expiry %v", in.NextAttempt, m.Expires)
	}
	clock.Set(m.Expires)
	waitFor(t, "expired entry removed", gone(s, id))
	waitFor(t, "DSN delivered", func() bool { return sk.received("s@bank.example") == 1 })
	if sk.received("full@b.example") != 0 {
		t.Errorf("the message was delivered")
	}
	dsn := sk.Messages()[0]
	checkDSN(t, dsn.Data, map[string]string{"full@b.example": "4.2.2"}, "452 4.2.2 mailbox full")
	if !bytes.Contains(dsn.Data, []byte("class otp")) {
		t.Errorf("DSN does not name the class")
	}
}

// Invariant 5: no DSN to the null sender.
func TestNullSenderGetsNoDSN(t *testing.T) {
	hop := &recordingHop{reply: func(to string) error {
		return &DeliveryError{Code: 550, Enhanced: "5.1.1", Message: "no such user"}
	}}
	s := openSpool(t, t.TempDir(), hop)
	id, err := s.Put(context.Background(), testMessage("", "gone@a.example"))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	waitFor(t, "entry finished", gone(s, id))
	// Anything queued after is delivered after a DSN would have been.
	hop.setReply(nil)
	probe, _ := s.Put(context.Background(), testMessage("p@bank.example", "ok@a.example"))
	waitFor(t, "probe", gone(s, probe))
	for _, c := range hop.Calls() {
		if c.From == "" && c.To[0] != "gone@a.example" {
			t.Errorf("a DSN was sent to %v", c.To)
		}
	}
	if l, _ := s.List(); len(l) != 0 {
		t.Errorf("spool holds %v", l)
	}
	if !strings.Contains(s.logs.String(), "no DSN for the null sender") {
		t.Errorf("log does not say the DSN was suppressed")
	}
}

func TestDeliverToMaildir(t *testing.T) {
	md := &Maildir{Dir: filepath.Join(t.TempDir(), "Maildir")}
	s := openSpool(t, t.TempDir(), md)
	start(t, s)
	m := testMessage("s@bank.example", "a@a.example", "b@b.example")
	id, err := s.Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivered", gone(s, id))
	files := spoolFiles(t, md.Dir, "new")
	if len(files) != 1 {
		t.Fatalf("new/ = %v, want one file for both recipients", files)
	}
	if got, _ := os.ReadFile(filepath.Join(md.Dir, "new", files[0])); !bytes.Equal(got, m.Data) {
		t.Errorf("maildir file differs from the message")
	}
	if tmp := spoolFiles(t, md.Dir, "tmp"); len(tmp) != 0 {
		t.Errorf("tmp/ = %v", tmp)
	}
	if _, err := os.Stat(filepath.Join(md.Dir, "cur")); err != nil {
		t.Errorf("cur/ missing: %v", err)
	}
}

// Invariant 6: logs carry IDs, classes and domains, never bodies or full
// addresses.
func TestLogsCarryNoBodyOrAddress(t *testing.T) {
	sk := newSink(t, nil, func(sk *sink) {
		sk.rcptReply = func(to string) error {
			switch to {
			case "bob.secret@c.example":
				return smtpErr(550, [3]int{5, 1, 1}, "bob.secret@c.example: no such user")
			case "carol.secret@d.example":
				return smtpErr(451, [3]int{4, 3, 0}, "carol.secret@d.example: later")
			}
			return nil
		}
	})
	s := openSpool(t, t.TempDir(), newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone}))
	start(t, s)
	id, err := s.Put(context.Background(),
		testMessage("alice.secret@bank.example", "dave.secret@a.example", "bob.secret@c.example", "carol.secret@d.example"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "attempt", attempts(s, id, 1))
	waitFor(t, "DSN", func() bool { return sk.received("alice.secret@bank.example") == 1 })
	logs := s.logs.String()
	if leak := containsAny(logs, testBody, "BODY-SECRET", ".secret@", "alice.secret", "bob.secret", "carol.secret", "dave.secret"); leak != "" {
		t.Fatalf("log leaks %q:\n%s", leak, logs)
	}
	for _, want := range []string{id, "statement", "a.example", "c.example", "d.example"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestQueueControl(t *testing.T) {
	hop := &recordingHop{reply: func(string) error {
		return &DeliveryError{Temporary: true, Code: 421, Enhanced: "4.4.2", Message: "busy"}
	}}
	dir := t.TempDir()
	s := openSpool(t, dir, hop)
	a, _ := s.Put(context.Background(), testMessage("s@bank.example", "a@a.example"))
	b, _ := s.Put(context.Background(), testMessage("s@bank.example", "b@b.example"))
	if l, _ := s.List(); len(l) != 2 {
		t.Fatalf("List = %v", l)
	}
	for _, f := range []func(string) error{s.Retry, s.Delete, func(id string) error { _, err := s.Get(id); return err }} {
		if err := f("NOSUCHIDNOSUCHID"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown id: %v, want ErrNotFound", err)
		}
	}
	if err := s.Delete(a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "queue", a+".msg")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted entry still on disk: %v", err)
	}
	start(t, s)
	waitFor(t, "first attempt", attempts(s, b, 1))
	if err := s.Retry(b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "retry", attempts(s, b, 2))
	s.Flush()
	waitFor(t, "flush", attempts(s, b, 3))
	for _, c := range hop.Calls() {
		if c.To[0] == "a@a.example" {
			t.Errorf("deleted entry was delivered")
		}
	}
}

// A next hop that breaks its contract defers the message; it does not
// crash the spool or lose the message.
func TestMisbehavingNextHop(t *testing.T) {
	for name, hop := range map[string]NextHop{
		"panics":        panicHop{},
		"wrong results": wrongCountHop{},
	} {
		t.Run(name, func(t *testing.T) {
			s := openSpool(t, t.TempDir(), hop)
			start(t, s)
			id, _ := s.Put(context.Background(), testMessage("s@bank.example", "a@a.example", "b@b.example"))
			waitFor(t, "attempt", attempts(s, id, 1))
			in, _ := s.Get(id)
			for _, r := range in.Recipients {
				if r.Status != "pending" || !strings.HasPrefix(r.LastError, "4.3.0") {
					t.Errorf("%+v, want pending with a temporary local error", r)
				}
			}
		})
	}
}

type panicHop struct{}

func (panicHop) Deliver(context.Context, string, []string, []byte) []error { panic("boom") }

type wrongCountHop struct{}

func (wrongCountHop) Deliver(context.Context, string, []string, []byte) []error { return nil }

// A restart between recording failures and queueing their DSN reports them
// once, and a delivered recipient is not sent to again.
func TestRestartWithUnreportedFailure(t *testing.T) {
	dir := t.TempDir()
	s1 := openSpool(t, dir, &recordingHop{})
	id, _ := s1.Put(context.Background(), testMessage("s@bank.example", "ok@a.example", "bad@b.example"))
	// The state a crash right after saveState leaves behind.
	st := &entryState{ID: id, Next: time.Now(), Rcpts: []rcptState{
		{Status: statusDelivered, Attempts: 1},
		{Status: statusFailed, Attempts: 1, Last: &DeliveryError{Code: 550, Enhanced: "5.1.1", Message: "unknown"}},
	}}
	s1.saveState(s1.entries[id], st)
	crash(s1)

	hop := &recordingHop{}
	s2 := openSpool(t, dir, hop)
	start(t, s2)
	waitFor(t, "finished", gone(s2, id))
	waitFor(t, "DSN delivered", func() bool { return len(hop.Calls()) == 1 })
	probe, _ := s2.Put(context.Background(), testMessage("p@bank.example", "x@a.example"))
	waitFor(t, "probe", gone(s2, probe))
	calls := hop.Calls()
	if len(calls) != 2 || calls[0].From != "" || calls[0].To[0] != "s@bank.example" {
		t.Fatalf("calls = %+v, want one DSN then the probe", calls)
	}
}

func withDir(c Config, dir string) Config { c.Dir = dir; return c }

// with is DefaultConfig in /x, changed by edit.
func with(edit func(*Config)) Config {
	c := withDir(DefaultConfig(), "/x")
	edit(&c)
	return c
}
