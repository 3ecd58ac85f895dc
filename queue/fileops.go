package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// tempFile is the part of *os.File that an atomic write needs.
type tempFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

// fileOps is the seam through which the spool changes the disk. Production
// uses osOps; tests substitute failing operations to prove that every failure
// surfaces as ErrSpoolWrite and leaves no entry visible.
type fileOps interface {
	CreateTemp(dir, pattern string) (tempFile, error)
	// Reuse opens an existing file to be written afresh (truncated), as CreateTemp's would be.
	Reuse(path string) (tempFile, error)
	Rename(oldpath, newpath string) error
	SyncDir(dir string) error
	Remove(path string) error
}

type osOps struct{}

func (osOps) CreateTemp(dir, pattern string) (tempFile, error) {
	return os.CreateTemp(dir, pattern) // mode 0600
}

func (osOps) Reuse(path string) (tempFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
}

func (osOps) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

func (osOps) Remove(path string) error { return os.Remove(path) }

func (osOps) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeAtomic makes dir/name hold exactly what write produces, durably: it
// writes a temporary file in tmpDir (same file system), fsyncs it, renames it
// into place and fsyncs dir. On any failure the temporary file is removed, a
// file already renamed into place is removed again, and the error wraps
// ErrSpoolWrite.
func writeAtomic(ops fileOps, tmpDir, dir, name string, write func(io.Writer) error) error {
	return writeAtomicOver(ops, "", tmpDir, dir, name, write)
}

// writeAtomicOver is writeAtomic writing over spare, a file in tmpDir free to be overwritten
// ("": none; nor when it cannot be opened).
func writeAtomicOver(ops fileOps, spare, tmpDir, dir, name string, write func(io.Writer) error) error {
	var f tempFile
	var err error
	if spare != "" {
		if f, err = ops.Reuse(spare); err != nil {
			_ = ops.Remove(spare)
		}
	}
	if f == nil {
		if f, err = ops.CreateTemp(tmpDir, name+".*"); err != nil {
			return fmt.Errorf("%w: create temporary file: %w", ErrSpoolWrite, err)
		}
	}
	tmp := f.Name()
	fail := func(step string, err error) error {
		_ = f.Close()
		_ = ops.Remove(tmp)
		return fmt.Errorf("%w: %s %s: %w", ErrSpoolWrite, step, name, err)
	}
	if err := write(f); err != nil {
		return fail("write", err)
	}
	if err := f.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := f.Close(); err != nil {
		_ = ops.Remove(tmp)
		return fmt.Errorf("%w: close %s: %w", ErrSpoolWrite, name, err)
	}
	dst := filepath.Join(dir, name)
	if err := ops.Rename(tmp, dst); err != nil {
		_ = ops.Remove(tmp)
		return fmt.Errorf("%w: rename %s: %w", ErrSpoolWrite, name, err)
	}
	if err := ops.SyncDir(dir); err != nil {
		// The new name may or may not survive a crash; the caller reports
		// failure, so take the name back rather than leave a maybe-entry.
		rerr := ops.Remove(dst)
		if rerr == nil || errors.Is(rerr, os.ErrNotExist) {
			_ = ops.SyncDir(dir)
		}
		return fmt.Errorf("%w: fsync directory of %s: %w", ErrSpoolWrite, name, err)
	}
	return nil
}

// removeDurably removes the given files in order and fsyncs dir once. Missing
// files are not an error.
func removeDurably(ops fileOps, dir string, paths ...string) error {
	for _, p := range paths {
		if err := ops.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: remove %s: %w", ErrSpoolWrite, filepath.Base(p), err)
		}
	}
	if err := ops.SyncDir(dir); err != nil {
		return fmt.Errorf("%w: fsync directory: %w", ErrSpoolWrite, err)
	}
	return nil
}

// WriteFileDurably makes dir/name hold exactly data with the spool's discipline: a temporary file
// in tmpDir (same file system), fsync, rename, fsync of dir; on failure nothing is left under name.
// The quarantine keeps held mail with it, so queue stays the only code that writes mail to disk.
func WriteFileDurably(tmpDir, dir, name string, data []byte) error {
	return writeAtomic(osOps{}, tmpDir, dir, name, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// RemoveDurably removes paths (missing ones are not an error) and fsyncs dir once.
func RemoveDurably(dir string, paths ...string) error { return removeDurably(osOps{}, dir, paths...) }
