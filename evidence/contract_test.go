package evidence

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/pgtest"
	"github.com/sealpost/sealpost/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backendKinds open a fresh backend of each kind, and return a function that opens it again
// (what a restart does): files (the embedded default), a chain in SQLite, and one in PostgreSQL.
var backendKinds = []struct {
	name string
	open func(t *testing.T) (Backend, func(t *testing.T) Backend)
}{
	{"files", func(t *testing.T) (Backend, func(t *testing.T) Backend) {
		dir := t.TempDir()
		reopen := func(t *testing.T) Backend {
			fb, err := OpenFileBackend(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fb.Close() })
			return fb
		}
		return reopen(t), reopen
	}},
	{"sqlite", func(t *testing.T) (Backend, func(t *testing.T) Backend) {
		st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "sealpost.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		reopen := func(t *testing.T) Backend {
			b, err := OpenStoreBackend(st, "node-a")
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		return reopen(t), reopen
	}},
	{"postgres", func(t *testing.T) (Backend, func(t *testing.T) Backend) {
		srv := pgtest.Start(t)
		cfg := store.DefaultPostgresConfig()
		cfg.DSN = srv.DSN(srv.NewDatabase(t))
		p, err := store.OpenPostgres(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		reopen := func(t *testing.T) Backend {
			b, err := OpenStoreBackend(p, "node-a")
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		return reopen(t), reopen
	}},
}

// TestBackendContract: on every backend, concurrent appends make one chain that verifies; the
// log reopened goes on from its end; a failed write leaves the chain whole; segments start at
// checkpoints, and pruning the older ones leaves a log that verifies from there; a record's proof
// checks against its checkpoint.
func TestBackendContract(t *testing.T) {
	bk := testBank(t)
	for _, kind := range backendKinds {
		t.Run(kind.name, func(t *testing.T) {
			b, reopen := kind.open(t)
			l, err := Open(b, "node-a", bk.signer, bk.tsa, WithSegmentRecords(20))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			for g := range 4 {
				go func() {
					defer func() { done <- struct{}{} }()
					for i := range 10 {
						if err := l.Append(context.Background(), outboundRecord(g*100+i)); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			for range 4 {
				<-done
			}
			if _, err := l.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			if rep, err := Verify(b, bk.trust); err != nil || rep.Problem != nil || rep.Records != 40 || rep.Verified != 40 {
				t.Fatalf("verify: %+v (%v) %v", rep, rep.Problem, err)
			}

			b2 := reopen(t)
			l2, err := Open(b2, "node-a", bk.signer, bk.tsa, WithSegmentRecords(20))
			if err != nil {
				t.Fatal(err)
			}
			if l2.Size() != 40 {
				t.Fatalf("reopened at %d", l2.Size())
			}
			fail := &failingBackend{Backend: b2, fail: true}
			lf, err := Open(fail, "node-a", bk.signer, bk.tsa)
			if err != nil {
				t.Fatal(err)
			}
			lf.log = discardLogger()
			if err := lf.Append(context.Background(), outboundRecord(999)); err == nil {
				t.Fatal("an append succeeded while writes fail")
			}
			fill(t, l2, 25, 0) // checkpoint at 40 rotated; the next begins at 65
			if _, err := l2.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			fill(t, l2, 5, 0)
			if _, err := l2.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			segs, err := b2.Segments()
			if err != nil || len(segs) < 3 {
				t.Fatalf("segments %+v %v; want new ones at the checkpoints after 20 records", segs, err)
			}
			p, err := Prove(b2, 7)
			if err != nil {
				t.Fatal(err)
			}
			var path []Hash
			for _, s := range p.Steps {
				path = append(path, s.Sibling)
			}
			if err := VerifyInclusion(LeafHash(p.Record), 7, p.Head.Size, path, p.Head.Root); err != nil {
				t.Fatalf("proof of record 7: %v", err)
			}
			if err := b2.Prune(segs[0]); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(b2, bk.trust)
			if err != nil || rep.Problem != nil || rep.From != segs[1].First || rep.From+rep.Records != 70 {
				t.Fatalf("after pruning %+v: %+v (%v) %v", segs[0], rep, rep.Problem, err)
			}
			if err := b2.Prune(segs[len(segs)-1]); err == nil {
				t.Error("the last segment was pruned")
			}
			// Retention: everything checkpointed before now goes, but the segment being written.
			pr, err := Prune(b2, time.Now().Add(time.Hour))
			if err != nil || pr.From != segs[len(segs)-1].First || pr.Segments != len(segs)-2 {
				t.Fatalf("retention prune of %+v: %+v %v", segs, pr, err)
			}
			if rep, err := Verify(b2, bk.trust); err != nil || rep.Problem != nil || rep.From != pr.From || rep.From+rep.Records != 70 {
				t.Fatalf("after the retention prune: %+v (%v) %v", rep, rep.Problem, err)
			}
			// A renewal of the newest checkpoint is kept by the backend and verified after a reopen.
			if r, err := l2.Renew(context.Background()); err != nil || r.Head.Size != 70 {
				t.Fatalf("renew: %+v %v", r, err)
			}
			l3, err := Open(reopen(t), "node-a", bk.signer, bk.tsa)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l3.Renew(context.Background()); err != nil {
				t.Fatalf("renew after a reopen (over the renewal before): %v", err)
			}
			if rep, err := Verify(b2, bk.trust); err != nil || rep.Problem != nil || rep.Renewals != 2 || rep.Renewed.Size != 70 {
				t.Fatalf("after renewals: %+v (%v) %v", rep, rep.Problem, err)
			}
		})
	}
}
