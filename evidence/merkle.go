package evidence

import (
	"crypto/sha256"
	"errors"
	"fmt"
)

// Hash is a SHA-256 value of the log's Merkle tree (RFC 9162 2.1).
type Hash [sha256.Size]byte

// LeafHash is the hash of one record as the tree holds it: SHA-256(0x00 || record).
func LeafHash(record []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(record)
	return Hash(h.Sum(nil))
}

// nodeHash is an interior node's hash: SHA-256(0x01 || left || right).
func nodeHash(left, right Hash) Hash {
	var b [1 + 2*sha256.Size]byte
	b[0] = 1
	copy(b[1:], left[:])
	copy(b[1+sha256.Size:], right[:])
	return Hash(sha256.Sum256(b[:]))
}

// emptyRoot is the Merkle tree hash of no records: SHA-256 of nothing.
var emptyRoot = Hash(sha256.Sum256(nil))

// Frontier is the compact form of a Merkle tree being appended to: the roots of its perfect
// subtrees, largest first (at most 64). It gives the tree hash of every size without keeping the
// leaves, and is what a checkpoint stores so that verification can start after pruned segments.
type Frontier struct {
	Size  uint64 `json:"size"`
	Nodes []Hash `json:"nodes"` // one per set bit of Size, the largest subtree first
}

// Append adds one leaf.
func (f *Frontier) Append(leaf Hash) {
	f.Nodes = append(f.Nodes, leaf)
	// Each trailing one bit of the old size is a subtree of the new leaf's height: merge them.
	for s := f.Size; s&1 == 1; s >>= 1 {
		n := len(f.Nodes)
		f.Nodes = append(f.Nodes[:n-2], nodeHash(f.Nodes[n-2], f.Nodes[n-1]))
	}
	f.Size++
}

// Root is the Merkle tree hash (RFC 9162 2.1.1) of the leaves appended so far.
func (f *Frontier) Root() Hash {
	if len(f.Nodes) == 0 {
		return emptyRoot
	}
	r := f.Nodes[len(f.Nodes)-1]
	for i := len(f.Nodes) - 2; i >= 0; i-- {
		r = nodeHash(f.Nodes[i], r)
	}
	return r
}

// Clone is an independent copy of f.
func (f *Frontier) Clone() Frontier {
	return Frontier{Size: f.Size, Nodes: append([]Hash(nil), f.Nodes...)}
}

// valid reports whether f's node count matches its size.
func (f *Frontier) valid() bool {
	n := 0
	for s := f.Size; s != 0; s &= s - 1 {
		n++
	}
	return n == len(f.Nodes)
}

// rootOf is MTH(leaves) (RFC 9162 2.1.1).
func rootOf(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return emptyRoot
	case 1:
		return leaves[0]
	}
	k := split(len(leaves))
	return nodeHash(rootOf(leaves[:k]), rootOf(leaves[k:]))
}

// split is the largest power of two smaller than n (n > 1).
func split(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

// InclusionProof is the audit path (RFC 9162 2.1.3.1) of leaf m in the tree of leaves: the
// sibling hashes from the leaf up.
func InclusionProof(m int, leaves []Hash) ([]Hash, error) {
	if m < 0 || m >= len(leaves) {
		return nil, fmt.Errorf("evidence: leaf %d not in a tree of %d", m, len(leaves))
	}
	var path []Hash
	for len(leaves) > 1 {
		k := split(len(leaves))
		if m < k {
			path = append(path, rootOf(leaves[k:]))
			leaves = leaves[:k]
		} else {
			path = append(path, rootOf(leaves[:k]))
			leaves, m = leaves[k:], m-k
		}
	}
	// Collected from the root down; the proof runs from the leaf up.
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path, nil
}

// ErrProof: an inclusion proof does not lead from the leaf to the root.
var ErrProof = errors.New("evidence: the inclusion proof does not match the tree head")

// Step is one step of an inclusion proof as a third party computes it: the sibling goes Left or
// right of the hash so far.
type Step struct {
	Sibling Hash
	Left    bool
}

// ProofSteps says, for the proof of leaf m in a tree of size n, on which side each sibling goes
// (RFC 9162 2.1.3.2), or ErrProof when the proof has the wrong length.
func ProofSteps(m, n uint64, proof []Hash) ([]Step, error) {
	if m >= n {
		return nil, ErrProof
	}
	fn, sn := m, n-1
	steps := make([]Step, 0, len(proof))
	for _, p := range proof {
		if sn == 0 {
			return nil, ErrProof
		}
		if fn&1 == 1 || fn == sn {
			steps = append(steps, Step{Sibling: p, Left: true})
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			steps = append(steps, Step{Sibling: p})
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return nil, ErrProof
	}
	return steps, nil
}

// VerifyInclusion checks that leaf is leaf m of the tree of size n whose hash is root.
func VerifyInclusion(leaf Hash, m, n uint64, proof []Hash, root Hash) error {
	steps, err := ProofSteps(m, n, proof)
	if err != nil {
		return err
	}
	r := leaf
	for _, s := range steps {
		if s.Left {
			r = nodeHash(s.Sibling, r)
		} else {
			r = nodeHash(r, s.Sibling)
		}
	}
	if r != root {
		return ErrProof
	}
	return nil
}
