//go:build unix

package smtpd

import "syscall"

// newChunk returns readChunk bytes of memory outside the Go heap (an anonymous mapping), for
// readMessage to read into: freeChunk gives each back to the system as soon as it is copied, so
// joining the chunks holds the message once, not twice (10 MB read costs 11 MB, not 20), which a
// heap buffer, freed only by a later collection, cannot do.
func newChunk() ([]byte, error) {
	return syscall.Mmap(-1, 0, readChunk, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
}

// freeChunk unmaps c; nothing may use it afterwards.
func freeChunk(c []byte) { _ = syscall.Munmap(c[:cap(c)]) }
