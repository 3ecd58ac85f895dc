package evidence

import (
	"fmt"
	"time"
)

// Pruned is what Prune removed.
type Pruned struct {
	Segments int    // segments removed
	Records  uint64 // records in them
	From     uint64 // the first record kept
}

// Prune removes the oldest segments whose every record a checkpoint made before before covers,
// keeping all checkpoints. It stops at a segment boundary where a checkpoint with a valid
// frontier was made (so that verification goes on from there), and never removes the segment
// being written. Segments go oldest first; a prune interrupted between two of them is finished
// by the next.
func Prune(b Backend, before time.Time) (Pruned, error) {
	type cut struct {
		at    time.Time
		valid bool
	}
	cuts := map[uint64]cut{} // by size: the earliest checkpoint made there
	var sizes []uint64       // checkpoint sizes in the order made (ascending)
	var times []time.Time
	err := b.Checkpoints(func(line []byte) error {
		cp, err := decodeCheckpoint(line)
		if err != nil {
			return fmt.Errorf("evidence: checkpoints: %w", err)
		}
		if cp.Renewal {
			return nil
		}
		h, err := ParseHead(cp.Text)
		if err != nil {
			return err
		}
		if _, seen := cuts[h.Size]; !seen {
			f := cp.Frontier
			cuts[h.Size] = cut{at: h.Time, valid: f.Size == h.Size && f.valid() && f.Root() == h.Root}
		}
		sizes, times = append(sizes, h.Size), append(times, h.Time)
		return nil
	})
	if err != nil {
		return Pruned{}, err
	}
	// coveredAt is when a checkpoint first covered every record below size (false: none yet).
	coveredAt := func(size uint64) (time.Time, bool) {
		for i, s := range sizes {
			if s >= size {
				return times[i], true
			}
		}
		return time.Time{}, false
	}
	segs, err := b.Segments()
	if err != nil {
		return Pruned{}, err
	}
	if len(segs) == 0 {
		return Pruned{}, nil
	}
	keep := 0 // the first segment kept: segs[:keep] go
	for k := 1; k < len(segs); k++ {
		at, ok := coveredAt(segs[k].First)
		if !ok || !at.Before(before) {
			break
		}
		if c, ok := cuts[segs[k].First]; ok && c.valid {
			keep = k
		}
	}
	p := Pruned{From: segs[0].First}
	for i, s := range segs[:keep] {
		if err := b.Prune(s); err != nil {
			return p, err
		}
		p.Segments++
		p.Records += segs[i+1].First - s.First
		p.From = segs[i+1].First
	}
	return p, nil
}
