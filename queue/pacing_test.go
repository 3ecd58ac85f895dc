package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sealpost/sealpost/config"
)

// TestPressure: a lane is paced while it holds max_depth entries, or while its oldest entry not
// yet tried (as its scan last saw) has waited max_wait; other lanes are not; a lane's zero
// pacing is the default lane's, and values out of range are refused at their keys.
func TestPressure(t *testing.T) {
	clock := newFakeClock()
	cfg := spoolConfig(t.TempDir(), 2, 5*time.Millisecond)
	cfg.MaxDepth, cfg.MaxWait = 3, config.Duration(10*time.Minute)
	cfg.Lanes = map[string]Lane{"otp": {Classes: []string{"otp"}, Workers: 1, MinBackoff: config.Duration(time.Second), MaxBackoff: config.Duration(time.Second)}}
	s, err := Open(cfg, &recordingHop{}, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(class string) {
		t.Helper()
		m := testMessage("statements@bank.example", "a@example.com")
		m.Class = class
		if _, err := s.Put(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	put("statement")
	s.dueEntries(s.laneOf("statement"))
	if err := s.Pressure("statement"); err != nil {
		t.Fatalf("one fresh entry: %v", err)
	}
	// Waiting: 10 minutes on, the entry the scan saw is still untried.
	clock.Set(clock.Now().Add(10 * time.Minute))
	var pe *PacedError
	if err := s.Pressure("statement"); !errors.As(err, &pe) || !errors.Is(err, ErrPaced) || pe.Lane != "" || pe.Waited < 10*time.Minute {
		t.Fatalf("an entry untried for 10 minutes: %v; want the default lane paced by its wait", err)
	}
	if err := s.Pressure("otp"); err != nil {
		t.Fatalf("the otp lane while the default lane waits: %v", err)
	}
	// Depth: three entries in the otp lane (max_depth inherited: 3).
	for range 3 {
		put("otp")
	}
	if err := s.Pressure("otp"); !errors.As(err, &pe) || pe.Lane != "otp" || pe.Depth != 3 {
		t.Fatalf("the otp lane at its inherited max_depth: %v", err)
	}

	for _, c := range []struct {
		key  string
		edit func(*Config)
	}{
		{"max_depth", func(c *Config) { c.MaxDepth = 0 }},
		{"max_wait", func(c *Config) { c.MaxWait = 0 }},
		{"lanes.otp.max_depth", func(c *Config) { l := c.Lanes["otp"]; l.MaxDepth = -1; c.Lanes["otp"] = l }},
		{"lanes.otp.max_wait", func(c *Config) {
			l := c.Lanes["otp"]
			l.MaxWait = config.Duration(time.Millisecond)
			c.Lanes["otp"] = l
		}},
		{"lanes.otp.max_depth", func(c *Config) { l := c.Lanes["otp"]; l.MaxDepth = 20_000_000; c.Lanes["otp"] = l }},
	} {
		cfg := DefaultConfig()
		cfg.Dir = t.TempDir()
		c.edit(&cfg)
		var fe *config.FieldError
		if err := cfg.Validate(); !errors.As(err, &fe) || fe.Path != c.key {
			t.Errorf("%s out of range: %v", c.key, err)
		}
	}
	cfg = DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Lanes["otp"] = Lane{Classes: []string{"otp"}, Workers: 1, MinBackoff: config.Duration(time.Second), MaxBackoff: config.Duration(time.Second)}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a lane without pacing (the default lane's): %v", err)
	}
}
