//go:build unix

package queue

import (
	"fmt"
	"os"
	"syscall"
)

// lockSpool takes an exclusive lock on path, so that two processes never
// deliver from the same spool. The kernel drops it when the process dies.
func lockSpool(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool %s is in use by another process: %w", path, err)
	}
	return f, nil
}
