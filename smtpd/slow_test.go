package smtpd

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/sealpost/sealpost/config"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/internal/logtest"
)

// slowSwarm is n slow clients, each from its own address 127.0.x.y (one or two per /24, so that
// no per-client or per-network limit stops them): each sends "NOOP\r\n" one byte every drip
// and, when the server closes it or refuses it, connects again after drip.
type slowSwarm struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	greeted  atomic.Int64 // 220s seen
	refused  atomic.Int64 // 421s seen as a greeting
	dialErrs atomic.Int64
}

// swarmAddr is the address of slow client i: 127.0.x.y, x in 1..250.
func swarmAddr(i int) string { return fmt.Sprintf("127.0.%d.%d", 1+i%250, 1+i/250) }

func startSlowSwarm(t testing.TB, addr string, n int, drip time.Duration) *slowSwarm {
	t.Helper()
	// Linux routes all of 127.0.0.0/8 to lo; elsewhere only 127.0.0.1 may be bound.
	probe := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(swarmAddr(n - 1))}}
	c, err := probe.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot connect from %s (distinct loopback source addresses need Linux): %v", swarmAddr(n-1), err)
	}
	c.Close()
	s := &slowSwarm{stop: make(chan struct{})}
	for i := range n {
		s.wg.Add(1)
		go s.client(addr, swarmAddr(i), drip)
	}
	t.Cleanup(s.close)
	return s
}

func (s *slowSwarm) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
}

func (s *slowSwarm) client(addr, from string, drip time.Duration) {
	defer s.wg.Done()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: hangGuard}
	for {
		if c, err := d.Dial("tcp", addr); err != nil {
			s.dialErrs.Add(1)
		} else {
			s.dribble(c, drip)
		}
		select {
		case <-s.stop:
			return
		case <-time.After(drip):
		}
	}
}

// dribble holds one connection: it reads replies, and sends one byte every drip until the
// server closes the connection or the swarm stops.
func (s *slowSwarm) dribble(c net.Conn, drip time.Duration) {
	defer c.Close()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		r := bufio.NewReader(c)
		for first := true; ; first = false {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case first && strings.HasPrefix(l, "220 "):
				s.greeted.Add(1)
			case first && strings.HasPrefix(l, "421 "):
				s.refused.Add(1)
			}
		}
	}()
	const cmd = "NOOP\r\n"
	for i := 0; ; i++ {
		select {
		case <-s.stop:
			return
		case <-closed:
			return
		case <-time.After(drip):
		}
		if _, err := c.Write([]byte{cmd[i%len(cmd)]}); err != nil {
			return
		}
	}
}

// waitUntil polls cond until it holds; only hangGuard stops a broken test.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(hangGuard); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting until %s", what)
		}
	}
}

// TestSlowClientsDoNotLockOut is issue 11's probe: 300 slow clients from distinct loopback
// addresses dribble a byte every half second and reconnect whenever they are closed, so every
// slot stays taken; a good client still gets its 220 and completes transactions, on a
// submission listener and on a public (inbound) one. Before, the good client got "421 4.7.0
// Too many connections" for as long as the slow ones held on: go-smtp's read timeout restarts
// with every command line and nothing else bounded them.
//
// The server's CommandTimeout is scaled down from 30s to 2s so that the slow clients are also
// cut and come back during the test (a dribbled NOOP takes them 3s).
func TestSlowClientsDoNotLockOut(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"submission", Config{}},
		{"inbound", Config{Public: true, AllowedNetworks: []string{}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.CommandTimeout = config.Duration(2 * time.Second)
			srv := startServer(t, cfg, nil)
			const drip = 500 * time.Millisecond
			swarm := startSlowSwarm(t, srv.addr, 300, drip)
			waitUntil(t, "the slow clients take every slot", func() bool {
				return srv.limits.open() == srv.cfg.MaxConnections && swarm.greeted.Load() >= int64(srv.cfg.MaxConnections)
			})
			// Good clients come while the slow ones are inside their commands, and while
			// CommandTimeout cuts them and they come back.
			time.Sleep(drip)
			for i := range 3 {
				time.Sleep(drip)
				c := dialFrom(t, srv.addr, "127.0.0.1")
				c.expect("220 ")
				c.do("EHLO good.example", "250")
				if r := c.transaction("a@bank.example", "support@bank.example", message); !strings.HasPrefix(r, "250 2.0.0 queued as") {
					t.Fatalf("good client's transaction %d: %q", i, r)
				}
				c.do("QUIT", "221 ")
			}
			if n := len(srv.rec.msgs()); n != 3 {
				t.Fatalf("the gateway got %d messages, want 3", n)
			}
			swarm.close()
			if !shedFor(srv.logs.String(), "127.0.0.1") {
				t.Fatalf("no good client came while every slot was taken: the test does not show what it should")
			}
			t.Logf("slow clients: %d greeted, %d refused, %d dial errors", swarm.greeted.Load(), swarm.refused.Load(), swarm.dialErrs.Load())
		})
	}
}

// shedFor reports whether, in logs, a client from ip took the slot of a shed connection.
func shedFor(logs, ip string) bool {
	sessions := map[string]bool{}
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `msg="smtp connect"`) && (strings.HasSuffix(l, " remote="+ip) || strings.Contains(l, " remote="+ip+" ")) {
			if _, rest, ok := strings.Cut(l, " session="); ok {
				sessions[strings.Fields(rest)[0]] = true
			}
		}
	}
	for _, l := range strings.Split(logs, "\n") {
		if _, rest, ok := strings.Cut(l, " for_session="); ok && strings.Contains(l, "smtp connection shed") && sessions[strings.Fields(rest)[0]] {
			return true
		}
	}
	return false
}

// TestCommandTimeout: a command line must be complete within CommandTimeout of its first
// byte; the part that came is never executed. The idle wait before a command is ReadTimeout's,
// also under TLS, and the TLS handshake after STARTTLS counts as part of the STARTTLS command.
// Before, each line could take up to ReadTimeout (5 minutes), and a half-sent command was
// executed when a read timed out.
func TestCommandTimeout(t *testing.T) {
	const cmdTimeout = 300 * time.Millisecond
	certFile, keyFile, pool := testCert(t)
	cfg := Config{CommandTimeout: config.Duration(cmdTimeout), TLSCert: certFile, TLSKey: keyFile}
	want := "421 4.4.2 Command not complete within 300ms, closing connection"

	t.Run("dribbled command", func(t *testing.T) {
		srv := startServer(t, cfg, nil)
		c := dial(t, srv.addr)
		c.do("EHLO client.example", "250")
		go func() {
			for _, b := range []byte("NOOP\r\n") {
				time.Sleep(cmdTimeout / 3)
				if _, err := c.conn.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
		c.expect(want)
		c.expectClosed()
	})
	t.Run("half a command is not executed", func(t *testing.T) {
		srv := startServer(t, cfg, nil)
		c := dial(t, srv.addr)
		c.do("EHLO client.example", "250")
		c.send("MAIL FROM:<a@bank.example>")
		c.expect(want)
		c.expectClosed()
		if _, events, _ := srv.rec.snapshot(); len(events) > 0 {
			t.Fatalf("the gateway saw %q", events)
		}
		if !strings.Contains(srv.logs.String(), "dropped_partial_command_bytes=26") {
			t.Errorf("the dropped command is not logged:\n%s", srv.logs)
		}
	})
	t.Run("half a command at the idle timeout is not executed", func(t *testing.T) {
		srv := startServer(t, Config{ReadTimeout: config.Duration(cmdTimeout)}, nil)
		c := dial(t, srv.addr)
		c.do("EHLO client.example", "250")
		c.send("MAIL FROM:<a@bank.example>")
		c.expect("421 4.4.2")
		c.expectClosed()
		if _, events, _ := srv.rec.snapshot(); len(events) > 0 {
			t.Fatalf("the gateway saw %q", events)
		}
	})
	t.Run("idle is not cut", func(t *testing.T) {
		srv := startServer(t, cfg, nil)
		c := dial(t, srv.addr)
		time.Sleep(2 * cmdTimeout)
		c.do("EHLO client.example", "250")
		time.Sleep(2 * cmdTimeout)
		c.do("NOOP", "250 ")
	})
	t.Run("pipelined commands", func(t *testing.T) {
		srv := startServer(t, cfg, nil)
		c := dial(t, srv.addr)
		c.send("EHLO client.example\r\nMAIL FROM:<a@bank.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n")
		for _, w := range []string{"250", "250 ", "250 ", "354 "} {
			c.expect(w)
		}
		c.send(message + ".\r\nNOOP\r\nQUIT\r\n")
		for _, w := range []string{"250 2.0.0 queued as", "250 ", "221 "} {
			c.expect(w)
		}
	})
	t.Run("handshake that never comes", func(t *testing.T) {
		srv := startServer(t, cfg, nil)
		c := dial(t, srv.addr)
		c.do("EHLO client.example", "250")
		c.do("STARTTLS", "220 ")
		// The server gives up on the handshake, then ends the connection (its 550 and 421
		// are in plain text, which a TLS client would not read).
		c.replies()
		if !strings.Contains(srv.logs.String(), "bound=command_timeout") {
			t.Errorf("the handshake was not cut by command_timeout:\n%s", srv.logs)
		}
	})
	t.Run("under TLS", func(t *testing.T) {
		srv := startServer(t, cfg, nil)
		c := dial(t, srv.addr)
		c.do("EHLO client.example", "250")
		c.startTLS(pool)
		time.Sleep(2 * cmdTimeout)
		c.do("EHLO client.example", "250")
		if r := c.transaction("a@bank.example", "x@example.com", message); !strings.HasPrefix(r, "250 2.0.0 queued as") {
			t.Fatalf("transaction under TLS: %q", r)
		}
		time.Sleep(2 * cmdTimeout)
		c.send("NO")
		// go-smtp may first answer the part it got (see the package documentation).
		rs := c.replies()
		if len(rs) == 0 || !strings.HasPrefix(rs[len(rs)-1], "421 4.4.2") {
			t.Fatalf("a stalled command under TLS got %q, want a last 421 4.4.2", rs)
		}
	})
	t.Run("half a command under TLS is not executed", func(t *testing.T) {
		srv := startServer(t, cfg, nil)
		c := dial(t, srv.addr)
		c.do("EHLO client.example", "250")
		c.startTLS(pool)
		c.do("EHLO client.example", "250")
		c.send("MAIL FROM:<a@bank.example>")
		c.replies()
		if _, events, _ := srv.rec.snapshot(); len(events) > 0 {
			t.Fatalf("the gateway saw %q from a command cut under TLS", events)
		}
	})
}

// TestNothingHeldAfterClose: when go-smtp closes a connection itself ("Too many errors"), the
// pipelined commands after that point are not executed (go-smtp would run them on a session it
// has already cleared, and panic).
func TestNothingHeldAfterClose(t *testing.T) {
	srv := startServer(t, Config{}, nil)
	c := dial(t, srv.addr)
	c.send("EHLO x\r\n00\r\n\r\n0\r\n0\r\nMAIL FROM:<a@bank.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n")
	rs := c.replies()
	if len(rs) == 0 || !strings.Contains(rs[len(rs)-1], "Too many errors") {
		t.Fatalf("replies %q, want the last to be go-smtp's Too many errors", rs)
	}
	if _, events, _ := srv.rec.snapshot(); len(events) > 0 {
		t.Fatalf("the gateway saw %q", events)
	}
}

// TestMinDataRate: after MinDataRateGrace a message (DATA or BDAT) must have come at
// MinDataRate; a dribbled one gets 421 and never reaches the gateway, one sent faster is taken
// however long it takes. Before, a message could take up to ReadTimeout from its DATA command,
// or ReadTimeout per BDAT chunk.
func TestMinDataRate(t *testing.T) {
	cfg := Config{MinDataRate: 1000, MinDataRateGrace: config.Duration(time.Second)}
	want := "421 4.4.2 Message data slower than 1000 bytes/s, closing connection"
	dribble := func(c *client, stop <-chan struct{}) {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := c.conn.Write([]byte("a")); err != nil {
				return
			}
		}
	}
	for _, tt := range []struct {
		name, start string
	}{
		{"DATA", "DATA\r\n"},
		{"BDAT", "BDAT 100000 LAST\r\n"},
	} {
		t.Run(tt.name+" dribbled", func(t *testing.T) {
			srv := startServer(t, cfg, nil)
			c := dial(t, srv.addr)
			c.script("EHLO client.example", "250", "MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ")
			c.send(tt.start)
			if tt.name == "DATA" {
				c.expect("354 ")
			}
			c.send("Subject: slow\r\n\r\n")
			stop := make(chan struct{})
			defer close(stop)
			go dribble(c, stop)
			c.expect(want)
			c.expectClosed()
			if _, events, _ := srv.rec.snapshot(); strings.Contains(strings.Join(events, ","), "data") {
				t.Fatalf("the gateway got the message: %q", events)
			}
		})
	}
	t.Run("fast enough, past the grace", func(t *testing.T) {
		srv := startServer(t, cfg, nil)
		c := dial(t, srv.addr)
		c.script("EHLO client.example", "250", "MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ", "DATA", "354 ")
		c.send("Subject: steady\r\n\r\n")
		line := strings.Repeat("a", 98) + "\r\n"
		// 100 bytes every 10ms is 10 kB/s, ten times the minimum, for 1.5 times the grace.
		for range 150 {
			time.Sleep(10 * time.Millisecond)
			c.send(line)
		}
		c.send(".\r\n")
		c.expect("250 2.0.0 queued as")
		if m := srv.rec.msgs(); len(m) != 1 || len(m[0].data) < 150*len(line) {
			t.Fatalf("gateway got %d messages", len(m))
		}
	})
}

// TestMaxSessionDuration: a session ends at MaxSessionDuration however busy it is, between
// commands or inside a message (which is then not taken). Before, a client sending a NOOP now
// and then kept its connection for ever.
func TestMaxSessionDuration(t *testing.T) {
	cfg := Config{MaxSessionDuration: config.Duration(500 * time.Millisecond)}
	want := "421 4.4.2 Session time limit (500ms) reached, closing connection"
	t.Run("commands", func(t *testing.T) {
		srv := startServer(t, cfg, nil)
		c := dial(t, srv.addr)
		for {
			c.send("NOOP\r\n")
			r := c.expect("")
			if strings.HasPrefix(r, "421") {
				if r != want {
					t.Fatalf("got %q, want %q", r, want)
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.expectClosed()
	})
	t.Run("inside a message", func(t *testing.T) {
		srv := startServer(t, cfg, nil)
		c := dial(t, srv.addr)
		c.script("EHLO client.example", "250", "MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ", "DATA", "354 ")
		c.send("Subject: long\r\n\r\n")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				if _, err := io.WriteString(c.conn, strings.Repeat("a", 98)+"\r\n"); err != nil {
					return
				}
			}
		}()
		c.expect(want)
		c.expectClosed()
		if len(srv.rec.msgs()) != 0 {
			t.Fatal("the gateway got the message")
		}
	})
}

// TestSlowReaderEndsWithSession: a client that pipelines commands and does not read the
// replies is cut at MaxSessionDuration (plus the last reply's grace), not served for as long
// as it keeps sending. Before, each blocked reply could wait WriteTimeout, and every command it
// had sent was answered.
func TestSlowReaderEndsWithSession(t *testing.T) {
	srv := startServer(t, Config{MaxSessionDuration: config.Duration(500 * time.Millisecond)}, nil)
	c := dial(t, srv.addr)
	const n = 100000 // replies of 40 bytes each: more than the sockets hold
	go func() {
		_, _ = io.WriteString(c.conn, strings.Repeat("NOOP\r\n", n))
	}()
	time.Sleep(time.Second) // past the session's end, reading nothing
	replies := 0
	var err error
	for err == nil {
		if _, err = c.reply(); err == nil {
			replies++
		}
	}
	// The server closes with commands unread, so TCP may reset the connection before its last
	// reply (the session's 421) is read: the log says which bound ended it.
	var ne net.Error
	if replies >= n || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%d replies to %d commands, then %v: the server did not end the session", replies, n, err)
	}
	if !strings.Contains(srv.logs.String(), "bound=max_session_duration") {
		t.Errorf("not cut by the session's bound:\n%s", srv.logs)
	}
}

// TestConnectionsPerNetwork: a client outside AllowedNetworks over MaxConnectionsPerNetwork
// in its /24 gets 421 4.7.0, while another /24 is served; the bank's own networks are not
// counted. Before, only each address was limited.
func TestConnectionsPerNetwork(t *testing.T) {
	public := Config{Public: true, AllowedNetworks: []string{}, MaxConnections: 20, MaxConnectionsPerClient: 5, MaxConnectionsPerNetwork: 3}
	srv := startServer(t, public, nil)
	var open []*client
	for _, ip := range []string{"127.0.9.1", "127.0.9.2", "127.0.9.3"} {
		c := dialFrom(t, srv.addr, ip)
		c.expect("220 ")
		open = append(open, c)
	}
	c := dialFrom(t, srv.addr, "127.0.9.4")
	c.expect("421 4.7.0 Too many connections, try again later")
	c.expectClosed()
	if !strings.Contains(srv.logs.String(), "limit=max_connections_per_network") {
		t.Errorf("refusal not logged with its limit:\n%s", srv.logs)
	}
	dialFrom(t, srv.addr, "127.0.10.1").expect("220 ")
	open[0].do("QUIT", "221 ")
	open[0].expectClosed()
	dialFrom(t, srv.addr, "127.0.9.5").expect("220 ")

	t.Run("AllowedNetworks are not counted", func(t *testing.T) {
		cfg := public
		cfg.AllowedNetworks = []string{"127.0.9.0/24"}
		srv := startServer(t, cfg, nil)
		for _, ip := range []string{"127.0.9.1", "127.0.9.2", "127.0.9.3", "127.0.9.4"} {
			dialFrom(t, srv.addr, ip).expect("220 ")
		}
	})
}

// TestConnectionsPerNetworkIPv6: the per-network limit counts an IPv6 client's /64. lo has
// only ::1 (a /128), so the test holds the limit below the per-client one and connects from
// ::1 alone; TestNetworkOf shows which addresses share a /64.
func TestConnectionsPerNetworkIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	logs := &logtest.Buffer{}
	s, err := New(withDefaults(Config{Domain: "mx.sealpost.test", Public: true, AllowedNetworks: []string{}, MaxConnectionsPerClient: 5, MaxConnectionsPerNetwork: 2}),
		&recorder{}, WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() { s.Close(); <-done })
	addr := l.Addr().String()
	dial(t, addr)
	dial(t, addr)
	c := dialRaw(t, addr)
	c.expect("421 4.7.0 Too many connections, try again later")
	c.expectClosed()
	if !strings.Contains(logs.String(), "limit=max_connections_per_network") {
		t.Errorf("refusal not logged with its limit:\n%s", logs)
	}
}

// TestNetworkOf: IPv4 clients count by /24, IPv6 by /64, IPv4-mapped IPv6 as IPv4.
func TestNetworkOf(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.254", true},
		{"192.0.2.1", "192.0.3.1", false},
		{"::ffff:192.0.2.1", "192.0.2.7", true},
		{"::1", "::2", true},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"fe80::1%eth0", "fe80::2%eth1", true},
	} {
		a, b := networkOf(netip.MustParseAddr(tt.a)), networkOf(netip.MustParseAddr(tt.b))
		if (a == b) != tt.same || !a.IsValid() {
			t.Errorf("networkOf(%s) = %v, networkOf(%s) = %v; want same: %v", tt.a, a, tt.b, b, tt.same)
		}
	}
}

// blockingGateway makes the recorder's Data wait until release is closed, to hold a
// connection inside a gateway call.
func blockingGateway() (rec *recorder, entered <-chan struct{}, release chan struct{}) {
	in := make(chan struct{}, 10)
	release = make(chan struct{})
	rec = &recorder{dataErr: func([]byte) error {
		in <- struct{}{}
		<-release
		return nil
	}}
	return rec, in, release
}

// TestShedding: when every slot is taken a new client takes the slot of the connection that
// has owed its client's input the longest, which gets 421 4.4.5; a connection in a gateway
// call, or receiving a message at a good rate, is not shed; when no connection is waiting for
// its client the new one is refused. Before, the new client got 421 4.7.0 whatever the others
// were doing.
func TestShedding(t *testing.T) {
	shed := "421 4.4.5 Too busy, closing the connection that waited longest, try again later"
	t.Run("the one that waited longest", func(t *testing.T) {
		srv := startServer(t, Config{MaxConnections: 3}, nil)
		a := dialFrom(t, srv.addr, "127.0.0.1")
		a.expect("220 ")
		a.do("EHLO a.example", "250")
		b := dialFrom(t, srv.addr, "127.0.0.2")
		b.expect("220 ")
		b.do("EHLO b.example", "250")
		c := dialFrom(t, srv.addr, "127.0.0.3")
		c.expect("220 ")
		c.do("EHLO c.example", "250")
		b.do("NOOP", "250 ") // a has now waited longest
		d := dialFrom(t, srv.addr, "127.0.0.4")
		d.expect("220 ")
		a.expect(shed)
		a.expectClosed()
		b.do("NOOP", "250 ")
		c.do("NOOP", "250 ")
		d.do("EHLO d.example", "250")
		if r := d.transaction("a@bank.example", "x@example.com", message); !strings.HasPrefix(r, "250 2.0.0 queued as") {
			t.Fatalf("new client's transaction: %q", r)
		}
		if !strings.Contains(srv.logs.String(), "smtp connection shed") {
			t.Error("shedding not logged")
		}
	})
	t.Run("a source cut before goes first", func(t *testing.T) {
		// A slow client that reconnects at once always has the freshest wait: without its record
		// it would push the good clients out one by one.
		srv := startServer(t, Config{MaxConnections: 3, CommandTimeout: config.Duration(200 * time.Millisecond)}, nil)
		a := dialFrom(t, srv.addr, "127.0.0.1")
		a.expect("220 ")
		a.do("EHLO a.example", "250")
		p := dialFrom(t, srv.addr, "127.0.0.9")
		p.expect("220 ")
		p.send("NO") // never finished: cut by command_timeout
		p.expect("421 4.4.2")
		p.expectClosed()
		b := dialFrom(t, srv.addr, "127.0.0.2")
		b.expect("220 ")
		b.do("EHLO b.example", "250")
		p = dialFrom(t, srv.addr, "127.0.0.9")
		p.expect("220 ")
		p.do("EHLO p.example", "250") // its wait is now the freshest
		d := dialFrom(t, srv.addr, "127.0.0.4")
		d.expect("220 ")
		p.expect(shed)
		a.do("NOOP", "250 ")
		b.do("NOOP", "250 ")
	})
	t.Run("not in a gateway call", func(t *testing.T) {
		rec, entered, release := blockingGateway()
		srv := startServer(t, Config{MaxConnections: 2}, rec)
		x := dialFrom(t, srv.addr, "127.0.0.1")
		x.expect("220 ")
		x.script("EHLO x.example", "250", "MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ", "DATA", "354 ")
		x.send(message + ".\r\n")
		<-entered
		y := dialFrom(t, srv.addr, "127.0.0.2")
		y.expect("220 ")
		y.do("EHLO y.example", "250")
		srv.waitOwing(t, 1) // y, waiting for its next command (x is in the gateway)
		z := dialFrom(t, srv.addr, "127.0.0.3")
		z.expect("220 ")
		y.expect(shed)
		// With x in the gateway and z waiting, a fourth client sheds z.
		srv.waitOwing(t, 1)
		w := dialFrom(t, srv.addr, "127.0.0.4")
		w.expect("220 ")
		z.expect(shed)
		close(release)
		x.expect("250 2.0.0 queued as")
	})
	t.Run("refused when none is waiting for its client", func(t *testing.T) {
		rec, entered, release := blockingGateway()
		srv := startServer(t, Config{MaxConnections: 1}, rec)
		x := dialFrom(t, srv.addr, "127.0.0.1")
		x.expect("220 ")
		x.script("EHLO x.example", "250", "MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ", "DATA", "354 ")
		x.send(message + ".\r\n")
		<-entered
		y := dialFrom(t, srv.addr, "127.0.0.2")
		y.expect("421 4.7.0 Too many connections, try again later")
		y.expectClosed()
		close(release)
		x.expect("250 2.0.0 queued as")
	})
	t.Run("not while its message comes at a good rate", func(t *testing.T) {
		srv := startServer(t, Config{MaxConnections: 2}, nil)
		x := dialFrom(t, srv.addr, "127.0.0.1")
		x.expect("220 ")
		x.script("EHLO x.example", "250", "MAIL FROM:<a@bank.example>", "250 ", "RCPT TO:<x@example.com>", "250 ", "DATA", "354 ")
		part := sized(200 << 10) // 200 s' worth at the default 1 KiB/s
		x.send(part[:len(part)-2])
		waitUntil(t, "the server has read the first part", func() bool { return srv.messageBytes() >= int64(len(part)-2) })
		y := dialFrom(t, srv.addr, "127.0.0.2")
		y.expect("220 ")
		y.do("EHLO y.example", "250") // waiting since after x's message began
		z := dialFrom(t, srv.addr, "127.0.0.3")
		z.expect("220 ")
		y.expect(shed)
		x.send("\r\n.\r\n")
		x.expect("250 2.0.0 queued as")
	})
}

// messageBytes is the most message data any connection has received so far.
func (s *Server) messageBytes() int64 {
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	var most int64
	for c := range s.limits.conns {
		c.mu.Lock()
		most = max(most, c.st.dataBytes)
		c.mu.Unlock()
	}
	return most
}

// FuzzCommandLines: while go-smtp waits for a command line, the connection gives it whole
// lines only, however the input is cut into reads: what it gives is the input's prefix, and
// what it keeps when the input ends is part of one line (at most MaxLineLength), never a line
// end. seg says where the network cuts the input, and how big go-smtp's reads are.
func FuzzCommandLines(f *testing.F) {
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"), []byte{3, 7, 1, 200})
	f.Add([]byte("NOOP\r\nMAIL FROM:<a@b.example> SIZE=100"), []byte{1})
	f.Add([]byte(strings.Repeat("a", 700)+"\r\nQUIT\r\n"), []byte{255, 255, 255, 3})
	f.Add([]byte("\n\n\r\r\n"), []byte{0, 1, 2})
	f.Add([]byte("STARTTLS\r\n\x16\x03\x01\x00\x05hello"), []byte{10, 5})
	f.Fuzz(func(t *testing.T, input, seg []byte) {
		if len(input) > 1<<14 {
			return // a few command lines' worth is enough; longer only costs time
		}
		if len(seg) == 0 {
			seg = []byte{16}
		}
		cfg := withDefaults(Config{MaxLineLength: minLineLength})
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		srv := &Server{cfg: cfg, log: slog.New(slog.DiscardHandler), smtp: &smtp.Server{}}
		fc := &segmentedConn{input: input, seg: seg}
		c := srv.newTrackedConn(fc, time.Now())
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		var got []byte
		for i := 0; ; i++ {
			b := make([]byte, 1+int(seg[i%len(seg)])%600)
			n, err := c.Read(b)
			chunk := b[:n]
			if j := strings.IndexByte(string(chunk), '\n'); j >= 0 && j != n-1 {
				t.Fatalf("one read gave more than one line: %q", chunk)
			}
			got = append(got, chunk...)
			if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
				_ = c.SetReadDeadline(time.Now().Add(time.Minute)) // go-smtp waits for the next command
			}
			if err != nil {
				break
			}
		}
		if !strings.HasPrefix(string(input), string(got)) {
			t.Fatalf("gave %q, not a prefix of %q", got, input)
		}
		rest := input[len(got):]
		if strings.Contains(string(rest), "\n") || len(rest) > cfg.MaxLineLength {
			t.Fatalf("kept %q at the end of the input", rest)
		}
	})
}

// segmentedConn is a net.Conn whose reads return input cut at the sizes in seg, then io.EOF.
type segmentedConn struct {
	net.Conn
	input []byte
	seg   []byte
	i     int
}

func (c *segmentedConn) Read(b []byte) (int, error) {
	if len(c.input) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), len(c.input), 1+int(c.seg[c.i%len(c.seg)]))
	c.i++
	copy(b, c.input[:n])
	c.input = c.input[n:]
	return n, nil
}

func (c *segmentedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *segmentedConn) SetWriteDeadline(time.Time) error { return nil }
func (c *segmentedConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 25}
}
func (c *segmentedConn) Write(b []byte) (int, error) { return len(b), nil }
func (c *segmentedConn) Close() error                { return nil }
