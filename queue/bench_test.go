package queue

import (
	"bytes"
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"
)

// message2K is a 2 KB protected-looking message.
func message2K() []byte {
	hdr := "From: Bank <noreply@bank.example>\r\nTo: c@a.example\r\nSubject: Statement\r\n" +
		"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n"
	line := bytes.Repeat([]byte("A"), 76)
	var b bytes.Buffer
	b.WriteString(hdr)
	for b.Len() < 2048-78 {
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// BenchmarkPut measures a durable Put: write, fsync file, rename, fsync
// directory.
func BenchmarkPut(b *testing.B) {
	s := openSpool(b, b.TempDir(), &recordingHop{})
	m := &Message{From: "s@bank.example", Recipients: []string{"c@a.example"}, Data: message2K(),
		Class: "statement", Expires: time.Now().Add(time.Hour)}
	b.SetBytes(int64(len(m.Data)))
	for b.Loop() {
		if _, err := s.Put(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeliverMaildir(b *testing.B) {
	md := &Maildir{Dir: filepath.Join(b.TempDir(), "Maildir")}
	data := message2K()
	to := []string{"c@a.example"}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if errs := md.Deliver(context.Background(), "s@bank.example", to, data); errs[0] != nil {
			b.Fatal(errs[0])
		}
	}
}

// BenchmarkDeliverSMTP relays to a loopback go-smtp sink over one reused
// connection (RSET between messages).
func BenchmarkDeliverSMTP(b *testing.B) {
	cert, pool := selfSigned(b)
	for _, bc := range []struct {
		name string
		tls  *tls.Config
		cfg  SmarthostConfig
	}{
		{"plain", nil, SmarthostConfig{TLS: TLSNone}},
		{"starttls", &tls.Config{Certificates: []tls.Certificate{cert}},
			SmarthostConfig{TLS: TLSRequired, TLSConfig: &tls.Config{RootCAs: pool}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sk := newSink(b, bc.tls, func(sk *sink) {})
			cfg := bc.cfg
			cfg.Addr = sk.Addr
			h := newSmarthost(b, cfg)
			data := message2K()
			to := []string{"c@a.example"}
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if errs := h.Deliver(context.Background(), "s@bank.example", to, data); errs[0] != nil {
					b.Fatal(errs[0])
				}
			}
			b.StopTimer()
			if n := sk.conns.Load(); n != 1 {
				b.Fatalf("%d connections, want 1 (reuse)", n)
			}
			sk.mu.Lock()
			sk.msgs = nil
			sk.mu.Unlock()
		})
	}
}

// BenchmarkSpoolToMaildir measures Put through delivery by the workers:
// the clock stops when the spool is empty again.
func BenchmarkSpoolToMaildir(b *testing.B) {
	md := &Maildir{Dir: filepath.Join(b.TempDir(), "Maildir")}
	s := openSpool(b, b.TempDir(), md)
	start(b, s)
	m := &Message{From: "s@bank.example", Recipients: []string{"c@a.example"}, Data: message2K(),
		Class: "statement", Expires: time.Now().Add(time.Hour)}
	b.SetBytes(int64(len(m.Data)))
	b.ResetTimer()
	for range b.N {
		if _, err := s.Put(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, "spool drained", func() bool { l, _ := s.List(); return len(l) == 0 })
}
