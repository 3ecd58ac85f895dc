package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// maxSpares bounds the files kept for reuse: more than the entries that finish between two Puts
// under load, few enough that tmp/ stays small.
const maxSpares = 64

// spareName starts the name of a spare file in tmp/.
const spareName = "spare."

// spares keeps finished entries' files for new entries. A finished entry's file is renamed into
// tmp/ rather than removed, and a later Put overwrites it rather than create a file: creating and
// freeing an inode are the dearest file-system operations of a spool write (on the VM this was
// measured on, creating a file in some directories costs 0.7 ms of CPU, more than the signature's
// half of a message; elsewhere 25-60 µs, still more than the write and the rename together).
//
// A spare may be overwritten only once its old name is durably gone from queue/: else a crash
// could bring back queue/OLD.msg holding a new entry's bytes. The rename out is not synced (a
// finished entry's removal never was: if a crash undoes it the entry is delivered again); a spare
// becomes ready when a later fsync of queue/ (every Put makes one) has covered it.
type spares struct {
	mu      sync.Mutex
	names   uint64  // spare files named so far
	renamed uint64  // renames into tmp/ so far (the sequence of pending)
	pending []spare // renamed out of queue/, the rename not yet known durable
	ready   []string
}

type spare struct {
	path string
	seq  uint64
}

// reserve names the next spare in tmpDir, or reports that enough are kept.
func (p *spares) reserve(tmpDir string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending)+len(p.ready) >= maxSpares {
		return "", false
	}
	p.names++
	return filepath.Join(tmpDir, fmt.Sprintf("%s%d", spareName, p.names)), true
}

// add records a file just renamed into tmp/ as path.
func (p *spares) add(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.renamed++
	p.pending = append(p.pending, spare{path, p.renamed})
}

// synced makes ready every spare renamed out of queue/ up to mark, now that an fsync of queue/
// that started after mark was taken has completed.
func (p *spares) synced(mark uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for n < len(p.pending) && p.pending[n].seq <= mark {
		p.ready = append(p.ready, p.pending[n].path)
		n++
	}
	p.pending = append(p.pending[:0], p.pending[n:]...)
}

// take returns a ready spare's path ("" when there is none) and a mark, for a write that ends with
// an fsync of queue/: every spare pending now is covered by that fsync, and synced(mark) makes it
// ready.
func (p *spares) take() (path string, mark uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.ready); n > 0 {
		path, p.ready = p.ready[n-1], p.ready[:n-1]
	}
	return path, p.renamed
}

// retire takes a finished entry's message file out of queue/: into tmp/ as a spare when there is
// room, else removed. Neither is synced (see finish).
func (s *Spool) retire(id string) error {
	src := filepath.Join(s.qDir, id+".msg")
	if path, ok := s.spares.reserve(s.tmpDir); ok {
		err := s.ops.Rename(src, path)
		if err == nil {
			s.spares.add(path)
			return nil
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	if err := s.ops.Remove(src); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// isSpare reports whether a name in tmp/ is a spare's (kept for reuse, not left by a crash).
func isSpare(name string) bool { return strings.HasPrefix(name, spareName) }
