package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
)

func leaves(n int) []Hash {
	out := make([]Hash, n)
	for i := range out {
		out[i] = LeafHash(fmt.Appendf(nil, "record %d", i))
	}
	return out
}

// TestFrontierRootIsMTH: the incremental root equals RFC 9162's recursive definition for every
// size up to 130, and the empty tree's hash is SHA-256 of nothing.
func TestFrontierRootIsMTH(t *testing.T) {
	ls := leaves(130)
	var f Frontier
	if f.Root() != Hash(sha256.Sum256(nil)) {
		t.Fatal("empty root")
	}
	for i, l := range ls {
		f.Append(l)
		if got, want := f.Root(), rootOf(ls[:i+1]); got != want {
			t.Fatalf("size %d: frontier root %x, MTH %x", i+1, got, want)
		}
		if !f.valid() {
			t.Fatalf("size %d: %d nodes", i+1, len(f.Nodes))
		}
	}
}

// TestKnownTreeHashes: hand-computed values of RFC 9162's hashing for sizes 1 to 3, so that a
// change that is self-consistent but not RFC 9162 (another prefix, another split) fails.
func TestKnownTreeHashes(t *testing.T) {
	h := func(b ...[]byte) Hash {
		s := sha256.New()
		for _, x := range b {
			s.Write(x)
		}
		return Hash(s.Sum(nil))
	}
	a, b, c := []byte("a"), []byte("b"), []byte("c")
	la, lb, lc := h([]byte{0}, a), h([]byte{0}, b), h([]byte{0}, c)
	ab := h([]byte{1}, la[:], lb[:])
	abc := h([]byte{1}, ab[:], lc[:])
	var f Frontier
	for i, want := range []Hash{la, ab, abc} {
		f.Append(LeafHash([][]byte{a, b, c}[i]))
		if f.Root() != want {
			t.Fatalf("size %d: %x, want %x", i+1, f.Root(), want)
		}
	}
	// SHA-256(0x00 || "a"), as `printf '\0a' | sha256sum` gives.
	if got := hex.EncodeToString(la[:]); got != "022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c" {
		t.Errorf("leaf hash of \"a\": %s", got)
	}
}

// TestInclusionProofs: every leaf of every tree up to 70 proves against the root, and a proof
// fails for another leaf, another index, another size, or a changed sibling.
func TestInclusionProofs(t *testing.T) {
	ls := leaves(70)
	for n := 1; n <= len(ls); n++ {
		root := rootOf(ls[:n])
		for m := range n {
			p, err := InclusionProof(m, ls[:n])
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(ls[m], uint64(m), uint64(n), p, root); err != nil {
				t.Fatalf("n=%d m=%d: %v", n, m, err)
			}
			if n > 1 {
				if VerifyInclusion(ls[(m+1)%n], uint64(m), uint64(n), p, root) == nil {
					t.Fatalf("n=%d m=%d: another leaf proved", n, m)
				}
				if VerifyInclusion(ls[m], uint64((m+1)%n), uint64(n), p, root) == nil {
					t.Fatalf("n=%d m=%d: another index proved", n, m)
				}
				bad := append([]Hash(nil), p...)
				bad[0][0] ^= 1
				if VerifyInclusion(ls[m], uint64(m), uint64(n), bad, root) == nil {
					t.Fatalf("n=%d m=%d: a changed sibling proved", n, m)
				}
			}
			if VerifyInclusion(ls[m], uint64(m), uint64(n+1), p, rootOf(ls[:min(n+1, len(ls))])) == nil && n < len(ls) {
				t.Fatalf("n=%d m=%d: proved against the next size", n, m)
			}
		}
	}
}

// FuzzProofSteps: whatever the index, size and proof length, ProofSteps and VerifyInclusion
// never panic.
func FuzzProofSteps(f *testing.F) {
	f.Add(uint64(0), uint64(1), 0)
	f.Add(uint64(5), uint64(7), 3)
	f.Add(uint64(1<<63), uint64(1<<63+1), 64)
	f.Fuzz(func(t *testing.T, m, n uint64, k int) {
		if k < 0 || k > 200 {
			return
		}
		_ = VerifyInclusion(Hash{}, m, n, make([]Hash, k), Hash{})
	})
}

func BenchmarkFrontierAppend(b *testing.B) {
	var f Frontier
	l := LeafHash([]byte("record"))
	for b.Loop() {
		f.Append(l)
	}
}
