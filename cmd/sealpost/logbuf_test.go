package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records each write it is given.
type countingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *countingWriter) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

// TestLogBuffer: informational lines are written together, in order; a warning is written at once
// with every line before it; Close writes what waits; lines that wait are written within the
// flush interval without a Flush.
func TestLogBuffer(t *testing.T) {
	w := &countingWriter{}
	b := newLogBuffer(w, time.Hour) // no timer flush during the test's first part
	log := slog.New(flushOnWarn{slog.NewTextHandler(b, nil), b}).With("node", "a")
	for i := range 5 {
		log.Info("queued", "n", i)
	}
	if got := w.get(); len(got) != 0 {
		t.Fatalf("informational lines written at once: %q", got)
	}
	log.Warn("next hop refuses")
	got := w.get()
	if len(got) != 1 || strings.Count(got[0], "\n") != 6 || !strings.Contains(got[0], "n=4") ||
		strings.Index(got[0], "n=0") > strings.Index(got[0], "n=4") || !strings.HasSuffix(got[0], "msg=\"next hop refuses\" node=a\n") {
		t.Fatalf("a warning did not flush the lines before it, in order, in one write: %q", got)
	}
	log.Info("delivered")
	b.Close()
	if got := w.get(); len(got) != 2 || !strings.Contains(got[1], "delivered") {
		t.Fatalf("Close did not write what waited: %q", got)
	}

	big := &countingWriter{}
	b = newLogBuffer(big, time.Hour)
	line := bytes.Repeat([]byte("x"), 1000)
	for range 70 {
		b.Write(line)
	}
	if got := big.get(); len(got) != 1 || len(got[0]) < logBufferMax {
		t.Fatalf("%d writes after %d bytes: the buffer is not bounded", len(got), 70*len(line))
	}

	timed := &countingWriter{}
	b = newLogBuffer(timed, time.Millisecond)
	b.Write([]byte("late line\n"))
	deadline := time.Now().Add(time.Minute) // a hang guard, not a timing assertion
	for len(timed.get()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a waiting line was never written without a Flush")
		}
		time.Sleep(time.Millisecond)
	}
}
