package evidence

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sealpost/sealpost/keys"
)

// Position is where a line of the log is: its segment file and line number (from 1).
type Position struct {
	Segment string
	Line    int
}

func (p Position) String() string { return fmt.Sprintf("%s:%d", p.Segment, p.Line) }

// Segment is one file of records: those from First on, up to the next segment's first.
type Segment struct {
	Name  string
	First uint64
}

// Backend keeps one chain's record lines and checkpoints, append-only. The Log serialises its
// calls to Append and StartSegment.
type Backend interface {
	// Size is the number of records kept (including pruned segments).
	Size() uint64
	// Append durably adds lines after the last (written and synced when it returns nil). On an
	// error nothing of them is kept, or the backend is broken (ErrBroken) until it is opened again.
	Append(lines [][]byte) error
	// StartSegment begins a new segment at the current size: records appended from now on go to it.
	StartSegment() error
	// Scan calls fn for each record line from the segment holding record from onwards, in order,
	// with its position; lines before from are included when they share its segment.
	Scan(from uint64, fn func(pos Position, first uint64, line []byte) error) error
	// Segments lists the segments, oldest first.
	Segments() ([]Segment, error)
	// Prune removes a segment (never the last).
	Prune(s Segment) error
	// AppendCheckpoint durably adds a checkpoint line; Checkpoints reads them all, in order.
	AppendCheckpoint(line []byte) error
	Checkpoints(fn func(line []byte) error) error
	Close() error
}

// ErrBroken: a write failed and could not be undone; the backend must be opened again.
var ErrBroken = errors.New("evidence: the log's last write could not be undone; reopen it")

// FileBackend keeps the log in a directory: records-FIRST.log segments of JSON lines (FIRST,
// twenty digits, is the seq of its first record) and checkpoints.log. Every write is synced, and
// a new file's directory entry too, as the spool does.
type FileBackend struct {
	dir string

	mu      sync.Mutex
	cur     *os.File // the last segment, open for appending
	curName string
	first   uint64 // the last segment's first seq
	lines   uint64 // records in the last segment
	end     int64  // the last segment's durable length
	broken  bool
	ro      bool // opened to read only (OpenFileBackendReadOnly)
	cps     *os.File
	// Dropped is the torn tail (bytes after the last complete record) removed at open: what a
	// crash mid-append left.
	Dropped int
}

const segmentPrefix, segmentSuffix = "records-", ".log"

func segmentName(first uint64) string {
	return fmt.Sprintf("%s%020d%s", segmentPrefix, first, segmentSuffix)
}

// OpenFileBackend opens (creating it if needed) the log in dir. A torn last record — bytes after
// the last newline, which a crash during an append leaves — is removed and counted in Dropped.
func OpenFileBackend(dir string) (*FileBackend, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	b := &FileBackend{dir: dir}
	segs, err := b.Segments()
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		if err := b.create(0); err != nil {
			return nil, err
		}
	} else if err := b.openLast(segs[len(segs)-1]); err != nil {
		return nil, err
	}
	cps, err := os.OpenFile(filepath.Join(dir, "checkpoints.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		err = cutTorn(cps)
	}
	if err != nil {
		b.cur.Close()
		if cps != nil {
			cps.Close()
		}
		return nil, fmt.Errorf("evidence: %w", err)
	}
	if err := syncDir(dir); err != nil {
		b.cur.Close()
		cps.Close()
		return nil, err
	}
	b.cps = cps
	return b, nil
}

// OpenFileBackendReadOnly opens the log in dir to read it (evidence verify, show, find) while a
// running serve may be appending: nothing is created, cut or written.
func OpenFileBackendReadOnly(dir string) (*FileBackend, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("evidence: no evidence log in %s", dir)
	}
	b := &FileBackend{dir: dir, ro: true}
	segs, err := b.Segments()
	if err != nil {
		return nil, err
	}
	if n := len(segs); n > 0 {
		last := segs[n-1]
		b.curName, b.first = last.Name, last.First
		data, err := os.ReadFile(filepath.Join(dir, last.Name))
		if err != nil {
			return nil, fmt.Errorf("evidence: %w", err)
		}
		b.lines = uint64(bytes.Count(data, []byte{'\n'}))
	}
	return b, nil
}

var errReadOnly = errors.New("evidence: the log is open to read only")

// openLast opens the last segment for appending, cutting a torn tail.
func (b *FileBackend) openLast(s Segment) error {
	path := filepath.Join(b.dir, s.Name)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	keep := bytes.LastIndexByte(data, '\n') + 1
	f, err := os.OpenFile(path, os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	if keep < len(data) {
		if err := f.Truncate(int64(keep)); err != nil {
			f.Close()
			return fmt.Errorf("evidence: cut the torn tail of %s: %w", s.Name, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("evidence: %w", err)
		}
		b.Dropped = len(data) - keep
	}
	if _, err := f.Seek(int64(keep), io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("evidence: %w", err)
	}
	b.cur, b.curName, b.first, b.end = f, s.Name, s.First, int64(keep)
	b.lines = uint64(bytes.Count(data[:keep], []byte{'\n'}))
	return nil
}

// create starts the segment beginning at first.
func (b *FileBackend) create(first uint64) error {
	name := segmentName(first)
	f, err := os.OpenFile(filepath.Join(b.dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("evidence: %w", err)
	}
	if err := syncDir(b.dir); err != nil {
		f.Close()
		return err
	}
	if b.cur != nil {
		b.cur.Close()
	}
	b.cur, b.curName, b.first, b.lines, b.end = f, name, first, 0, 0
	return nil
}

// Size implements Backend.
func (b *FileBackend) Size() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.first + b.lines
}

// Append implements Backend: one write of all lines, then fsync; on failure the segment is cut
// back to its durable length.
func (b *FileBackend) Append(lines [][]byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ro {
		return errReadOnly
	}
	if b.broken {
		return ErrBroken
	}
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	buf := make([]byte, 0, n)
	for _, l := range lines {
		buf = append(append(buf, l...), '\n')
	}
	_, err := b.cur.Write(buf)
	if err == nil {
		err = b.cur.Sync()
	}
	if err != nil {
		if terr := b.undo(); terr != nil {
			b.broken = true
			return fmt.Errorf("%w: %v (then: %v)", ErrBroken, err, terr)
		}
		return fmt.Errorf("evidence: append: %w", err)
	}
	b.end += int64(len(buf))
	b.lines += uint64(len(lines))
	return nil
}

// undo cuts the segment back to its durable length after a failed write.
func (b *FileBackend) undo() error {
	if err := b.cur.Truncate(b.end); err != nil {
		return err
	}
	if _, err := b.cur.Seek(b.end, io.SeekStart); err != nil {
		return err
	}
	return b.cur.Sync()
}

// StartSegment implements Backend.
func (b *FileBackend) StartSegment() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ro {
		return errReadOnly
	}
	if b.lines == 0 {
		return nil // the current one is still empty
	}
	return b.create(b.first + b.lines)
}

// Segments implements Backend.
func (b *FileBackend) Segments() ([]Segment, error) {
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	var out []Segment
	for _, e := range ents {
		name := e.Name()
		num, ok := strings.CutPrefix(name, segmentPrefix)
		if !ok || !strings.HasSuffix(num, segmentSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(num, segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, Segment{Name: name, First: first})
	}
	slices.SortFunc(out, func(a, b Segment) int { return cmpUint(a.First, b.First) })
	return out, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Scan implements Backend. It reads what was durable when each segment is reached.
func (b *FileBackend) Scan(from uint64, fn func(pos Position, first uint64, line []byte) error) error {
	segs, err := b.Segments()
	if err != nil {
		return err
	}
	for _, s := range segs[min(segmentHolding(segs, from), len(segs)):] {
		if err := b.scanSegment(s, fn); err != nil {
			return err
		}
	}
	return nil
}

func (b *FileBackend) scanSegment(s Segment, fn func(pos Position, first uint64, line []byte) error) error {
	f, err := os.Open(filepath.Join(b.dir, s.Name))
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("evidence: %s:%d: a line longer than 1 MiB", s.Name, n)
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if ferr := fn(Position{Segment: s.Name, Line: n}, s.First, line[:len(line)-1]); ferr != nil {
				return ferr
			}
		} else if len(line) > 0 {
			// A tail without its newline: torn (cut at the next open) or still being written.
			return nil
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("evidence: %w", err)
		}
	}
}

// Prune implements Backend.
func (b *FileBackend) Prune(s Segment) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ro {
		return errReadOnly
	}
	if s.Name == b.curName {
		return errors.New("evidence: the last segment is never pruned")
	}
	if err := os.Remove(filepath.Join(b.dir, s.Name)); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	return syncDir(b.dir)
}

// AppendCheckpoint implements Backend.
func (b *FileBackend) AppendCheckpoint(line []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ro {
		return errReadOnly
	}
	if _, err := b.cps.Write(append(slices.Clip(line), '\n')); err != nil {
		return fmt.Errorf("evidence: checkpoint: %w", err)
	}
	return b.cps.Sync()
}

// Checkpoints implements Backend.
func (b *FileBackend) Checkpoints(fn func(line []byte) error) error {
	data, err := os.ReadFile(filepath.Join(b.dir, "checkpoints.log"))
	if errors.Is(err, os.ErrNotExist) && b.ro {
		return nil
	}
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil // a torn checkpoint: as if it had not been made
		}
		if err := fn(data[:i]); err != nil {
			return err
		}
		data = data[i+1:]
	}
	return nil
}

// Close implements Backend.
func (b *FileBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ro {
		return nil
	}
	return errors.Join(b.cur.Close(), b.cps.Close())
}

// cutTorn removes what follows the last newline of f (a checkpoint a crash interrupted).
func cutTorn(f *os.File) error {
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return err
	}
	if keep := bytes.LastIndexByte(data, '\n') + 1; keep < len(data) {
		if err := f.Truncate(int64(keep)); err != nil {
			return err
		}
		return f.Sync()
	}
	return nil
}

// syncDir fsyncs dir (keys.SyncDir), naming it in the error.
func syncDir(dir string) error {
	if err := keys.SyncDir(dir); err != nil {
		return fmt.Errorf("evidence: sync %s: %w", dir, err)
	}
	return nil
}

// segmentHolding is the index of the segment of segs (oldest first) that holds record from.
func segmentHolding(segs []Segment, from uint64) int {
	i := 0
	for j, s := range segs {
		if s.First <= from {
			i = j
		}
	}
	return i
}
