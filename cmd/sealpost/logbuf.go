package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logFlushAfter is how long a log line of serve may wait to be written with others.
const logFlushAfter = 50 * time.Millisecond

// logBufferMax is how much may wait before it is written at once.
const logBufferMax = 64 << 10

// logBuffer gathers serve's log lines and writes them several at a time: a message relayed makes
// seven lines, and a write system call for each was a measurable part of the CPU a message costs
// beside its signature. A line waits at most logFlushAfter; a warning or an error is written at
// once, with every line before it (see flushOnWarn); Close writes the rest. A process killed
// outright loses at most the last logFlushAfter of informational lines: the log is for operators,
// the evidence log is the record of what was sent.
type logBuffer struct {
	mu    sync.Mutex
	w     io.Writer
	after time.Duration
	buf   []byte
	timer *time.Timer // set while lines wait
}

func newLogBuffer(w io.Writer, after time.Duration) *logBuffer {
	return &logBuffer{w: w, after: after}
}

// Write takes one log line (slog handlers write each record whole).
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	switch {
	case len(b.buf) >= logBufferMax:
		b.flushLocked()
	case b.timer == nil:
		b.timer = time.AfterFunc(b.after, b.Flush)
	}
	return len(p), nil
}

// Flush writes what waits.
func (b *logBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *logBuffer) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.buf) == 0 {
		return
	}
	_, _ = b.w.Write(b.buf) // a log that cannot be written has nowhere to say so
	if cap(b.buf) > logBufferMax {
		b.buf = nil // a burst's buffer is not kept
	} else {
		b.buf = b.buf[:0]
	}
}

// Close writes what waits; lines written afterwards wait for the next Flush.
func (b *logBuffer) Close() error {
	b.Flush()
	return nil
}

// flushOnWarn is a handler writing into a logBuffer that flushes it after every record of level
// Warn or above, so that trouble is never held back.
type flushOnWarn struct {
	slog.Handler
	buf *logBuffer
}

func (h flushOnWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.buf.Flush()
	}
	return err
}

func (h flushOnWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushOnWarn{h.Handler.WithAttrs(attrs), h.buf}
}

func (h flushOnWarn) WithGroup(name string) slog.Handler {
	return flushOnWarn{h.Handler.WithGroup(name), h.buf}
}
