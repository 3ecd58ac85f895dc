package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/internal/logtest"
	"github.com/sealpost/sealpost/smtpd"
)

// dribblers are n slow clients against addr, each from its own address 127.0.x.y (at most two
// per /24): each sends "NOOP\r\n" one byte every drip and connects again after drip whenever
// the server closes it. greeted counts the 220s they got.
func dribblers(t *testing.T, addr string, n int, drip time.Duration) (greeted *atomic.Int64) {
	t.Helper()
	from := func(i int) *net.TCPAddr { return &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i%250), byte(1+i/250))} }
	probe := net.Dialer{LocalAddr: from(n - 1)}
	c, err := probe.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot connect from %v (distinct loopback source addresses need Linux): %v", from(n-1).IP, err)
	}
	c.Close()
	greeted = &atomic.Int64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	pause := func() bool {
		select {
		case <-stop:
			return false
		case <-time.After(drip):
			return true
		}
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: from(i), Timeout: 30 * time.Second}
			for {
				if c, err := d.Dial("tcp", addr); err == nil {
					closed := make(chan struct{})
					go func() {
						defer close(closed)
						r := bufio.NewReader(c)
						if l, err := r.ReadString('\n'); err == nil && strings.HasPrefix(l, "220 ") {
							greeted.Add(1)
						}
						_, _ = io.Copy(io.Discard, r)
					}()
				hold:
					for j := 0; ; j++ {
						select {
						case <-closed:
							break hold
						case <-stop:
							break hold
						case <-time.After(drip):
							if _, err := c.Write([]byte{"NOOP\r\n"[j%6]}); err != nil {
								break hold
							}
						}
					}
					c.Close()
					<-closed
				}
				if !pause() {
					return
				}
			}
		}()
	}
	return greeted
}

// goodClient connects, expects the 220 and sends one message; it returns the final reply.
func goodClient(t *testing.T, addr, from string, to []string, msg string) sendResult {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // only against a hang; nothing is timed
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("good-client.localhost"); err != nil {
		t.Fatalf("greeting and EHLO: %v", err)
	}
	res := send(c, from, to, []byte(msg))
	_ = c.Quit()
	return res
}

// TestServeSlowClientsDoNotLockOut is issue 11's probe through serve: 300 slow clients from
// distinct loopback addresses on the submission listener and 300 on the inbound listener
// dribble a byte every half second and come back whenever they are closed; the bank's MTA still
// gets its 220 and its statement queued, and a customer's reply still reaches the inbound
// listener. Before, both got "421 4.7.0 Too many connections" while the slow clients held on.
// command_timeout is scaled down to 2s (a dribbled NOOP takes 3s) so the slow clients are also
// cut during the test.
func TestServeSlowClientsDoNotLockOut(t *testing.T) {
	log, logs := logtest.New()
	inst, cfg, _, _ := testInstanceLogging(t, func(c *Config) {
		c.SMTP.CommandTimeout = config.Duration(2 * time.Second)
		c.Inbound.Listener.CommandTimeout = config.Duration(2 * time.Second)
	}, log)
	const drip = 500 * time.Millisecond
	submission := dribblers(t, inst.Addr().String(), 300, drip)
	inbound := dribblers(t, inst.InboundAddr().String(), 300, drip)
	for end := time.Now().Add(30 * time.Second); submission.Load() < int64(cfg.SMTP.MaxConnections) ||
		inbound.Load() < int64(cfg.Inbound.Listener.MaxConnections); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the slow clients did not take the slots: %d and %d greeted", submission.Load(), inbound.Load())
		}
	}
	time.Sleep(2 * drip) // the slow clients are inside their commands

	for i := range 2 {
		res := goodClient(t, inst.Addr().String(), "statements@bank.example", []string{"alice@example.com"},
			fmt.Sprintf("From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: Statement %d\r\n\r\nYour balance.\r\n", i))
		if res.Err != nil || !strings.Contains(res.Reply, "queued as") {
			t.Fatalf("the bank's statement %d: %v %q", i, res.Err, res.Reply)
		}
		reply := fmt.Sprintf("From: bob@example.net\r\nTo: support@bank.example\r\nSubject: Re: card %d\r\n\r\nThanks.\r\n", i)
		if res := goodClient(t, inst.InboundAddr().String(), "bob@example.net", []string{"support@bank.example"}, reply); res.Err != nil {
			t.Fatalf("a customer's reply %d: %v %q", i, res.Err, res.Reply)
		}
	}
	if !strings.Contains(logs.String(), "smtp connection shed") {
		t.Fatal("no connection was shed: the slow clients did not fill the listeners, and the test shows nothing")
	}
}

// TestConfigSlowClientBounds: the slow-client bounds of both listeners are read from the file,
// reach smtpd as written, and a bad one is reported at its path.
func TestConfigSlowClientBounds(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(f, []byte(`{"identities": "development",
		"smtp": {"command_timeout": "10s", "min_data_rate": 500, "min_data_rate_grace": "1m", "max_session_duration": "1h", "max_connections_per_network": 40},
		"inbound": {"listener": {"command_timeout": "20s", "min_data_rate": 2048, "min_data_rate_grace": "45s", "max_session_duration": "10m", "max_connections_per_network": 5}}}`), 0o600)
	cfg, err := loadConfig(f, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		got  smtpd.Config
		want smtpd.Config
	}{
		{"smtp", cfg.SMTP, smtpd.Config{CommandTimeout: config.Duration(10 * time.Second), MinDataRate: 500, MinDataRateGrace: config.Duration(time.Minute), MaxSessionDuration: config.Duration(time.Hour), MaxConnectionsPerNetwork: 40}},
		{"inbound.listener", cfg.Inbound.Listener, smtpd.Config{CommandTimeout: config.Duration(20 * time.Second), MinDataRate: 2048, MinDataRateGrace: config.Duration(45 * time.Second), MaxSessionDuration: config.Duration(10 * time.Minute), MaxConnectionsPerNetwork: 5}},
	} {
		g, w := tt.got, tt.want
		if g.CommandTimeout != w.CommandTimeout || g.MinDataRate != w.MinDataRate || g.MinDataRateGrace != w.MinDataRateGrace ||
			g.MaxSessionDuration != w.MaxSessionDuration || g.MaxConnectionsPerNetwork != w.MaxConnectionsPerNetwork {
			t.Errorf("%s reaches smtpd as %+v", tt.name, g)
		}
	}

	os.WriteFile(f, []byte(`{"smtp": {"min_data_rate": -1, "command_timeout": "-1s"}, "inbound": {"listener": {"max_connections_per_network": 1000, "max_session_duration": "-1m"}}}`), 0o600)
	_, err = loadConfig(f, "")
	for _, path := range []string{"smtp.min_data_rate", "smtp.command_timeout", "inbound.listener.max_connections_per_network", "inbound.listener.max_session_duration"} {
		if problemAt(err, path) == nil {
			t.Errorf("no problem at %s in %v", path, err)
		}
	}
}
