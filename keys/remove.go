package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// RemoveRecipient removes a customer's certificate or OpenPGP key, named by its fingerprint
// (CertFingerprint or PGPFingerprint), from the recipient directory: recipients/ holds a certificate
// under the first 32 hex digits of its SHA-256 fingerprint and an OpenPGP key under its fingerprint.
// The directory is fsynced. Removing what is not there is an error wrapping fs.ErrNotExist.
func (d DataDir) RemoveRecipient(fingerprint string) error {
	fp := strings.ToLower(fingerprint)
	if fp == "" || strings.Trim(fp, "0123456789abcdef") != "" {
		return fmt.Errorf("fingerprint %q: want hex digits", fingerprint)
	}
	var names []string
	if len(fp) == 64 {
		names = append(names, fp[:32]+".pem")
	}
	names = append(names, fp+".asc")
	for _, n := range names {
		err := removeSynced(filepath.Join(d.path("recipients"), n))
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return fmt.Errorf("%s: no recipient with fingerprint %s: %w", d, fingerprint, fs.ErrNotExist)
}

// SyncDir fsyncs a directory, so that a file created, renamed or removed in it survives a crash.
func SyncDir(name string) error { return syncDir(name) }

// WriteFileAtomic writes data to name (mode perm) through a synced temporary file renamed into
// place, then syncs the directory: a crash leaves the old file or the new one, never half of one.
func WriteFileAtomic(name string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(name, data, perm)
}

// syncDir fsyncs a directory, so a rename or removal in it survives a crash.
func syncDir(name string) error {
	dir, err := os.Open(name)
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
