package queue

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// largeMessage is a message of n bytes at least (StreamMin and over: delivered as a stream).
func largeMessage(n int) *Message {
	m := testMessage("s@bank.example", "a@a.example", "b@b.example")
	line := []byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n")
	m.Data = append(m.Data, bytes.Repeat(line, n/len(line)+1)...)
	return m
}

// TestStreamedDeliveryToSMTP: a message of StreamMin bytes and more reaches an SMTP relay whole,
// read from its spool file (the relay is told its size), for every recipient at once; one just
// under StreamMin goes from memory, also whole.
func TestStreamedDeliveryToSMTP(t *testing.T) {
	sk := newSink(t, nil, nil)
	hop := newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone})
	s := openSpool(t, t.TempDir(), hop)
	start(t, s)
	var want [][]byte
	for _, n := range []int{StreamMin - 4096, StreamMin, 3*StreamMin + 17} {
		m := largeMessage(n)
		if n < StreamMin { // cut at a line's end: SMTP ends what it sends with a CRLF
			m.Data = m.Data[:bytes.LastIndex(m.Data[:n], []byte("\r\n"))+2]
		}
		id, err := s.Put(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delivery", gone(s, id))
		want = append(want, m.Data)
	}
	msgs := sk.Messages()
	if len(msgs) != len(want) {
		t.Fatalf("%d messages reached the relay; want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		if !bytes.Equal(m.Data, want[i]) || len(m.To) != 2 {
			t.Errorf("message %d: %d bytes to %v; want %d bytes to both recipients", i, len(m.Data), m.To, len(want[i]))
		}
	}
}

// TestStreamedDeliveryToMaildir: a large message is written into the Maildir whole.
func TestStreamedDeliveryToMaildir(t *testing.T) {
	box := t.TempDir()
	s := openSpool(t, t.TempDir(), &Maildir{Dir: box})
	start(t, s)
	m := largeMessage(2 * StreamMin)
	id, err := s.Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", gone(s, id))
	files, _ := filepath.Glob(filepath.Join(box, "new", "*"))
	if len(files) != 1 {
		t.Fatalf("%d files in new/", len(files))
	}
	if got, _ := os.ReadFile(files[0]); !bytes.Equal(got, m.Data) {
		t.Errorf("the Maildir file has %d bytes; want the message's %d", len(got), len(m.Data))
	}
}

// TestStreamedEntryDamagedBeforeDelivery: a large entry whose message was changed on disk is
// caught by the check before the relay is contacted, and set aside.
func TestStreamedEntryDamagedBeforeDelivery(t *testing.T) {
	sk := newSink(t, nil, nil)
	dir := t.TempDir()
	s := openSpool(t, dir, newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone}))
	id, err := s.Put(context.Background(), largeMessage(StreamMin))
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, filepath.Join(dir, "queue", id+".msg"), StreamMin/2)
	start(t, s)
	// Gone from the spool first, then moved into corrupt/: wait for the move.
	waitFor(t, "the entry set aside", setAside(dir, id))
	if n := len(sk.Messages()); n != 0 {
		t.Errorf("a damaged entry reached the relay (%d messages)", n)
	}
	if !gone(s, id)() {
		t.Error("the damaged entry is still queued")
	}
}

// TestStreamedEntryChangedWhileDelivered: a message changed on disk after the check, while it is
// being delivered, is not accepted — the relay never sees the end of DATA, the Maildir never gets
// the file — and the entry is set aside.
func TestStreamedEntryChangedWhileDelivered(t *testing.T) {
	for _, tc := range []struct {
		name string
		hop  func(t *testing.T) (StreamingHop, func() int)
	}{
		{"smtp", func(t *testing.T) (StreamingHop, func() int) {
			sk := newSink(t, nil, nil)
			return newSmarthost(t, SmarthostConfig{Addr: sk.Addr, TLS: TLSNone}), func() int { return len(sk.Messages()) }
		}},
		{"maildir", func(t *testing.T) (StreamingHop, func() int) {
			box := t.TempDir()
			return &Maildir{Dir: box}, func() int {
				files, _ := filepath.Glob(filepath.Join(box, "new", "*"))
				return len(files)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			hop, delivered := tc.hop(t)
			var path string
			s := openSpool(t, dir, &tamperingHop{StreamingHop: hop, tamper: func() { flipByte(t, path, 3*StreamMin/2) }})
			id, err := s.Put(context.Background(), largeMessage(2*StreamMin))
			if err != nil {
				t.Fatal(err)
			}
			path = filepath.Join(dir, "queue", id+".msg")
			start(t, s)
			waitFor(t, "the entry set aside", setAside(dir, id))
			if n := delivered(); n != 0 {
				t.Errorf("a message changed while it was delivered was accepted (%d)", n)
			}
			if !gone(s, id)() {
				t.Error("the changed entry is still queued")
			}
		})
	}
}

// setAside reports whether entry id's message file is in the spool's corrupt/.
func setAside(dir, id string) func() bool {
	return func() bool {
		_, err := os.Stat(filepath.Join(dir, "corrupt", id+".msg"))
		return err == nil
	}
}

// tamperingHop changes the spool file once the stream is handed over, before reading it.
type tamperingHop struct {
	StreamingHop
	tamper func()
}

func (h *tamperingHop) DeliverStream(ctx context.Context, from string, to []string, data io.Reader, size int64) ([]error, Accepted) {
	h.tamper()
	return h.StreamingHop.DeliverStream(ctx, from, to, data, size)
}

// flipByte changes one bit of the file at off.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
