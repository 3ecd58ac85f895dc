package queue

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
)

func TestLanesValidate(t *testing.T) {
	lane := func(f func(*Lane)) func(*Config) {
		return func(c *Config) {
			l := c.Lanes[OTPLane]
			f(&l)
			c.Lanes[OTPLane] = l
		}
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // the paths of the problems
	}{
		{"no lanes", func(c *Config) { c.Lanes = nil }, nil},
		{"a second lane", func(c *Config) {
			c.Lanes["bulk"] = Lane{Classes: []string{"statement", "support"}, Workers: 8,
				MinBackoff: config.Duration(time.Minute), MaxBackoff: config.Duration(time.Hour)}
		}, nil},
		{"zero workers", lane(func(l *Lane) { l.Workers = 0 }), []string{"lanes.otp.workers"}},
		{"negative workers", lane(func(l *Lane) { l.Workers = -2 }), []string{"lanes.otp.workers"}},
		{"too many workers", lane(func(l *Lane) { l.Workers = 1025 }), []string{"lanes.otp.workers"}},
		{"zero min backoff", lane(func(l *Lane) { l.MinBackoff = 0 }), []string{"lanes.otp.min_backoff"}},
		{"negative max backoff", lane(func(l *Lane) { l.MaxBackoff = config.Duration(-time.Second) }), []string{"lanes.otp.max_backoff"}},
		{"max below min", lane(func(l *Lane) {
			l.MinBackoff, l.MaxBackoff = config.Duration(time.Minute), config.Duration(30*time.Second)
		}),
			[]string{"lanes.otp.max_backoff"}},
		{"no classes", lane(func(l *Lane) { l.Classes = nil }), []string{"lanes.otp.classes"}},
		{"a bad class", lane(func(l *Lane) { l.Classes = []string{"otp", "call verify"} }), []string{"lanes.otp.classes[1]"}},
		{"an empty class", lane(func(l *Lane) { l.Classes = []string{""} }), []string{"lanes.otp.classes[0]"}},
		{"a class in two lanes", func(c *Config) {
			c.Lanes["codes"] = Lane{Classes: []string{"call", "otp"}, Workers: 1,
				MinBackoff: config.Duration(time.Second), MaxBackoff: config.Duration(time.Second)}
		}, []string{"lanes.otp.classes[0]"}}, // "codes" sorts first and keeps it
		{"a class twice in one lane", lane(func(l *Lane) { l.Classes = []string{"otp", "otp"} }), []string{"lanes.otp.classes[1]"}},
		{"a bad name", func(c *Config) { c.Lanes["two words"] = c.Lanes[OTPLane]; delete(c.Lanes, OTPLane) }, []string{`lanes["two words"]`}},
		{"every problem", lane(func(l *Lane) { l.Classes, l.Workers, l.MinBackoff = nil, 0, 0 }),
			[]string{"lanes.otp.classes", "lanes.otp.workers", "lanes.otp.min_backoff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withDir(DefaultConfig(), "/x")
			tt.change(&c)
			var got []string
			for _, fe := range config.FieldErrors(c.Validate()) {
				got = append(got, fe.Path)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate() = %v: problems at %q, want %q", c.Validate(), got, tt.want)
			}
		})
	}
}

func TestDefaultLanes(t *testing.T) {
	l, ok := DefaultConfig().Lanes[OTPLane]
	if !ok || !slices.Equal(l.Classes, []string{"otp"}) || l.Workers != 2 ||
		l.MinBackoff != config.Duration(30*time.Second) || l.MaxBackoff != config.Duration(2*time.Minute) {
		t.Fatalf("default lanes: %+v", DefaultConfig().Lanes)
	}
	// Each DefaultConfig has its own map: changing one does not change the next.
	DefaultConfig().Lanes["x"] = Lane{}
	if _, ok := DefaultConfig().Lanes["x"]; ok {
		t.Fatal("DefaultConfig shares its Lanes map")
	}
}

// laneHop is a next hop on which statements (from statements@) block until release is closed,
// while everything else is accepted at once and announced on otp.
type laneHop struct {
	release    chan struct{}
	inFlight   atomic.Int32 // statements inside Deliver
	statements atomic.Int32 // statements accepted
	otp        chan time.Time
	otpDefer   atomic.Bool // OTPs get a 451
	once       sync.Once
}

func newLaneHop() *laneHop {
	return &laneHop{release: make(chan struct{}), otp: make(chan time.Time, 1024)}
}

func (h *laneHop) Deliver(ctx context.Context, from string, to []string, _ []byte) []error {
	errs := make([]error, len(to))
	if from == statementSender {
		h.inFlight.Add(1)
		defer h.inFlight.Add(-1)
		<-h.release
		h.statements.Add(int32(len(to)))
		return errs
	}
	if h.otpDefer.Load() {
		for i := range errs {
			errs[i] = &DeliveryError{Temporary: true, Code: 451, Enhanced: "4.3.0", Message: "try later"}
		}
	}
	h.otp <- time.Now()
	return errs
}

// unblock lets the statements through; at cleanup, so that Close does not wait for ever.
func (h *laneHop) unblock() { h.once.Do(func() { close(h.release) }) }

const statementSender = "statements@bank.example"

func statementMessage() *Message {
	m := testMessage(statementSender, "c@a.example")
	m.Class = "statement"
	return m
}

func otpMessage() *Message {
	m := testMessage("otp@bank.example", "c@a.example")
	m.Class = "otp"
	m.Expires = time.Now().Add(10 * time.Minute)
	return m
}

// putMany queues n copies of m, several at a time (the spool syncs concurrent Puts together).
func putMany(t testing.TB, s *testSpool, n int, m *Message) {
	t.Helper()
	var wg sync.WaitGroup
	var failed atomic.Value
	next := atomic.Int64{}
	for range 16 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := s.Put(context.Background(), m); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// statementRun is how many statements a test queues ahead of an OTP: thousands, all due.
const statementRun = 2000

// A statement run never delays a due OTP: the default workers are all stuck on statements, thousands
// more are due behind them, and the OTP is still delivered. Without lanes it waits for ever.
func TestOTPNotBehindStatements(t *testing.T) {
	hop := newLaneHop()
	s := openSpool(t, t.TempDir(), hop, withFileOps(noSyncOps{})) // lanes, not durability
	t.Cleanup(hop.unblock)                                        // runs before the spool's Close
	putMany(t, s, statementRun, statementMessage())
	start(t, s)
	waitFor(t, "every default worker busy with a statement", func() bool { return hop.inFlight.Load() == 2 })

	id, err := s.Put(context.Background(), otpMessage())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the OTP delivered", gone(s, id))
	if n := hop.statements.Load(); n != 0 {
		t.Fatalf("%d statements delivered before the OTP; the hop held them all", n)
	}
	if depth, _ := s.Stats(); depth != statementRun {
		t.Fatalf("%d entries left, want the %d statements", depth, statementRun)
	}
	hop.unblock()
	waitFor(t, "the statements delivered", func() bool { d, _ := s.Stats(); return d == 0 })
}

// Entries read again at start go to their lane: after a crash the OTP is still delivered ahead of
// the statements, and retried on its lane's schedule, not the statements'.
func TestLanesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	before := openSpool(t, dir, newLaneHop(), WithClock(clock.Now), withFileOps(noSyncOps{}))
	putMany(t, before, statementRun, statementMessage())
	m := otpMessage()
	m.Expires = clock.Now().Add(10 * time.Minute)
	id, err := before.Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	crash(before)

	hop := newLaneHop()
	hop.otpDefer.Store(true)
	s := openSpool(t, dir, hop, WithClock(clock.Now), withFileOps(noSyncOps{}))
	t.Cleanup(hop.unblock)
	start(t, s)
	waitFor(t, "the OTP attempted", attempts(s, id, 1))
	in, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if n := hop.statements.Load(); n != 0 {
		t.Fatalf("%d statements delivered before the OTP's attempt", n)
	}
	wait := in.NextAttempt.Sub(clock.Now())
	if lo, hi := time.Duration(0.8*float64(DefaultOTPMinBackoff)), time.Duration(1.2*float64(DefaultOTPMinBackoff)); wait < lo || wait > hi {
		t.Fatalf("OTP retried in %v, want the otp lane's first backoff, within [%v, %v]", wait, lo, hi)
	}
	hop.otpDefer.Store(false)
	clock.Set(in.NextAttempt)
	waitFor(t, "the OTP delivered on retry", gone(s, id))
	if n := hop.statements.Load(); n != 0 {
		t.Fatalf("%d statements delivered; the hop held them all", n)
	}
}

// A class no lane names, and a DSN, are the default workers'; a lane of its own moves a class
// off them.
func TestLaneOfClass(t *testing.T) {
	cfg := spoolConfig(t.TempDir(), 2, 5*time.Millisecond)
	cfg.Lanes["bulk"] = Lane{Classes: []string{"statement"}, Workers: 1,
		MinBackoff: config.Duration(time.Minute), MaxBackoff: config.Duration(time.Hour)}
	s, err := Open(cfg, &recordingHop{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for class, want := range map[string]string{"otp": "otp", "statement": "bulk", "support": "", "dsn": "", "": ""} {
		if got := s.laneOf(class).name; got != want {
			t.Errorf("class %q: lane %q, want %q", class, got, want)
		}
	}
}
