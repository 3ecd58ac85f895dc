package queue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestSpareFilesAreReused: a finished entry's file is written over by a later entry instead of a
// new file being created, the new entry is read back whole (a longer old one leaves nothing behind
// it), and the finished one does not come back after a crash.
func TestSpareFilesAreReused(t *testing.T) {
	dir := t.TempDir()
	hop := &recordingHop{}
	hop.setReply(func(to string) error {
		if strings.HasPrefix(to, "held@") {
			return &DeliveryError{Temporary: true, Enhanced: "4.2.0", Message: "try later"}
		}
		return nil
	})
	s := openSpool(t, dir, hop)
	long := testMessage("s@bank.example", "a@example.com")
	long.Data = append(long.Data, bytes.Repeat([]byte("X"), 8<<10)...)
	idA, err := s.Put(context.Background(), long)
	if err != nil {
		t.Fatal(err)
	}
	fileA, err := os.Stat(filepath.Join(dir, "queue", idA+".msg"))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	waitFor(t, "the first entry delivered", gone(s, idA))
	// The next Put's fsync of queue/ makes A's file safe to overwrite; the one after reuses it.
	if _, err := s.Put(context.Background(), testMessage("s@bank.example", "b@example.com")); err != nil {
		t.Fatal(err)
	}
	held := testMessage("s@bank.example", "held@example.com")
	idC, err := s.Put(context.Background(), held)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the held entry tried", attempts(s, idC, 1))
	fileC, err := os.Stat(filepath.Join(dir, "queue", idC+".msg"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fileA, fileC) {
		t.Fatal("the third entry was written to a new file, not to the first entry's")
	}
	if fileC.Size() >= fileA.Size() {
		t.Fatalf("the reused file is %d bytes, the first entry's was %d: not truncated", fileC.Size(), fileA.Size())
	}
	s.Close()

	s2 := openSpool(t, dir, &recordingHop{})
	list, err := s2.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != idC || list[0].Recipients[0].Address != "held@example.com" {
		t.Fatalf("after reopening: %+v, want only the held entry %s", list, idC)
	}
	if leftovers := spoolFiles(t, dir, "tmp"); len(leftovers) != 0 {
		t.Fatalf("tmp/ still holds %v after Open", leftovers)
	}
	if strings.Contains(s2.logs.String(), "left by a crash") {
		t.Fatalf("spare files were reported as left by a crash:\n%s", s2.logs.String())
	}
}

// opLog records the spool's renames, directory fsyncs (when each starts and when it has
// finished) and reuses, in order.
type opLog struct {
	osOps
	mu  sync.Mutex
	ops []string
}

func (l *opLog) add(op string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, op)
}

func (l *opLog) Rename(oldpath, newpath string) error {
	err := l.osOps.Rename(oldpath, newpath)
	if err == nil {
		l.add("rename " + filepath.Base(filepath.Dir(oldpath)) + " " + newpath)
	}
	return err
}

func (l *opLog) SyncDir(dir string) error {
	l.mu.Lock()
	n := len(l.ops)
	l.ops = append(l.ops, fmt.Sprintf("syncstart %d %s", n, filepath.Base(dir)))
	l.mu.Unlock()
	err := l.osOps.SyncDir(dir)
	if err == nil {
		l.add(fmt.Sprintf("syncdone %d %s", n, filepath.Base(dir)))
	}
	return err
}

func (l *opLog) Reuse(path string) (tempFile, error) {
	l.add("reuse " + path)
	return l.osOps.Reuse(path)
}

// TestSpareNotReusedBeforeItsRemovalIsDurable: a spare is written over only after an fsync of
// queue/ that started after the spare was renamed out of it has finished. Otherwise a crash could
// undo the rename and bring back the finished entry's name holding the new entry's bytes.
func TestSpareNotReusedBeforeItsRemovalIsDurable(t *testing.T) {
	dir := t.TempDir()
	log := &opLog{}
	s := openSpool(t, dir, &recordingHop{}, withFileOps(log))
	start(t, s)
	// Each entry is delivered before the next is put: then nothing but the next Put's own fsync
	// can come between an entry's rename out of queue/ and the next Put's choice of a file.
	for i := range 20 {
		id, err := s.Put(context.Background(), testMessage("s@bank.example", fmt.Sprintf("c%d@example.com", i)))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the entry delivered", gone(s, id))
	}
	log.mu.Lock()
	ops := append([]string(nil), log.ops...)
	log.mu.Unlock()
	reused := 0
	for i, op := range ops {
		path, ok := strings.CutPrefix(op, "reuse ")
		if !ok {
			continue
		}
		reused++
		out := -1 // the rename that made path a spare
		for j := i - 1; j >= 0; j-- {
			if ops[j] == "rename queue "+path {
				out = j
				break
			}
		}
		if out < 0 {
			t.Fatalf("%s reused without being renamed out of queue/:\n%s", path, strings.Join(ops[:i+1], "\n"))
		}
		covered := false
		for j := out + 1; j < i && !covered; j++ {
			var n int
			if _, err := fmt.Sscanf(ops[j], "syncdone %d queue", &n); err == nil && n > out {
				covered = true // that fsync started after the rename and finished before the reuse
			}
		}
		if !covered {
			t.Fatalf("%s reused before an fsync of queue/ covered its rename:\n%s", path, strings.Join(ops[out:i+1], "\n"))
		}
	}
	if reused == 0 {
		t.Fatalf("no spare was reused in 20 Puts:\n%s", strings.Join(ops, "\n"))
	}
}
