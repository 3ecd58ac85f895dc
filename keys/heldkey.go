package keys

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// HeldKeyFile is the file in the data directory that holds the key the quarantine encrypts held
// messages with (AES-256-GCM, quarantine.WithSealKey). Nodes that share a quarantine share it,
// like the signing identity; it is never written to the store.
const HeldKeyFile = "held.key"

// heldKeySize is AES-256's key length.
const heldKeySize = 32

// HeldKey returns the quarantine's key, making it (32 random bytes, mode 0600) on first use. A
// key file of another size, or readable by others than its owner, is an error: the quarantine
// then refuses to start rather than hold mail under a key that may have leaked.
func (d DataDir) HeldKey() ([]byte, error) {
	p := d.path(HeldKeyFile)
	key, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return d.newHeldKey(p)
	}
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(p); err != nil {
		return nil, err
	} else if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", p, fi.Mode().Perm())
	}
	if len(key) != heldKeySize {
		return nil, fmt.Errorf("%s holds %d bytes, want %d", p, len(key), heldKeySize)
	}
	return key, nil
}

// newHeldKey writes the key to a temporary file and links it into place, so the file is never
// seen without its key, and two processes starting together cannot each make their own: link
// fails for the loser, which reads the winner's.
func (d DataDir) newHeldKey(p string) ([]byte, error) {
	key := make([]byte, heldKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(string(d), HeldKeyFile+".*") // mode 0600
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp, p); errors.Is(err, fs.ErrExist) {
		return d.HeldKey()
	} else if err != nil {
		return nil, err
	}
	// Held mail is sealed with this key from now on: its name must survive a crash.
	if err := syncDir(string(d)); err != nil {
		return nil, err
	}
	return key, nil
}
