package queue

import "sync"

// groupSync makes concurrent directory fsyncs share one system call (group commit). A caller's
// SyncDir returns only after an fsync of that directory that STARTED after the call completes, so
// every rename or removal the caller made before calling is durable, exactly as with its own fsync;
// callers that arrive while one is running wait for it and then share the next. Under load, one
// fsync then covers many messages instead of one each.
type groupSync struct {
	fileOps
	mu   sync.Mutex
	dirs map[string]*dirSync
}

type dirSync struct {
	cond      *sync.Cond
	running   bool
	started   uint64 // generation of the latest fsync started
	finished  uint64 // generation of the latest fsync finished
	failedGen uint64 // latest generation whose fsync failed
	failedErr error
}

func newGroupSync(ops fileOps) *groupSync {
	return &groupSync{fileOps: ops, dirs: map[string]*dirSync{}}
}

func (g *groupSync) SyncDir(dir string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.dirs[dir]
	if d == nil {
		d = &dirSync{cond: sync.NewCond(&g.mu)}
		g.dirs[dir] = d
	}
	// The first fsync that starts from now on covers this caller's changes.
	target := d.started + 1
	for d.finished < target {
		if d.running {
			d.cond.Wait()
			continue
		}
		d.running = true
		d.started++
		gen := d.started
		g.mu.Unlock()
		err := g.fileOps.SyncDir(dir)
		g.mu.Lock()
		d.running = false
		d.finished = gen
		if err != nil {
			d.failedGen, d.failedErr = gen, err
		}
		d.cond.Broadcast()
	}
	// Generations target..finished all started after the call; if any failed, this caller cannot
	// know its change is durable.
	if d.failedGen >= target {
		return d.failedErr
	}
	return nil
}
