//go:build !unix

package queue

import "os"

// lockSpool opens the lock file; without flock, exclusive use of the spool
// is the operator's to ensure.
func lockSpool(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
