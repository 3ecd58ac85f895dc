package smtpd

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Network sizes that MaxConnectionsPerNetwork counts by: what one site, or one customer line,
// usually gets.
const (
	networkBitsIPv4 = 24
	networkBitsIPv6 = 64
)

// connLimits counts a server's open connections, in total, per client IP and per client
// network, and chooses the connection to shed when every slot is taken.
type connLimits struct {
	maxTotal, maxPerIP, maxPerNet int

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	perIP  map[netip.Addr]int
	perNet map[netip.Prefix]int // clients outside AllowedNetworks only
	// cutAt is when a bound last cut (or shedding ended) a connection of each address: a source
	// whose connections were cut is shed before one with a clean record, so slow clients that
	// reconnect at once cannot make a good client the longest-owing connection by churn.
	cutAt map[netip.Addr]time.Time
}

// Bounds of the record of cut sources.
const (
	cutMemory   = 10 * time.Minute // how long a cut counts against its source
	maxCutAddrs = 16384            // addresses remembered; older ones are forgotten first
)

func newConnLimits(cfg *Config) *connLimits {
	return &connLimits{
		maxTotal: cfg.MaxConnections, maxPerIP: cfg.MaxConnectionsPerClient, maxPerNet: cfg.MaxConnectionsPerNetwork,
		conns: map[*trackedConn]struct{}{}, perIP: map[netip.Addr]int{}, perNet: map[netip.Prefix]int{},
		cutAt: map[netip.Addr]time.Time{},
	}
}

// penalize records that a connection from ip was cut by a bound or shed at now.
func (l *connLimits) penalize(ip netip.Addr, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.cutAt) >= maxCutAddrs {
		for a, t := range l.cutAt {
			if now.Sub(t) > cutMemory {
				delete(l.cutAt, a)
			}
		}
		if len(l.cutAt) >= maxCutAddrs {
			clear(l.cutAt) // a flood from more addresses than remembered: start again
		}
	}
	l.cutAt[ip] = now
}

// wasCut says whether a connection from ip was cut within cutMemory before now.
func (l *connLimits) wasCut(ip netip.Addr, now time.Time) bool {
	t, ok := l.cutAt[ip]
	return ok && now.Sub(t) <= cutMemory
}

// admit gives c a slot, or names the configuration key of the limit that refuses it.
//
// The per-client and per-network limits refuse: they keep one source from taking the
// listener, and shedding within them would only let it churn. When every slot is taken, c
// takes the slot of the connection that has owed input the longest (see trackedConn.owedSince),
// from a source with a recent cut on record first (penalize), and admit returns that victim, for the caller to shed; c is refused only when no connection
// is waiting for its client (all of them are in a gateway call). A newcomer has shown nothing
// yet, but the victim has shown that it is idle or slow; a client making progress renews its
// claim with every command and every second of data, so it is the last to go.
func (l *connLimits) admit(c *trackedConn) (victim *trackedConn, owed time.Duration, refused string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.perIP[c.ip] >= l.maxPerIP:
		return nil, 0, "max_connections_per_client"
	case !c.trusted && l.perNet[c.network] >= l.maxPerNet:
		return nil, 0, "max_connections_per_network"
	}
	if len(l.conns) >= l.maxTotal {
		var since time.Time
		victim, since = l.longestOwing()
		if victim == nil {
			return nil, 0, "max_connections"
		}
		owed = c.accepted.Sub(since)
		l.releaseLocked(victim)
	}
	l.conns[c] = struct{}{}
	l.perIP[c.ip]++
	if !c.trusted {
		l.perNet[c.network]++
	}
	return victim, owed, ""
}

// longestOwing returns the connection that has owed its client's input the longest, or nil
// when none is waiting for its client.
func (l *connLimits) longestOwing() (*trackedConn, time.Time) {
	var victim *trackedConn
	var oldest time.Time
	victimCut := false
	now := time.Now()
	for c := range l.conns {
		since, ok := c.owedSince()
		if !ok {
			continue
		}
		// A source with a cut on record goes before one without, whatever their waits.
		cut := l.wasCut(c.ip, now)
		if victim == nil || cut && !victimCut || cut == victimCut && since.Before(oldest) {
			victim, oldest, victimCut = c, since, cut
		}
	}
	return victim, oldest
}

func (l *connLimits) release(c *trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releaseLocked(c)
}

func (l *connLimits) releaseLocked(c *trackedConn) {
	if _, ok := l.conns[c]; !ok {
		return // shed earlier, or never admitted
	}
	delete(l.conns, c)
	if l.perIP[c.ip]--; l.perIP[c.ip] <= 0 {
		delete(l.perIP, c.ip)
	}
	if !c.trusted {
		if l.perNet[c.network]--; l.perNet[c.network] <= 0 {
			delete(l.perNet, c.network)
		}
	}
}

// open reports the number of connections holding a slot.
func (l *connLimits) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// limitListener admits connections within the limits (shedding one when every slot is taken)
// and answers the others with "421 4.7.0 Too many connections, try again later" before
// closing them. Admitted connections are *trackedConn.
type limitListener struct {
	net.Listener
	srv *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := l.srv.newTrackedConn(c, time.Now())
		victim, owed, refused := l.srv.limits.admit(tc)
		if refused != "" {
			go l.srv.refuse(c, tc.id, tc.ip, refused)
			continue
		}
		if victim != nil {
			victim.shed(tc.accepted)
			l.srv.log.Warn("smtp connection shed: every slot taken", append(victim.logAttrs(),
				"owed", owed.Round(time.Millisecond).String(), "for_session", tc.id)...)
		}
		l.srv.log.Info("smtp connect", tc.logAttrs()...)
		return tc, nil
	}
}

// refuse answers a connection over the limits and closes it.
func (s *Server) refuse(c net.Conn, id string, ip netip.Addr, limit string) {
	r := replyTooManyConnections()
	s.log.Warn("smtp connection refused", "session", id, "remote", ip.String(), "limit", limit, "code", r.Code)
	_ = c.SetWriteDeadline(time.Now().Add(s.lastReplyGrace()))
	_, _ = io.WriteString(c, line(r))
	_ = c.Close()
}

// lastReplyGrace bounds the write of a reply that ends a connection the listener is cutting.
func (s *Server) lastReplyGrace() time.Duration {
	return min(time.Duration(s.cfg.WriteTimeout), 5*time.Second)
}

// networkOf returns the network a client counts against for MaxConnectionsPerNetwork: its
// IPv4 /24 or IPv6 /64. Every non-IP client shares the zero Prefix.
func networkOf(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	bits := networkBitsIPv6
	if ip.Is4() {
		bits = networkBitsIPv4
	}
	p, _ := ip.Prefix(bits) // cannot fail: bits fits the family, and the zone is gone
	return p
}

// remoteIP returns the client's address without port, IPv4-mapped IPv6 unmapped; the zero
// Addr when the connection is not IP.
func remoteIP(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// newSessionID returns a random ID for logs.
func newSessionID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// logAttrs are the attributes every log record of a connection carries.
func (c *trackedConn) logAttrs() []any {
	return []any{slog.String("session", c.id), slog.String("remote", c.ip.String())}
}
