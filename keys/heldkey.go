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

// MailboxKeyFile is the file in the data directory that holds the key the secure mailbox seals
// the messages waiting for keyless customers with (AES-256-GCM, Sealer). Every node shares it,
// like held.key; it is never written to the store.
const MailboxKeyFile = "mailbox.key"

// ConsoleKeyFile is the file in the data directory that holds the key the web console seals its
// accounts' TOTP secrets with (AES-256-GCM, Sealer). Every node shares it, like held.key; it is
// never written to the store.
const ConsoleKeyFile = "console.key"

// heldKeySize is AES-256's key length.
const heldKeySize = 32

// HeldKey returns the quarantine's key, making it (32 random bytes, mode 0600) on first use. A
// key file of another size, or readable by others than its owner, is an error: the quarantine
// then refuses to start rather than hold mail under a key that may have leaked.
func (d DataDir) HeldKey() ([]byte, error) { return d.secretKey(HeldKeyFile) }

// OTPKeyFile is the file in the data directory that holds the OTP service's server key: the codes'
// HMACs, the transaction bindings and the sealed agent codes are made with keys derived from it.
// Every node shares it, like held.key; it is never written to the store.
const OTPKeyFile = "otp.key"

// OTPKey returns the OTP service's server key, made and checked as HeldKey's.
func (d DataDir) OTPKey() ([]byte, error) { return d.secretKey(OTPKeyFile) }

// ConsoleKey returns the web console's key, made and checked as HeldKey's.
func (d DataDir) ConsoleKey() ([]byte, error) { return d.secretKey(ConsoleKeyFile) }

// MailboxKey returns the secure mailbox's key, made and checked as HeldKey's.
func (d DataDir) MailboxKey() ([]byte, error) { return d.secretKey(MailboxKeyFile) }

// secretKey returns the AES-256 key in the data directory's file name, making it on first use.
func (d DataDir) secretKey(name string) ([]byte, error) {
	p := d.path(name)
	key, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return d.newSecretKey(name)
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

// newSecretKey writes the key to a temporary file and links it into place, so the file is never
// seen without its key, and two processes starting together cannot each make their own: link
// fails for the loser, which reads the winner's.
func (d DataDir) newSecretKey(name string) ([]byte, error) {
	p := d.path(name)
	key := make([]byte, heldKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(string(d), name+".*") // mode 0600
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
		return d.secretKey(name)
	} else if err != nil {
		return nil, err
	}
	// Mail is sealed with this key from now on: its name must survive a crash.
	if err := syncDir(string(d)); err != nil {
		return nil, err
	}
	return key, nil
}
