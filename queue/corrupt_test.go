package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// damageFixture is a spool left by a crash with one entry of two recipients (the first delivered,
// the second deferred once), its message and state files, and what the next Open is to find.
type damageFixture struct {
	dir, id   string
	msg, st   string // paths in queue/
	msgBytes  []byte
	stBytes   []byte
	queueDir  string
	tmpDir    string
	corruptTo string
}

func newDamageFixture(t *testing.T) *damageFixture {
	t.Helper()
	dir := t.TempDir()
	s := openSpool(t, dir, &recordingHop{})
	id, err := s.Put(context.Background(), testMessage("s@bank.example", "ok@a.example", "later@b.example"))
	if err != nil {
		t.Fatal(err)
	}
	s.saveState(s.entries[id], &entryState{ID: id, Next: time.Now(), Rcpts: []rcptState{
		{Status: statusDelivered, Attempts: 1},
		{Status: statusPending, Attempts: 1, Last: &DeliveryError{Temporary: true, Code: 451, Enhanced: "4.4.1", Message: "later"}},
	}})
	crash(s)
	f := &damageFixture{dir: dir, id: id, queueDir: filepath.Join(dir, "queue"), tmpDir: filepath.Join(dir, "tmp"),
		corruptTo: filepath.Join(dir, corruptDirName)}
	f.msg, f.st = filepath.Join(f.queueDir, id+".msg"), filepath.Join(f.queueDir, id+".state")
	f.msgBytes, _ = os.ReadFile(f.msg)
	f.stBytes, _ = os.ReadFile(f.st)
	if len(f.msgBytes) == 0 || len(f.stBytes) == 0 {
		t.Fatal("the fixture has no entry or state file")
	}
	return f
}

func write(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

func flipped(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x01
	return b
}

// snapshot is what a directory tree holds: path → SHA-256 of a file's bytes ("dir" for a
// directory, "link:TARGET" for a symbolic link).
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "link:" + target
		case d.IsDir():
			out[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("read %s: %v", rel, err)
			}
			sum := sha256.Sum256(b)
			out[rel] = string(sum[:])
		}
		return nil
	})
	return out
}

// syncRecorder records the spool's renames and directory fsyncs, in order.
type syncRecorder struct {
	osOps
	mu  sync.Mutex
	ops []string
}

func (r *syncRecorder) Rename(oldpath, newpath string) error {
	r.mu.Lock()
	r.ops = append(r.ops, "rename "+oldpath+" "+newpath)
	r.mu.Unlock()
	return r.osOps.Rename(oldpath, newpath)
}

func (r *syncRecorder) SyncDir(dir string) error {
	r.mu.Lock()
	r.ops = append(r.ops, "sync "+dir)
	r.mu.Unlock()
	return r.osOps.SyncDir(dir)
}

// checkMovesSynced fails unless every rename into dir/corrupt is followed by an fsync of corrupt/
// and then of queue/ before the next rename.
func checkMovesSynced(t *testing.T, dir string, ops []string) {
	t.Helper()
	corruptDir, qDir := filepath.Join(dir, corruptDirName), filepath.Join(dir, "queue")
	for i, op := range ops {
		f := strings.Fields(op)
		if f[0] != "rename" || filepath.Dir(f[1]) != qDir || filepath.Dir(f[2]) != corruptDir {
			continue
		}
		rest := ops[i+1:]
		if len(rest) < 2 || rest[0] != "sync "+corruptDir || rest[1] != "sync "+qDir {
			t.Errorf("%s is not followed by fsyncs of corrupt/ and queue/: %q", op, rest)
		}
	}
}

// TestOpenNeverDeletesWhatGotItsEndRecord: Open given a spool damaged in each way a disk, an
// operator or a restore can damage it. Everything in queue/ got its name there only after its end
// record was fsynced, so it may have had a 250: it is kept or set aside in corrupt/ (0600, with a
// note, both directories fsynced), never deleted. Only tmp/ files (writes that never got their
// name in queue/, so never a 250) and a valid state file whose entry finished are removed.
//
// The code before this test deleted the damaged entries (one ERROR line each), discarded damaged
// state files, and failed Open on an unreadable file or a directory.
func TestOpenNeverDeletesWhatGotItsEndRecord(t *testing.T) {
	const (
		kept        = "kept"          // the entry is delivered, with its state
		entryAside  = "entry aside"   // the message file (and its state) in corrupt/, not delivered
		stateAside  = "state aside"   // the state file in corrupt/, the entry delivered to every recipient again
		removedTmp  = "tmp removed"   // a file in tmp/ is removed, the entry is untouched
		removedDone = "state removed" // a finished entry's valid state file is removed
	)
	tests := []struct {
		name    string
		damage  func(t *testing.T, f *damageFixture)
		outcome string
		problem string // in the note, for what is set aside
	}{
		{"undamaged", func(*testing.T, *damageFixture) {}, kept, ""},
		{"entry truncated in its message", func(t *testing.T, f *damageFixture) {
			write(t, f.msg, f.msgBytes[:len(f.msgBytes)/2], 0o600)
		}, entryAside, "no end record"},
		{"entry truncated in its end record", func(t *testing.T, f *damageFixture) {
			write(t, f.msg, f.msgBytes[:len(f.msgBytes)-10], 0o600)
		}, entryAside, "no end record"},
		{"entry without its end record", func(t *testing.T, f *damageFixture) {
			write(t, f.msg, f.msgBytes[:len(f.msgBytes)-trailerLen], 0o600)
		}, entryAside, "no end record"},
		{"entry with a byte flipped in the message", func(t *testing.T, f *damageFixture) {
			write(t, f.msg, flipped(f.msgBytes, len(f.msgBytes)-trailerLen-5), 0o600)
		}, entryAside, "end record does not match"},
		{"entry with a byte flipped in the header", func(t *testing.T, f *damageFixture) {
			write(t, f.msg, flipped(f.msgBytes, 20), 0o600)
		}, entryAside, "end record does not match"},
		{"entry with a byte flipped in the end record", func(t *testing.T, f *damageFixture) {
			write(t, f.msg, flipped(f.msgBytes, len(f.msgBytes)-3), 0o600)
		}, entryAside, "end record"},
		{"entry with garbage appended", func(t *testing.T, f *damageFixture) {
			write(t, f.msg, append(bytes.Clone(f.msgBytes), "\x00\x00"...), 0o600)
		}, entryAside, "end record"},
		{"empty entry file", func(t *testing.T, f *damageFixture) { write(t, f.msg, nil, 0o600) }, entryAside, "no end record"},
		{"entry readable by others", func(t *testing.T, f *damageFixture) { os.Chmod(f.msg, 0o644) }, entryAside, "mode 0644"},
		{"entry writable by its group", func(t *testing.T, f *damageFixture) { os.Chmod(f.msg, 0o620) }, entryAside, "mode 0620"},
		{"entry readable by nobody", func(t *testing.T, f *damageFixture) { os.Chmod(f.msg, 0o000) }, entryAside, "mode 0000"},
		{"directory where the entry file should be", func(t *testing.T, f *damageFixture) {
			os.Remove(f.msg)
			os.Mkdir(f.msg, 0o755)
			write(t, filepath.Join(f.msg, "inside"), []byte("x"), 0o644)
		}, entryAside, "a directory where a file should be"},
		{"symbolic link where the entry file should be", func(t *testing.T, f *damageFixture) {
			target := filepath.Join(t.TempDir(), "elsewhere.msg")
			write(t, target, f.msgBytes, 0o600)
			os.Remove(f.msg)
			os.Symlink(target, f.msg)
		}, entryAside, "a symbolic link"},
		{"entry naming another ID", func(t *testing.T, f *damageFixture) {
			other := strings.Replace(string(f.msgBytes), "id "+f.id, "id AAAAAAAAAAAAAAAA", 1)
			b := resealed([]byte(other[:len(other)-trailerLen]))
			write(t, f.msg, b, 0o600)
		}, entryAside, "entry names AAAAAAAAAAAAAAAA"},
		{"state truncated", func(t *testing.T, f *damageFixture) {
			write(t, f.st, f.stBytes[:len(f.stBytes)/2], 0o600)
		}, stateAside, "no end record"},
		{"state without its end record", func(t *testing.T, f *damageFixture) {
			write(t, f.st, f.stBytes[:len(f.stBytes)-trailerLen], 0o600)
		}, stateAside, "no end record"},
		{"state with a byte flipped", func(t *testing.T, f *damageFixture) {
			write(t, f.st, flipped(f.stBytes, 30), 0o600)
		}, stateAside, "end record does not match"},
		{"state that does not parse", func(t *testing.T, f *damageFixture) {
			write(t, f.st, resealed([]byte("sealpost-state 1\nid "+f.id+"\nnext never\n")), 0o600)
		}, stateAside, "bad next time"},
		{"state of another recipient count", func(t *testing.T, f *damageFixture) {
			var b bytes.Buffer
			writeState(&b, &entryState{ID: f.id, Next: time.Now(), Rcpts: []rcptState{{Status: statusDelivered}}})
			write(t, f.st, b.Bytes(), 0o600)
		}, stateAside, "state does not match its entry"},
		{"empty state file", func(t *testing.T, f *damageFixture) { write(t, f.st, nil, 0o600) }, stateAside, "no end record"},
		{"state readable by others", func(t *testing.T, f *damageFixture) { os.Chmod(f.st, 0o644) }, stateAside, "mode 0644"},
		{"directory where the state file should be", func(t *testing.T, f *damageFixture) {
			os.Remove(f.st)
			os.Mkdir(f.st, 0o700)
		}, stateAside, "a directory where a file should be"},
		{"damaged entry with its state", func(t *testing.T, f *damageFixture) {
			write(t, f.msg, flipped(f.msgBytes, len(f.msgBytes)-trailerLen-1), 0o600)
		}, entryAside, "end record does not match"},
		{"unreadable state of a missing entry", func(t *testing.T, f *damageFixture) {
			os.Remove(f.msg)
			write(t, f.st, f.stBytes[:40], 0o600)
		}, stateAside, "its entry file is missing, and no end record"},
		{"valid state of a finished entry", func(t *testing.T, f *damageFixture) {
			os.Remove(f.msg) // finish removes the message file first
		}, removedDone, ""},
		{"torn write in tmp", func(t *testing.T, f *damageFixture) {
			write(t, filepath.Join(f.tmpDir, "BBBBBBBBBBBBBBBB.msg.123"), f.msgBytes[:100], 0o600)
		}, removedTmp, ""},
		{"complete write in tmp never renamed (no 250)", func(t *testing.T, f *damageFixture) {
			write(t, filepath.Join(f.tmpDir, "BBBBBBBBBBBBBBBB.msg.456"), f.msgBytes, 0o600)
		}, removedTmp, ""},
		{"unpublished state update in tmp", func(t *testing.T, f *damageFixture) {
			write(t, filepath.Join(f.tmpDir, f.id+".state.789"), f.stBytes, 0o600)
		}, removedTmp, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDamageFixture(t)
			tt.damage(t, f)
			before := snapshot(t, f.queueDir)
			rec := &syncRecorder{}
			hop := &recordingHop{}
			s := openSpool(t, f.dir, hop, withFileOps(rec))
			after, aside := snapshot(t, f.queueDir), snapshot(t, f.corruptTo)

			// Nothing in queue/ vanished: each file is still there or in corrupt/, byte for byte.
			for rel, sum := range before {
				if after[rel] == sum {
					continue
				}
				if tt.outcome == removedDone && rel == f.id+".state" {
					continue
				}
				if aside[rel] != sum {
					t.Errorf("queue/%s is neither in queue/ nor, unchanged, in corrupt/ (corrupt/ holds %v)", rel, keys(aside))
				}
			}
			checkMovesSynced(t, f.dir, rec.ops)

			in, getErr := s.Get(f.id)
			switch tt.outcome {
			case kept, removedTmp:
				if getErr != nil || in.Recipients[0].Status != statusDelivered || in.Recipients[1].Attempts != 1 {
					t.Fatalf("entry after Open: %+v, %v; want it with its state", in, getErr)
				}
				if len(aside) != 0 {
					t.Fatalf("corrupt/ holds %v", keys(aside))
				}
			case stateAside:
				if tt.name == "unreadable state of a missing entry" {
					if getErr == nil {
						t.Fatal("an entry without its message file is queued")
					}
					break
				}
				if getErr != nil || in.Recipients[0].Status != statusPending || in.Recipients[0].Attempts != 0 {
					t.Fatalf("entry after Open: %+v, %v; want every recipient pending again", in, getErr)
				}
				if _, ok := aside[f.id+".state"]; !ok {
					t.Fatalf("corrupt/ holds %v, want the state file", keys(aside))
				}
			case entryAside:
				if getErr == nil {
					t.Fatal("a damaged entry is queued")
				}
				for _, name := range []string{f.id + ".msg", f.id + ".state"} {
					if _, ok := aside[name]; !ok {
						t.Fatalf("corrupt/ holds %v, want %s", keys(aside), name)
					}
				}
			case removedDone:
				if getErr == nil || len(after) != 0 || len(aside) != 0 {
					t.Fatalf("queue/ %v, corrupt/ %v; want both empty", keys(after), keys(aside))
				}
			}
			if tmp := spoolFiles(t, f.dir, "tmp"); len(tmp) != 0 {
				t.Errorf("tmp/ still holds %v", tmp)
			}

			// What was set aside is 0600 (0700 a directory), noted, listed and counted.
			n, err := s.CorruptCount()
			if err != nil {
				t.Fatal(err)
			}
			if set := tt.outcome == entryAside || tt.outcome == stateAside; set != (n == 1) {
				t.Fatalf("CorruptCount = %d", n)
			}
			list, err := s.Corrupt()
			if err != nil || len(list) != n {
				t.Fatalf("Corrupt() = %+v, %v", list, err)
			}
			for _, e := range list {
				if e.ID != f.id {
					t.Errorf("corrupt entry ID %q, want %q", e.ID, f.id)
				}
				for _, cf := range e.Files {
					fi, err := os.Lstat(filepath.Join(f.corruptTo, cf.Name))
					if err != nil {
						t.Fatal(err)
					}
					switch {
					case fi.Mode().IsRegular() && fi.Mode().Perm() != 0o600, fi.IsDir() && fi.Mode().Perm() != 0o700:
						t.Errorf("corrupt/%s is mode %v", cf.Name, fi.Mode())
					}
					if cf.SetAside.IsZero() || time.Since(cf.SetAside) > time.Minute || !strings.HasPrefix(cf.Problem, "queue/"+cf.Name+": ") {
						t.Errorf("corrupt/%s: set aside %v, problem %q", cf.Name, cf.SetAside, cf.Problem)
					}
				}
				if !slices.ContainsFunc(e.Files, func(cf CorruptFile) bool { return strings.Contains(cf.Problem, tt.problem) }) {
					t.Errorf("no file's problem says %q: %+v", tt.problem, e.Files)
				}
			}
			if n > 0 {
				logs := s.logs.String()
				if c := strings.Count(logs, "set aside a spool file that failed its checks"); c != len(list[0].Files) {
					t.Errorf("%d ERROR lines for %d files set aside:\n%s", c, len(list[0].Files), logs)
				}
				if strings.Contains(logs, testBody) {
					t.Error("the log carries the message body")
				}
			}

			// Delivery: the entry set aside is never delivered; a kept one is, to what was pending.
			start(t, s)
			if tt.outcome == entryAside || tt.name == "unreadable state of a missing entry" || tt.outcome == removedDone {
				time.Sleep(30 * time.Millisecond)
				if calls := hop.Calls(); len(calls) != 0 {
					t.Fatalf("delivered %d times: %+v", len(calls), calls)
				}
				return
			}
			waitFor(t, "delivery", gone(s, f.id))
			want := []string{"later@b.example"}
			if tt.outcome == stateAside {
				want = []string{"ok@a.example", "later@b.example"}
			}
			if calls := hop.Calls(); len(calls) != 1 || !slices.Equal(calls[0].To, want) {
				t.Fatalf("calls %+v, want one to %v", calls, want)
			}
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// resealed gives b a valid end record.
func resealed(b []byte) []byte {
	var out bytes.Buffer
	hw := newHashingWriter(&out)
	hw.Write(b)
	hw.writeTrailer()
	return out.Bytes()
}

// TestSetAsideTwiceKeepsBoth: a state file damaged again after an earlier one of the same entry
// was set aside is set aside under a new name; the first is not replaced.
func TestSetAsideTwiceKeepsBoth(t *testing.T) {
	f := newDamageFixture(t)
	write(t, f.st, []byte("first damage"), 0o600)
	s := openSpool(t, f.dir, &recordingHop{})
	s.saveState(s.entries[f.id], &entryState{ID: f.id, Next: time.Now(), Rcpts: make([]rcptState, 2)})
	crash(s)
	write(t, f.st, []byte("second damage"), 0o600)
	s = openSpool(t, f.dir, &recordingHop{})
	first, _ := os.ReadFile(filepath.Join(f.corruptTo, f.id+".state"))
	second, _ := os.ReadFile(filepath.Join(f.corruptTo, f.id+".state.1"))
	if string(first) != "first damage" || string(second) != "second damage" {
		t.Fatalf("corrupt/ holds %q and %q", first, second)
	}
	if n, _ := s.CorruptCount(); n != 1 {
		t.Fatalf("CorruptCount = %d, want 1 (one entry)", n)
	}
	list, _ := s.Corrupt()
	if len(list) != 1 || len(list[0].Files) != 2 {
		t.Fatalf("Corrupt() = %+v", list)
	}
	b, _ := json.Marshal(list)
	if bytes.Contains(b, []byte("damage")) {
		t.Fatalf("the listing shows a file's content: %s", b)
	}
}

// TestOpenFailsRatherThanDeletes: when a damaged file cannot be set aside (here corrupt/ is a
// file), Open fails and the file stays where it was.
func TestOpenFailsRatherThanDeletes(t *testing.T) {
	f := newDamageFixture(t)
	write(t, f.msg, f.msgBytes[:50], 0o600)
	if err := os.RemoveAll(f.corruptTo); err != nil {
		t.Fatal(err)
	}
	write(t, f.corruptTo, []byte("in the way"), 0o600)
	_, err := Open(spoolConfig(f.dir, 1, DefaultScanInterval), &recordingHop{}, WithLogger(slog.New(slog.DiscardHandler)))
	if err == nil {
		t.Fatal("Open succeeded without a corrupt directory")
	}
	if b, err := os.ReadFile(f.msg); err != nil || len(b) != 50 {
		t.Fatalf("the damaged entry is gone from queue/: %v", err)
	}
}

// An entry damaged after Open is set aside with its state before delivery, not delivered, and
// the move is fsynced.
func TestCorruptEntryQuarantined(t *testing.T) {
	dir := t.TempDir()
	hop := &recordingHop{}
	rec := &syncRecorder{}
	s := openSpool(t, dir, hop, withFileOps(rec))
	id, _ := s.Put(context.Background(), testMessage("s@bank.example", "a@a.example"))
	p := filepath.Join(dir, "queue", id+".msg")
	b, _ := os.ReadFile(p)
	b[len(b)-trailerLen-4] ^= 1
	os.WriteFile(p, b, 0o600)
	start(t, s)
	waitFor(t, "quarantine", gone(s, id))
	if len(hop.Calls()) != 0 {
		t.Errorf("a corrupt entry was delivered")
	}
	got, err := os.ReadFile(filepath.Join(dir, "corrupt", id+".msg"))
	if err != nil || !bytes.Equal(got, b) {
		t.Errorf("not in corrupt/, unchanged: %v", err)
	}
	waitFor(t, "the note", func() bool { l, _ := s.Corrupt(); return len(l) == 1 && !l[0].Files[0].SetAside.IsZero() })
	rec.mu.Lock()
	checkMovesSynced(t, dir, rec.ops)
	rec.mu.Unlock()
	if l, _ := s.Corrupt(); !strings.Contains(l[0].Files[0].Problem, "end record does not match") {
		t.Errorf("problem %q", l[0].Files[0].Problem)
	}
}

// TestOpenKeepsEveryDamagedEntry: truncations of an entry file and of a state file, and
// single-bit changes of either, at every byte of the end record and every fifth elsewhere, leaves both files in queue/ or in corrupt/, byte for byte;
// an entry that does not load is never queued. (A fuzz target would say the same less
// thoroughly: the coverage of Open varies from run to run with the garbage collector, which
// keeps Go's fuzzer minimising instead of exploring.)
func TestOpenKeepsEveryDamagedEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a spool for each of about eight hundred damaged files")
	}
	m, data := sampleMeta()
	entry := encodeEntry(t, m, data)
	var sb bytes.Buffer
	writeState(&sb, &entryState{ID: m.ID, Next: m.Created, Rcpts: []rcptState{{Status: statusDelivered, Attempts: 1}, {Status: statusPending}}})
	state := sb.Bytes()
	quiet := slog.New(slog.DiscardHandler)
	root := t.TempDir()
	n := 0
	check := func(what string, msg, st []byte) {
		n++
		dir := filepath.Join(root, fmt.Sprint(n))
		q := filepath.Join(dir, "queue")
		os.MkdirAll(q, 0o700)
		files := []struct {
			name string
			b    []byte
		}{{m.ID + ".msg", msg}, {m.ID + ".state", st}}
		for _, f := range files {
			write(t, filepath.Join(q, f.name), f.b, 0o600)
		}
		s, err := Open(spoolConfig(dir, 1, DefaultScanInterval), &recordingHop{}, WithLogger(quiet), withFileOps(noSyncOps{}))
		if err != nil {
			t.Fatalf("%s: Open: %v", what, err)
		}
		defer s.Close()
		for _, f := range files {
			got, err := os.ReadFile(filepath.Join(q, f.name))
			if err != nil {
				got, err = os.ReadFile(filepath.Join(dir, corruptDirName, f.name))
			}
			if err != nil || !bytes.Equal(got, f.b) {
				t.Fatalf("%s: %s is neither in queue/ nor in corrupt/, unchanged", what, f.name)
			}
		}
		_, _, perr := parseEntry(msg)
		if _, err := s.Get(m.ID); (err == nil) != (perr == nil) {
			t.Fatalf("%s: queued %v, but the entry loads: %v", what, err == nil, perr)
		}
		os.RemoveAll(dir)
	}
	// Every byte of the end record and its neighbours, every fifth elsewhere.
	positions := func(b []byte) []int {
		var out []int
		for i := range len(b) {
			if i%5 == 0 || i >= len(b)-trailerLen-2 {
				out = append(out, i)
			}
		}
		return out
	}
	for _, i := range positions(entry) {
		check(fmt.Sprintf("entry truncated to %d bytes", i), entry[:i], state)
		check(fmt.Sprintf("entry with byte %d changed", i), flipped(entry, i), state)
	}
	for _, i := range positions(state) {
		check(fmt.Sprintf("state truncated to %d bytes", i), entry, state[:i])
		check(fmt.Sprintf("state with byte %d changed", i), entry, flipped(state, i))
	}
}

// noSyncOps skips fsyncs, which a fuzz target need not pay for (it checks what Open decides, not
// what survives a crash), and names temporary files without randomness, whose varying length would
// vary the coverage the fuzzer sees.
type noSyncOps struct{ osOps }

func (noSyncOps) SyncDir(string) error { return nil }

func (noSyncOps) CreateTemp(dir, pattern string) (tempFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, strings.Replace(pattern, "*", "tmp", 1)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

type noSyncFile struct{ *os.File }

func (noSyncFile) Sync() error { return nil }
