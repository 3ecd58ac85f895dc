package ops

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The ops token is the credential of queue control. Its secret is in TokenFile, in the data
// directory, which only the service user can read (0600); the sealpost CLI reads it from there
// (sealpost queue -data DIR, or -token-file FILE) and sends it as "Authorization: Bearer SECRET".
// The listener keeps only its SHA-256, read from TokenHashFile: the secret can be moved out of the
// data directory (for -token-file) without the listener losing its credential. A token of 256
// random bits needs no slow hash; the comparison is constant-time.
const (
	TokenFile     = "ops.token"
	TokenHashFile = "ops.token.sha256"
	// minTokenLen is the shortest secret accepted: an operator's own token must not be weaker
	// than what EnsureToken makes (43 characters).
	minTokenLen = 32
	maxTokenLen = 512
)

var (
	// ErrNoToken reports a token file that does not exist.
	ErrNoToken = errors.New("ops: no ops token")
	// ErrTokenFileMode reports a token file (or its hash) that others than its owner may read or
	// write.
	ErrTokenFileMode = errors.New("ops: token file is not private to its owner")
	// ErrNotPrivate reports a secret file (ReadPrivateFile) that others than its owner may read
	// or write.
	ErrNotPrivate = errors.New("file is not private to its owner")
)

// Token checks the credential requests to queue control present. The zero value accepts nothing.
type Token struct {
	sum [sha256.Size]byte
	set bool
}

// NewToken returns the Token that accepts secret, for a listener whose secret is not kept in a
// data directory.
func NewToken(secret string) *Token {
	return &Token{sum: sha256.Sum256([]byte(secret)), set: secret != ""}
}

// matches reports, in constant time, whether secret is the token's.
func (t *Token) matches(secret string) bool {
	if t == nil || !t.set || secret == "" {
		return false
	}
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1
}

// EnsureToken returns the Token of the data directory dir, making one at first start: a random
// secret in dir/ops.token and its SHA-256 in dir/ops.token.sha256, both 0600, written atomically.
// With only ops.token present (an operator's own, or after the hash was removed to adopt a new
// one) its hash is written. It refuses a token or hash file that others may read or write
// (ErrTokenFileMode), and an ops.token that does not match the hash.
func EnsureToken(dir string) (*Token, error) {
	tokPath, hashPath := filepath.Join(dir, TokenFile), filepath.Join(dir, TokenHashFile)
	hb, err := readPrivate(hashPath, 4<<10, ErrTokenFileMode)
	if err == nil {
		t, err := parseTokenHash(hb)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", hashPath, err)
		}
		if secret, err := ReadTokenFile(tokPath); err == nil && !t.matches(secret) {
			return nil, fmt.Errorf("ops: %s does not match %s: remove %s to adopt the token in %s, or both to make a new one",
				TokenFile, TokenHashFile, hashPath, TokenFile)
		} else if err != nil && !errors.Is(err, ErrNoToken) {
			return nil, err
		}
		return t, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	secret, err := ReadTokenFile(tokPath)
	if errors.Is(err, ErrNoToken) {
		var b [32]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		secret = base64.RawURLEncoding.EncodeToString(b[:])
		if err = writePrivate(tokPath, []byte(secret+"\n")); err != nil {
			return nil, fmt.Errorf("ops: create %s: %w", tokPath, err)
		}
	} else if err != nil {
		return nil, err
	}
	t := NewToken(secret)
	if err := writePrivate(hashPath, []byte(hex.EncodeToString(t.sum[:])+"\n")); err != nil {
		return nil, fmt.Errorf("ops: create %s: %w", hashPath, err)
	}
	return t, nil
}

// CheckToken says, without writing anything, whether EnsureToken would accept the token files in dir:
// none yet (they are made at first start), or files only their owner may read that match.
func CheckToken(dir string) error {
	tokPath, hashPath := filepath.Join(dir, TokenFile), filepath.Join(dir, TokenHashFile)
	secret, err := ReadTokenFile(tokPath)
	if err != nil && !errors.Is(err, ErrNoToken) {
		return err
	}
	hb, herr := readPrivate(hashPath, 4<<10, ErrTokenFileMode)
	if errors.Is(herr, fs.ErrNotExist) {
		return nil
	}
	if herr != nil {
		return herr
	}
	t, herr := parseTokenHash(hb)
	if herr != nil {
		return fmt.Errorf("%s: %w", hashPath, herr)
	}
	if err == nil && !t.matches(secret) {
		return fmt.Errorf("ops: %s does not match %s: remove %s to adopt the token in %s, or both to make a new one",
			TokenFile, TokenHashFile, hashPath, TokenFile)
	}
	return nil
}

func parseTokenHash(b []byte) (*Token, error) {
	sum, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(sum) != sha256.Size {
		return nil, errors.New("not a SHA-256 in hex")
	}
	t := &Token{set: true}
	copy(t.sum[:], sum)
	return t, nil
}

// ReadTokenFile reads the ops token's secret from path, as the sealpost CLI does. It fails with
// ErrNoToken when the file does not exist, ErrTokenFileMode when others than its owner may read or
// write it, and says what is wrong with one whose content cannot be a token.
func ReadTokenFile(path string) (string, error) {
	b, err := readPrivate(path, maxTokenLen+2, ErrTokenFileMode)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s does not exist", ErrNoToken, path)
	}
	if err != nil {
		return "", err
	}
	secret, err := parseTokenSecret(b)
	if err != nil {
		return "", fmt.Errorf("ops: %s: %w", path, err)
	}
	return secret, nil
}

// parseTokenSecret returns the secret a token file holds: one line of printable ASCII without
// spaces, minTokenLen to maxTokenLen characters, with or without a line ending.
func parseTokenSecret(b []byte) (string, error) {
	secret := strings.TrimRight(string(b), "\r\n")
	if len(secret) < minTokenLen || len(secret) > maxTokenLen {
		return "", fmt.Errorf("a token is %d to %d characters, this one %d", minTokenLen, maxTokenLen, len(secret))
	}
	for i := 0; i < len(secret); i++ {
		if c := secret[i]; c <= ' ' || c >= 0x7f {
			return "", errors.New("a token is printable ASCII without spaces, on one line")
		}
	}
	return secret, nil
}

// ReadPrivateFile reads at most limit bytes of the secret file path (such as the file holding
// PostgreSQL's connection string and password), which must be a regular file only its owner may
// read or write, as the ops token's: ErrNotPrivate otherwise, with the chmod that fixes it.
func ReadPrivateFile(path string, limit int64) ([]byte, error) {
	return readPrivate(path, limit, ErrNotPrivate)
}

// readPrivate reads at most limit bytes of path, which must be a regular file only its owner may
// read or write; notPrivate is the error wrapped when others may.
func readPrivate(path string, limit int64, notPrivate error) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ops: %s is not a regular file", path)
	}
	if p := fi.Mode().Perm(); p&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is mode %04o; only the service user may read it (chmod 600 %s)", notPrivate, path, p, path)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// writePrivate makes path hold b, mode 0600, durably: a temporary file beside it, fsync, rename,
// directory fsync.
func writePrivate(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
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
