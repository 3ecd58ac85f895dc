package queue

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// Maildir is a NextHop that delivers into a Maildir (the embedded default):
// each message is written to tmp/, fsynced, and renamed into new/, and new/
// is fsynced. All recipients of a message share its one file.
type Maildir struct {
	Dir string // the Maildir; it and its cur/, new/, tmp/ are created 0700
}

var maildirSeq atomic.Uint64

// Deliver writes data into the Maildir once and reports the same outcome for
// every recipient. Local failures (disk full, permissions) are temporary.
func (m *Maildir) Deliver(ctx context.Context, from string, to []string, data []byte) []error {
	errs, _ := m.DeliverStream(ctx, from, to, bytes.NewReader(data), int64(len(data)))
	return errs
}

// DeliverReply is Deliver (queue.ReplyingHop: a Maildir has no reply to give).
func (m *Maildir) DeliverReply(ctx context.Context, from string, to []string, data []byte) ([]error, Accepted) {
	return m.Deliver(ctx, from, to, data), Accepted{}
}

// DeliverStream is Deliver with the message read from data (queue.StreamingHop): a read error
// removes the file from tmp/, so nothing reaches new/.
func (m *Maildir) DeliverStream(ctx context.Context, from string, to []string, data io.Reader, size int64) ([]error, Accepted) {
	err := m.deliver(ctx, data)
	errs := make([]error, len(to))
	if err != nil {
		for i := range errs {
			errs[i] = &DeliveryError{Temporary: true, Enhanced: "4.3.0", Message: "maildir: " + err.Error()}
		}
	}
	return errs, Accepted{}
}

func (m *Maildir) deliver(ctx context.Context, data io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.Dir == "" {
		return fmt.Errorf("no directory configured")
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(m.Dir, sub), 0o700); err != nil {
			return err
		}
	}
	name := maildirName()
	tmp := filepath.Join(m.Dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, data) // a bytes.Reader writes itself in one write
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(m.Dir, "new", name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return osOps{}.SyncDir(filepath.Join(m.Dir, "new"))
}

// maildirName returns a unique file name "time.pid_seq.host", with "/" and
// ":" in the host name escaped as the Maildir convention asks.
func maildirName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	return fmt.Sprintf("%d.%d_%d.%s", time.Now().Unix(), os.Getpid(), maildirSeq.Add(1), host)
}
