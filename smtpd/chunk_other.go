//go:build !unix

package smtpd

// newChunk returns readChunk bytes for readMessage to read into (from the heap here: the unix
// version maps memory it can give back at once).
func newChunk() ([]byte, error) { return make([]byte, readChunk), nil }

// freeChunk drops c; the collector frees it.
func freeChunk([]byte) {}
