package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/sealpost/sealpost/keys"
)

// benchNode is one gateway of a bench run: the instance, its store's calls counted, and the port
// of the sink it delivers to, so that the sink counts its deliveries apart.
type benchNode struct {
	inst     *instance     // nil when serve runs as its own process
	proc     *serveProcess // that process, or nil
	addr     string        // its SMTP listener
	counter  *countingStore
	sinkAddr string
}

// benchCluster is the gateways of one bench run: one, or several on one PostgreSQL database.
type benchCluster []benchNode

// benchInstance starts a gateway on a throw-away data directory delivering to sink, its store's
// calls counted; with opt.hsm, the bank's signer and TSA keys are moved into a throw-away SoftHSM2
// token first; with opt.postgres, the shared state is there.
func benchInstance(sink *sink, opt benchOptions, stderr io.Writer) (*instance, *countingStore, func(), error) {
	cluster, done, err := benchNodes(sink, opt, 1, stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	return cluster[0].inst, cluster[0].counter, done, nil
}

// benchNodes starts nodes gateways as benchInstance does one. With several, they are what
// README's "Running several nodes" describes: the first node's data directory (identities,
// customers, held.key) copied to each other node before any starts, each with its own spool and
// listener, all on the store of opt.postgres. Node 1 delivers to the sink's first port, every
// other node to a port of its own.
func benchNodes(sink *sink, opt benchOptions, nodes int, stderr io.Writer) (benchCluster, func(), error) {
	tmp, err := os.MkdirTemp("", "sealpost-bench-")
	if err != nil {
		return nil, nil, err
	}
	var cluster benchCluster
	done := func() {
		for _, n := range cluster {
			if n.proc != nil {
				n.proc.stop()
			} else {
				n.inst.Close()
			}
		}
		os.RemoveAll(tmp)
	}
	fail := func(err error) (benchCluster, func(), error) {
		done()
		return nil, nil, err
	}
	cfg, err := benchDataDir(tmp, opt, nodes > 1)
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for k := range nodes {
		node := benchNode{sinkAddr: sink.addr}
		c := cfg
		if k > 0 {
			c.Data = filepath.Join(tmp, fmt.Sprintf("node%d", k+1), "data")
			if err := copyDataDir(cfg.Data, c.Data); err != nil {
				return fail(fmt.Errorf("node %d: %w", k+1, err))
			}
			if node.sinkAddr, err = sink.listen(); err != nil {
				return fail(err)
			}
		}
		hop := *cfg.Delivery.Smarthost
		hop.Addr = node.sinkAddr
		c.Delivery.Smarthost = &hop
		if opt.process {
			// Its own process: its store calls are not counted.
			if node.proc, err = startServeProcess(c, tmp); err != nil {
				return fail(fmt.Errorf("node %d: %w", k+1, err))
			}
			node.addr = node.proc.addr
			cluster = append(cluster, node)
			continue
		}
		c.wrapStore = func(b backend) backend { node.counter = newCountingStore(b); return node.counter }
		c.resolvePaths()
		if err := c.Validate(); err != nil {
			return fail(err)
		}
		if node.inst, err = startInstance(context.Background(), c, log); err != nil {
			return fail(fmt.Errorf("node %d: %w", k+1, err))
		}
		node.addr = node.inst.Addr().String()
		cluster = append(cluster, node)
	}
	return cluster, done, nil
}

// benchDataDir makes the first node's data directory under tmp, with the bank's identities and
// the demo customers, and returns its configuration, paths not yet resolved (each node resolves
// its own); with opt.hsm, the signer and TSA keys are
// moved into a SoftHSM2 token; with heldKey, held.key is made now, so that copies of the directory
// share it.
func benchDataDir(tmp string, opt benchOptions, heldKey bool) (Config, error) {
	cfg := defaultConfig()
	cfg.Data, cfg.SMTP.Addr, cfg.Inbound.Enabled, cfg.Ops.Enabled = filepath.Join(tmp, "data"), "127.0.0.1:0", false, false
	cfg.API.Enabled = false
	hop := defaultSmarthost()
	hop.TLS = "none"
	cfg.Delivery.Smarthost = &hop
	cfg.Queue.Workers = 16
	cfg.Store.Postgres = opt.postgres
	cfg.Evidence.Enabled = !opt.noEvidence
	dir := keys.DataDir(cfg.Data)
	if err := dir.Init(cfg.Senders); err != nil {
		return cfg, err
	}
	alice, _, err := demoCustomers(dir)
	if err != nil {
		return cfg, err
	}
	if opt.otpCustomers > 0 {
		cfg.API.Enabled, cfg.API.Addr = true, "127.0.0.1:0"
		if err := benchOTPCustomers(dir, alice, opt.otpCustomers); err != nil {
			return cfg, fmt.Errorf("OTP customers: %w", err)
		}
	}
	if opt.hsm {
		if cfg.HSM.Signer, cfg.HSM.TSA, err = softHSMToken(filepath.Join(tmp, "hsm"), dir); err != nil {
			return cfg, fmt.Errorf("SoftHSM2: %w", err)
		}
	}
	if heldKey {
		if _, err := dir.HeldKey(); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// copyDataDir copies the data directory src, which no node has started on, to dst: directories
// and regular files with their modes (the keys stay 0600).
func copyDataDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(to, info.Mode().Perm())
		case info.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, info.Mode().Perm())
		default:
			return fmt.Errorf("copy %s: not a file or directory", path)
		}
	})
}

// snapshots are the nodes' store calls so far, by node.
func (c benchCluster) snapshots() []map[string]int {
	out := make([]map[string]int, len(c))
	for k, n := range c {
		if n.counter != nil {
			out[k] = n.counter.snapshot()
		}
	}
	return out
}

// storeOps is storeOps over every node: the calls since before, per message.
func (c benchCluster) storeOps(before []map[string]int, messages int) (float64, string) {
	sum := func(snaps []map[string]int) map[string]int {
		out := map[string]int{}
		for _, s := range snaps {
			for m, n := range s {
				out[m] += n
			}
		}
		return out
	}
	return storeOps(sum(before), sum(c.snapshots()), messages)
}

// evidenceWrites is the evidence logs' writes (each a sync) so far, over every node.
func (c benchCluster) evidenceWrites() uint64 {
	var n uint64
	for _, node := range c {
		if node.inst != nil && node.inst.evidence != nil {
			n += node.inst.evidence.Writes()
		}
	}
	return n
}

// deliveries are the messages that arrived so far on each node's port of the sink.
func (c benchCluster) deliveries(sink *sink) []int {
	out := make([]int, len(c))
	for k, n := range c {
		out[k] = sink.deliveredTo(n.sinkAddr)
	}
	return out
}

// checkDeliveries returns what each node delivered since base, once the sink has all m messages,
// and an error unless each node delivered the messages dealt to it (those i with i mod nodes = k).
func (c benchCluster) checkDeliveries(sink *sink, base []int, m int) ([]int, error) {
	got := c.deliveries(sink)
	for k := range got {
		got[k] -= base[k]
		if want := (m - k + len(c) - 1) / len(c); got[k] != want {
			return nil, fmt.Errorf("node %d accepted %d messages and delivered %d", k+1, want, got[k])
		}
	}
	return got, nil
}

// perNode says what each node delivered: "node 1: 1500, node 2: 1500".
func perNode(delivered []int) string {
	parts := make([]string, len(delivered))
	for k, d := range delivered {
		parts[k] = fmt.Sprintf("node %d: %d", k+1, d)
	}
	return strings.Join(parts, ", ")
}

// postgres runs the bench on PostgreSQL (a private server, or the database of dsnFile) and
// compares it with file, the SQLite run; with nodes above 1, it runs again with that many nodes
// on the same database and compares them with the one.
func (b *bench) postgres(dsnFile string, nodes int, file benchFigures) error {
	tmp, err := os.MkdirTemp("", "sealpost-bench-pg-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	pg, what, stop, err := benchPostgres(dsnFile, tmp)
	if err != nil {
		return err
	}
	defer stop()
	b.w("PostgreSQL store: %s, max_conns %d", what, pg.MaxConns)
	one, err := b.run("file keys, PostgreSQL store", benchOptions{postgres: pg}, 1)
	if err != nil {
		return err
	}
	b.w("PostgreSQL ÷ SQLite store: %.2f (target ≥ 0.90)", one.perSecond/file.perSecond)
	if nodes < 2 {
		return nil
	}
	many, err := b.run(fmt.Sprintf("file keys, PostgreSQL store, %d nodes", nodes), benchOptions{postgres: pg}, nodes)
	if err != nil {
		return err
	}
	b.w("%d nodes ÷ 1 node, PostgreSQL store: %.2f (%.0f vs %.0f messages/s delivered; %.2f vs %.2f store operations/message; latency p50 %v vs %v, p99 %v vs %v)",
		nodes, many.perSecond/one.perSecond, many.perSecond, one.perSecond, many.ops, one.ops, many.p50, one.p50, many.p99, one.p99)
	return nil
}
