package queue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The corrupt directory. A file of the queue directory that fails its checks is never deleted:
// every one of them was complete when it got its name there (Put and saveState rename only after
// the end record is written and fsynced), so its damage came later, and an entry among them may
// have been acknowledged with 250. Such a file is moved to corrupt/ in the spool, made 0600, and
// given a companion NAME.why holding one line that says why; both directories are fsynced, as for
// every rename in the spool. What is in corrupt/ is neither delivered nor deleted: an operator
// looks at it (Spool.Corrupt, sealpost queue list -corrupt), moves it back into queue/ once
// repaired, or removes it.
//
// What the spool does remove at Open is only what never got its name in queue/: files in tmp/,
// writes that never returned to their caller (no 250) and state updates that were never
// published; and a valid state file whose entry is gone, the normal remains of a finished entry
// (its message file is removed first).

const (
	corruptDirName = "corrupt"
	// whySuffix names the companion file that records why a file was set aside.
	whySuffix = ".why"
	// maxWhy bounds what is read of a companion file.
	maxWhy = 4 << 10
)

// CorruptEntry is what the spool set aside under one queue ID.
type CorruptEntry struct {
	ID    string        // the queue ID the files belong to (a file that names none: its name)
	Files []CorruptFile // by name
}

// CorruptFile is one file (or whatever stood where a file should be) set aside in the corrupt
// directory.
type CorruptFile struct {
	Name     string    // its name in the corrupt directory, e.g. "ID.msg", "ID.state", "ID.state.1"
	Size     int64     // bytes
	SetAside time.Time // when it was moved there (zero when its record is missing)
	// Problem is why it was moved, as recorded then: "queue/ID.msg: end record does not match
	// the content".
	Problem string
}

// CorruptDir returns the directory where the spool sets aside what failed its checks.
func (s *Spool) CorruptDir() string { return s.corruptDir }

// CorruptCount returns how many entries (queue IDs) have files in the corrupt directory. It reads
// the directory's names and nothing else, so it is cheap enough for every metrics scrape.
func (s *Spool) CorruptCount() (int, error) {
	des, err := os.ReadDir(s.corruptDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	ids := map[string]bool{}
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), whySuffix) {
			ids[corruptID(de.Name())] = true
		}
	}
	return len(ids), nil
}

// Corrupt lists what is set aside in the corrupt directory, by entry, the most recent first.
func (s *Spool) Corrupt() ([]CorruptEntry, error) {
	des, err := os.ReadDir(s.corruptDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	byID := map[string]*CorruptEntry{}
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, whySuffix) {
			continue
		}
		f := CorruptFile{Name: name}
		if fi, err := os.Lstat(filepath.Join(s.corruptDir, name)); err == nil {
			f.Size = fi.Size()
		}
		f.SetAside, f.Problem = s.readWhy(name)
		id := corruptID(name)
		e := byID[id]
		if e == nil {
			e = &CorruptEntry{ID: id}
			byID[id] = e
		}
		e.Files = append(e.Files, f)
	}
	out := make([]CorruptEntry, 0, len(byID))
	for _, e := range byID {
		out = append(out, *e)
	}
	latest := func(e CorruptEntry) time.Time {
		var t time.Time
		for _, f := range e.Files {
			if f.SetAside.After(t) {
				t = f.SetAside
			}
		}
		return t
	}
	slices.SortFunc(out, func(a, b CorruptEntry) int {
		if c := latest(b).Compare(latest(a)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// readWhy returns when name was set aside and why, from its companion file.
func (s *Spool) readWhy(name string) (time.Time, string) {
	path := filepath.Join(s.corruptDir, name+whySuffix)
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, "no record of why it was set aside"
	}
	defer f.Close()
	var at time.Time
	if fi, err := f.Stat(); err == nil {
		at = fi.ModTime().UTC()
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxWhy))
	return at, oneLine(string(b), maxWhy)
}

// problemOf is what a note says of a check that failed: err's text without the errCorrupt prefix.
func problemOf(err error) string {
	return strings.TrimPrefix(err.Error(), errCorrupt.Error()+": ")
}

// corruptID is the queue ID a name in the corrupt directory belongs to: what precedes its first dot.
func corruptID(name string) string {
	id, _, _ := strings.Cut(name, ".")
	if id == "" {
		return name
	}
	return id
}

// readSpoolFile reads a file of the queue directory, refusing what sealpost never writes there:
// anything but a regular file (a directory, a symbolic link, a device), and a file that is not
// readable by its owner alone, which someone other than sealpost made so. Every error wraps
// errCorrupt.
func readSpoolFile(path string) ([]byte, error) {
	if err := checkSpoolFile(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, corrupt("%s", describePathError(err))
	}
	return b, nil
}

// checkSpoolFile requires path to be a regular file that only sealpost may read or write.
func checkSpoolFile(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return corrupt("%s", describePathError(err))
	}
	if !fi.Mode().IsRegular() {
		return corrupt("%s where a file should be", kindOf(fi.Mode()))
	}
	if p := fi.Mode().Perm(); p&0o077 != 0 || p&0o400 == 0 {
		return corrupt("mode %04o: sealpost writes its spool files 0600", p)
	}
	return nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "something other than a file"
}

// describePathError says what failed without the spool's full path (a log line or a why file
// names the file already).
func describePathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// setAside moves queue/name into the corrupt directory, under a name nothing there has yet, makes
// it readable by the spool's owner only, fsyncs both directories, and records why beside it. It
// deletes nothing. An error means name is still where it was (or the move may not be durable).
func (s *Spool) setAside(name, problem string) error {
	dst, err := s.freeCorruptName(name)
	if err != nil {
		return fmt.Errorf("set aside %s: %w", name, err)
	}
	to := filepath.Join(s.corruptDir, dst)
	if err := s.ops.Rename(filepath.Join(s.qDir, name), to); err != nil {
		return fmt.Errorf("set aside %s: %w", name, err)
	}
	restrictMode(to)
	// The corrupt directory first: once its fsync returns, the file's new name survives a crash;
	// the queue directory's then makes the old name's removal survive too.
	if err := s.ops.SyncDir(s.corruptDir); err != nil {
		return fmt.Errorf("set aside %s: fsync %s: %w", name, corruptDirName, err)
	}
	if err := s.ops.SyncDir(s.qDir); err != nil {
		return fmt.Errorf("set aside %s: fsync queue: %w", name, err)
	}
	why := "queue/" + name + ": " + oneLine(problem, maxWhy-len(name)-16) + "\n"
	werr := writeAtomic(s.ops, s.tmpDir, s.corruptDir, dst+whySuffix, func(w io.Writer) error {
		_, err := io.WriteString(w, why)
		return err
	})
	s.log.Error("queue: set aside a spool file that failed its checks; it is neither delivered nor deleted",
		"file", name, "moved_to", filepath.Join(s.corruptDir, dst), "problem", oneLine(problem, maxWhy))
	if werr != nil {
		s.log.Error("queue: could not record why a file was set aside", "file", dst, "err", werr)
	}
	return nil
}

// freeCorruptName returns name, or name.N, whichever is the first free in the corrupt directory
// (with its companion): a rename must never replace what an earlier one set aside.
func (s *Spool) freeCorruptName(name string) (string, error) {
	for n := 0; n < 1000; n++ {
		cand := name
		if n > 0 {
			cand = fmt.Sprintf("%s.%d", name, n)
		}
		if !exists(filepath.Join(s.corruptDir, cand)) && !exists(filepath.Join(s.corruptDir, cand+whySuffix)) {
			return cand, nil
		}
	}
	return "", fmt.Errorf("no free name in %s", corruptDirName)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// restrictMode makes what was set aside reachable by the spool's owner only: 0600 for a file,
// 0700 for a directory; a symbolic link is left as it is (chmod would follow it).
func restrictMode(path string) {
	fi, err := os.Lstat(path)
	if err != nil {
		return
	}
	switch {
	case fi.Mode().IsRegular():
		_ = os.Chmod(path, 0o600)
	case fi.IsDir():
		_ = os.Chmod(path, 0o700)
	}
}
