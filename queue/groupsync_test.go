package queue

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedOps counts directory fsyncs; each waits for a release when gate is set.
type gatedOps struct {
	osOps
	calls   atomic.Int32
	gate    chan error // nil: fsyncs return at once
	started chan struct{}
}

func (o *gatedOps) SyncDir(string) error {
	o.calls.Add(1)
	if o.started != nil {
		o.started <- struct{}{}
	}
	if o.gate != nil {
		return <-o.gate
	}
	return nil
}

// TestGroupSyncLateCallerWaitsForALaterFsync: a caller arriving while an fsync runs must not be
// released by it (its rename may have come after that fsync began), only by the next.
func TestGroupSyncLateCallerWaitsForALaterFsync(t *testing.T) {
	ops := &gatedOps{gate: make(chan error), started: make(chan struct{}, 4)}
	g := newGroupSync(ops)
	aDone, bDone := make(chan error), make(chan error)
	go func() { aDone <- g.SyncDir("q") }()
	<-ops.started // A's fsync (generation 1) is running
	go func() { bDone <- g.SyncDir("q") }()
	time.Sleep(20 * time.Millisecond) // let B reach its wait; correctness does not depend on it
	ops.gate <- nil                   // finish generation 1
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	select {
	case <-bDone:
		t.Fatal("B returned on an fsync that started before it was called")
	case <-ops.started: // B starts generation 2
	}
	ops.gate <- errors.New("EIO")
	if err := <-bDone; err == nil {
		t.Fatal("B's covering fsync failed but B got no error")
	}
	if n := ops.calls.Load(); n != 2 {
		t.Fatalf("%d fsyncs, want 2", n)
	}
}

// TestGroupSyncSharesFsyncs: many concurrent callers need far fewer fsyncs than calls.
func TestGroupSyncSharesFsyncs(t *testing.T) {
	ops := &slowOps{}
	g := newGroupSync(ops)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.SyncDir("q"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := ops.calls.Load(); n >= 64 {
		t.Fatalf("%d fsyncs for 64 concurrent callers: nothing was shared", n)
	}
}

type slowOps struct {
	osOps
	calls atomic.Int32
}

func (o *slowOps) SyncDir(string) error {
	o.calls.Add(1)
	time.Sleep(2 * time.Millisecond)
	return nil
}
