package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/store"
	"github.com/sealpost/sealpost/tsa"
)

// evidenceGather is how long the first of the appenders waits for others before the evidence log
// writes (adds at most that to a message's 250). Measured with sealpost bench (3,000 messages, 16
// clients): 0 → 0.64 writes a message, 2 ms → 0.47, 5 ms → 0.37, 10 ms → 0.33; a write with its
// sync costs about 0.1 ms of CPU here.
const evidenceGather = 5 * time.Millisecond

// outcomeGather is how long the outcome recorder gathers outcomes into one append.
const outcomeGather = 100 * time.Millisecond

// evidenceIndexInterval is how often the console's index by address takes in what the log appended.
const evidenceIndexInterval = time.Second

// evidenceDir is where the evidence log lives in the data directory.
func evidenceDir(data string) string { return filepath.Join(data, "evidence") }

// openEvidence opens this node's evidence log when the evidence section enables it (nil when
// not): signed with the bank's signer, timestamped by the TSA the protectors use.
func (a *assembly) openEvidence(ts tsa.Timestamper) error {
	c := a.cfg.Evidence
	if !c.Enabled {
		return nil
	}
	node, err := evidenceNode(c, a.cfg.Data, true)
	if err != nil {
		return err
	}
	var b evidence.Backend
	if cs, ok := a.data.store.(evidence.ChainStore); ok && a.cfg.Store.Postgres != nil {
		// Several nodes: each one's chain in the shared PostgreSQL, under its node name.
		sb, err := evidence.OpenStoreBackend(cs, node)
		if err != nil {
			return err
		}
		b = sb
	} else {
		fb, err := evidence.OpenFileBackend(evidenceDir(a.cfg.Data))
		if err != nil {
			return err
		}
		if fb.Dropped > 0 {
			a.log.Warn("evidence: a record torn by a crash was removed (its message never got a 250)", "bytes", fb.Dropped)
		}
		b = fb
	}
	opts := []evidence.Option{evidence.WithLogger(a.log), evidence.WithObserver(a.m),
		evidence.WithCheckpointRecords(c.CheckpointRecords), evidence.WithSegmentRecords(c.SegmentRecords),
		evidence.WithRetention(time.Duration(c.Retention)), evidence.WithGather(evidenceGather)}
	if a.cfg.Console.Enabled {
		// The console finds a customer's records through the store's index, kept off the mail's path.
		a.evidenceIndex = evidence.NewIndexer(b, a.data.store, node, describeRecord, a.log)
		opts = append(opts, evidence.WithAppended(a.evidenceIndex.Appended))
	}
	l, err := evidence.Open(b, node, a.data.signer, ts, opts...)
	if err != nil {
		b.Close()
		return err
	}
	a.evidence, a.evidenceFiles, a.outcomes = l, b, newOutcomeRecorder(l, a.log)
	a.onFailure(func() { a.outcomes.Close(); b.Close() })
	return nil
}

// evidenceNode is the name of this node's chain: evidence.node, else the name kept in
// DATA/evidence-node, made at the first start from the host name and a random suffix (so that two
// nodes on one host, or two hosts of one name, never share a chain in PostgreSQL). create false
// (the readers) makes nothing.
func evidenceNode(c evidence.Config, data string, create bool) (string, error) {
	if c.Node != "" {
		return c.Node, nil
	}
	path := filepath.Join(data, "evidence-node")
	if b, err := os.ReadFile(path); err == nil {
		if name := strings.TrimSpace(string(b)); name != "" {
			return name, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("evidence: %w", err)
	}
	if !create {
		return "", fmt.Errorf("evidence: %s names no node: this data directory has kept no evidence log in the store", path)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "sealpost"
	}
	if len(host) > 40 {
		host = host[:40]
	}
	var suffix [3]byte
	rand.Read(suffix[:])
	name := fmt.Sprintf("%s-%x", strings.Map(func(r rune) rune {
		if r <= ' ' || r == '/' || r == '\\' {
			return '-'
		}
		return r
	}, host), suffix)
	if err := keys.WriteFileAtomic(path, []byte(name+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("evidence: %w", err)
	}
	return name, nil
}

// outcomeRecorder appends delivery outcomes to the evidence log from its own goroutine, in
// batches: a delivery worker hands an outcome over and goes on, instead of waiting for a sync of
// its own (measured: waiting cost the relay 15% of its messages/s), and the outcomes of
// outcomeGather share one write (measured: without it, each outcome took a sync of the log of
// its own under load, 1.16 writes a message with the outbound records). An outcome is durable at
// most outcomeGather and a sync later; Close writes what is still waiting.
type outcomeRecorder struct {
	l     *evidence.Log
	log   *slog.Logger
	ch    chan *evidence.Record
	done  chan struct{}
	close sync.Once
}

func newOutcomeRecorder(l *evidence.Log, log *slog.Logger) *outcomeRecorder {
	r := &outcomeRecorder{l: l, log: log, ch: make(chan *evidence.Record, 4096), done: make(chan struct{})}
	go r.run()
	return r
}

// record is the queue's WithOutcomes function.
func (r *outcomeRecorder) record(o queue.Outcome) {
	reply := o.Text
	if o.Enhanced != "" {
		reply = o.Enhanced + " " + reply
	}
	r.ch <- &evidence.Record{Time: o.Time, Kind: evidence.KindDelivery, Delivery: &evidence.Delivery{
		QueueID: o.ID, Recipient: o.Recipient, Outcome: o.Result, NextHop: o.Host, Code: o.Code, Reply: reply}}
}

func (r *outcomeRecorder) run() {
	defer close(r.done)
	for rec := range r.ch {
		batch := []*evidence.Record{rec}
		gather := time.NewTimer(outcomeGather)
	more:
		for len(batch) < 1024 {
			select {
			case next, ok := <-r.ch:
				if !ok {
					break more
				}
				batch = append(batch, next)
			case <-gather.C:
				break more
			}
		}
		gather.Stop()
		if err := r.l.Append(context.Background(), batch...); err != nil {
			r.log.Error("evidence: cannot record delivery outcomes", "outcomes", len(batch), "err", err.Error())
		}
	}
}

// Close writes the outcomes still waiting; the spool's workers must have stopped.
func (r *outcomeRecorder) Close() {
	r.close.Do(func() { close(r.ch) })
	<-r.done
}

// evidenceActions records the API's changes to customers' keys and certificates
// (api.ActionRecorder).
type evidenceActions struct{ l *evidence.Log }

func (e evidenceActions) RecordAction(ctx context.Context, actor, action, subject, detail string) error {
	return e.l.Append(ctx, &evidence.Record{Kind: evidence.KindAction, Action: &evidence.Action{Actor: actor, Action: action, Subject: subject, Detail: detail}})
}

// closeEvidence makes a last checkpoint (so the records of the final minutes are signed) and
// closes the log.
func (i *instance) closeEvidence() error {
	if i.evidence == nil {
		return nil
	}
	defer func() { i.evidence = nil }() // Close may be called again
	i.outcomes.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := i.evidence.Checkpoint(ctx); err != nil {
		i.log.Warn("evidence: no checkpoint at shutdown; the next start makes one", "err", err.Error())
	}
	if err := i.evidenceFiles.Close(); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	return nil
}

// evidenceNodeFlag is the -node flag of the commands that read the log.
func evidenceNodeFlag(fs *flag.FlagSet) *string {
	return fs.String("node", "", "with PostgreSQL: the node whose chain to read (default: this data directory's)")
}

// openEvidenceToReadNode opens node's chain ("": this data directory's node) to read, with what
// its checkpoints are checked against: the trusted roots and the chains of the bank's signer and
// TSA (an external TSA's roots as tsa.roots_file configures them too). The file log holds one
// node's chain: node must be that one.
func openEvidenceToReadNode(configFile, data, node string) (evidence.Backend, evidence.Trust, error) {
	cfg, err := loadConfig(configFile, data)
	if err != nil {
		return nil, evidence.Trust{}, err
	}
	dir, err := existingDataDir(cfg.Data)
	if err != nil {
		return nil, evidence.Trust{}, err
	}
	roots, err := bankRoots(dir)
	if err != nil {
		return nil, evidence.Trust{}, err
	}
	trust := evidence.Trust{Roots: roots, TSARoots: roots}
	if cfg.Store.Postgres != nil {
		st, err := openStore(cfg.Data, cfg.Store)
		if err != nil {
			return nil, evidence.Trust{}, err
		}
		cs, ok := st.(evidence.ChainStore)
		if !ok {
			st.Close()
			return nil, evidence.Trust{}, errors.New("evidence: the store keeps no evidence chains")
		}
		if node == "" {
			if node, err = evidenceNode(cfg.Evidence, string(dir), false); err != nil {
				st.Close()
				return nil, evidence.Trust{}, err
			}
		}
		b, err := evidence.OpenStoreBackend(cs, node)
		if err != nil {
			st.Close()
			return nil, evidence.Trust{}, err
		}
		return closingBackend{b, st}, trust, nil
	}
	if node != "" {
		if own, err := evidenceNode(cfg.Evidence, string(dir), false); err == nil && own != node {
			return nil, evidence.Trust{}, fmt.Errorf("evidence: the log in %s is node %s's, not %s's (another node's chain is in PostgreSQL only)", dir, own, gateway.Printable(node))
		}
	}
	fb, err := evidence.OpenFileBackendReadOnly(evidenceDir(string(dir)))
	if err != nil {
		return nil, evidence.Trust{}, err
	}
	return fb, trust, nil
}

// closingBackend closes the store its chain is in with it.
type closingBackend struct {
	evidence.Backend
	st io.Closer
}

func (c closingBackend) Close() error { return errors.Join(c.Backend.Close(), c.st.Close()) }

func cmdEvidenceVerify(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("evidence verify", stdout)
	configFile, data := configFlags(fs)
	node := evidenceNodeFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: evidence verify takes no arguments", errUsage)
	}
	fb, trust, err := openEvidenceToReadNode(*configFile, *data, *node)
	if err != nil {
		return err
	}
	defer fb.Close()
	rep, err := evidence.Verify(fb, trust)
	if err != nil {
		return err
	}
	if rep.Problem != nil {
		return fmt.Errorf("evidence log: %w (records before it verified: %d)", rep.Problem, rep.Records)
	}
	fmt.Fprintf(stdout, "evidence log: %d records", rep.Records)
	if rep.From > 0 {
		fmt.Fprintf(stdout, " (from record %d; the segments before it were pruned)", rep.From)
	}
	fmt.Fprintf(stdout, ", %d checkpoints verified (signature and timestamp)", rep.Checkpoints)
	if rep.Checkpoints > 0 {
		fmt.Fprintf(stdout, "; the newest, %s, covers %d records", rep.Newest.UTC().Format(time.RFC3339), rep.Verified)
	}
	if after := rep.From + rep.Records - rep.Verified; after > 0 {
		fmt.Fprintf(stdout, "; %d after it are chained, not yet checkpointed", after)
	}
	if rep.Renewals > 0 {
		fmt.Fprintf(stdout, "; %d renewals verified, the newest of the checkpoint of %d records at %s", rep.Renewals, rep.Renewed.Size, rep.RenewedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(stdout)
	if rep.Expired > 0 {
		fmt.Fprintf(stdout, "warning: %d checkpoints were timestamped by a TSA certificate that has expired; %d of them no renewal made before that covers (renew before a TSA certificate ages out: sealpost evidence renew)\n", rep.Expired, rep.Unrenewed)
	}
	return nil
}

// scanRecords calls fn with every record of the log, decoded.
func scanRecords(fb evidence.Backend, fn func(*evidence.Record)) error {
	return fb.Scan(0, func(pos evidence.Position, _ uint64, line []byte) error {
		r, err := evidence.Decode(line)
		if err != nil {
			return fmt.Errorf("%s: %w (run sealpost evidence verify)", pos, err)
		}
		fn(r)
		return nil
	})
}

func cmdEvidenceShow(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("evidence show", stdout)
	configFile, data := configFlags(fs)
	node := evidenceNodeFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: evidence show QUEUE-ID|SEQ", errUsage)
	}
	want := fs.Arg(0)
	fb, _, err := openEvidenceToReadNode(*configFile, *data, *node)
	if err != nil {
		return err
	}
	defer fb.Close()
	found := 0
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	err = scanRecords(fb, func(r *evidence.Record) {
		if fmt.Sprint(r.Seq) == want || r.QueueID() == want {
			found++
			enc.Encode(r)
		}
	})
	if err != nil {
		return err
	}
	if found == 0 {
		return fmt.Errorf("evidence: no record for %s", gateway.Printable(want))
	}
	return nil
}

func cmdEvidenceFind(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("evidence find", stdout)
	configFile, data := configFlags(fs)
	node := evidenceNodeFlag(fs)
	to := fs.String("to", "", "the customer's address")
	subject := fs.String("subject", "", "a queue id, held message id or customer address an action or record is about")
	since := fs.String("since", "", "from this day (2006-01-02) or time (RFC 3339) on")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || (*to == "" && *subject == "") {
		return fmt.Errorf("%w: evidence find -to ADDR|-subject ID [-since DATE]", errUsage)
	}
	var addr string
	var err error
	if *to != "" {
		if addr, err = address.Normalize(*to); err != nil {
			return fmt.Errorf("-to: %w", err)
		}
	}
	var from time.Time
	if *since != "" {
		if from, err = time.Parse(time.RFC3339, *since); err != nil {
			if from, err = time.Parse(time.DateOnly, *since); err != nil {
				return fmt.Errorf("%w: -since %s is neither 2006-01-02 nor RFC 3339", errUsage, gateway.Printable(*since))
			}
		}
	}
	fb, _, err := openEvidenceToReadNode(*configFile, *data, *node)
	if err != nil {
		return err
	}
	defer fb.Close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tQUEUE ID\tWHAT")
	n := 0
	err = scanRecords(fb, func(r *evidence.Record) {
		if r.Time.Before(from) ||
			(addr != "" && !slices.ContainsFunc(r.Addresses(), func(a string) bool { return address.Same(a, addr) })) ||
			(*subject != "" && !recordAbout(r, *subject)) {
			return
		}
		n++
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.UTC().Format(time.RFC3339), r.Kind, r.QueueID(), describeRecord(r))
	})
	if err != nil {
		return err
	}
	tw.Flush()
	if n == 0 {
		fmt.Fprintf(stdout, "no records for %s\n", gateway.Printable(strings.TrimSpace(addr+" "+*subject)))
	}
	return nil
}

// describeRecord is a record's gist on one line.
func describeRecord(r *evidence.Record) string {
	switch {
	case r.Outbound != nil:
		return fmt.Sprintf("%s %s from %s, sha256 %s", r.Outbound.Class, r.Outbound.Method, r.Outbound.From, r.Outbound.SentSHA256[:16])
	case r.Delivery != nil:
		s := r.Delivery.Outcome
		if r.Delivery.Code != 0 {
			s += fmt.Sprintf(" %d", r.Delivery.Code)
		}
		if r.Delivery.Reply != "" {
			s += " " + gateway.Printable(r.Delivery.Reply)
		}
		if r.Delivery.NextHop != "" {
			s += " (" + gateway.Printable(r.Delivery.NextHop) + ")"
		}
		return s
	case r.Inbound != nil:
		return "reply " + r.Inbound.Verdict
	case r.Action != nil:
		s := r.Action.Action + " " + gateway.Printable(r.Action.Subject) + " by " + gateway.Printable(r.Action.Actor)
		if r.Action.Reason != "" {
			s += ": " + gateway.Printable(r.Action.Reason)
		}
		return s
	}
	return ""
}

// recordAbout reports whether r is about subject: its queue id, or an action's subject.
func recordAbout(r *evidence.Record, subject string) bool {
	if r.QueueID() == subject {
		return true
	}
	return r.Action != nil && (r.Action.Subject == subject || address.Same(r.Action.Subject, subject))
}

func cmdEvidenceProve(args []string, stdin io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("evidence prove", stdout)
	configFile, data := configFlags(fs)
	node := evidenceNodeFlag(fs)
	out := fs.String("out", "", "also write the bundle a third party verifies with openssl (as evidence export) to this directory")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: evidence prove FILE.eml|-", errUsage)
	}
	msg, err := readMessage(fs.Arg(0), stdin)
	if err != nil {
		return err
	}
	fb, trust, err := openEvidenceToReadNode(*configFile, *data, *node)
	if err != nil {
		return err
	}
	defer fb.Close()
	seq, sent, err := evidence.FindSent(fb, msg)
	if err != nil {
		return err
	}
	p, err := evidence.Prove(fb, seq)
	if err != nil {
		return fmt.Errorf("record %d: %w", seq, err)
	}
	if _, err := evidence.CheckCheckpoint(p.Checkpoint, trust); err != nil {
		return fmt.Errorf("the checkpoint covering record %d: %w", seq, err)
	}
	r, err := evidence.Decode(p.Record)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "record %d: %s %s to %s, queued as %s at %s; sha256 of the bytes sent %s\n", p.Seq, r.Outbound.Class, r.Outbound.Method,
		strings.Join(r.Outbound.To, ", "), r.Outbound.QueueID, r.Time.UTC().Format(time.RFC3339), r.Outbound.SentSHA256)
	fmt.Fprintf(stdout, "checkpoint: %d records of node %s, root %s, signed and timestamped %s\n", p.Head.Size, p.Head.Node, p.Head.Root, p.Head.Time.UTC().Format(time.RFC3339))
	fmt.Fprintf(stdout, "inclusion proof (%d steps, leaf to root):\n", len(p.Steps))
	for i, s := range p.Steps {
		side := "right"
		if s.Left {
			side = "left"
		}
		fmt.Fprintf(stdout, "  %2d %-5s %s\n", i+1, side, s.Sibling)
	}
	fmt.Fprintln(stdout, "verified: the record is in the log the checkpoint signed")
	if *out != "" {
		return writeBundle(*configFile, *data, *out, p, sent, stdout)
	}
	return nil
}

func cmdEvidenceExport(args []string, stdin io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("evidence export", stdout)
	configFile, data := configFlags(fs)
	node := evidenceNodeFlag(fs)
	out := fs.String("out", "", "the directory to write the bundle to (required)")
	message := fs.String("message", "", "the message as the customer received it, to include (checked against the record)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *out == "" {
		return fmt.Errorf("%w: evidence export QUEUE-ID|SEQ -out DIR [-message FILE.eml]", errUsage)
	}
	fb, trust, err := openEvidenceToReadNode(*configFile, *data, *node)
	if err != nil {
		return err
	}
	defer fb.Close()
	want, seq, found := fs.Arg(0), uint64(0), false
	err = scanRecords(fb, func(r *evidence.Record) {
		if !found && (fmt.Sprint(r.Seq) == want || (r.Outbound != nil && r.Outbound.QueueID == want)) {
			seq, found = r.Seq, true
		}
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("evidence: no record for %s", gateway.Printable(want))
	}
	var sent []byte
	if *message != "" {
		msg, err := readMessage(*message, stdin)
		if err != nil {
			return err
		}
		got, b, err := evidence.FindSent(fb, msg)
		if err != nil || got != seq {
			return fmt.Errorf("-message: not the message of record %d", seq)
		}
		sent = b
	}
	p, err := evidence.Prove(fb, seq)
	if err != nil {
		return fmt.Errorf("record %d: %w", seq, err)
	}
	if _, err := evidence.CheckCheckpoint(p.Checkpoint, trust); err != nil {
		return fmt.Errorf("the checkpoint covering record %d: %w", seq, err)
	}
	return writeBundle(*configFile, *data, *out, p, sent, stdout)
}

// writeBundle writes p's bundle to dir with the data directory's roots and the TSA's chain.
func writeBundle(configFile, data, dir string, p evidence.Proof, sent []byte, stdout io.Writer) error {
	cfg, err := loadConfig(configFile, data)
	if err != nil {
		return err
	}
	dd := keys.DataDir(cfg.Data)
	roots, err := dd.Roots()
	if err != nil {
		return err
	}
	var chain []*x509.Certificate
	for _, role := range []string{"tsa", "signer"} {
		if pemChain, err := dd.ChainPEM(role); err == nil {
			certs, err := keys.ParseCertificates(pemChain)
			if err != nil {
				return fmt.Errorf("%s chain: %w", role, err)
			}
			if len(certs) > 0 {
				roots = append(roots, certs[len(certs)-1])
			}
			chain = append(chain, certs...)
		}
	}
	if err := evidence.WriteBundle(dir, p, roots, chain, sent); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote the evidence bundle of record %d to %s: check it with  cd %s && sh verify.sh  (openssl and sha256sum only; README.txt says what each file is)\n", p.Seq, dir, dir)
	return nil
}

// decisionOutbox is where operators' decisions on held mail, and their requests to renew a
// chain's checkpoint, queue their evidence records for the running gateway to append
// (store.EvidenceOutboxTake).
type decisionOutbox interface {
	EvidenceOutboxTake(ctx context.Context, node string, limit int, fn func(lines [][]byte) error) (int, error)
	QueueEvidence(ctx context.Context, node string, line []byte) error
}

// decisionsInterval is how often serve appends queued decisions when no change is announced.
const decisionsInterval = 5 * time.Second

// recordDecisions appends the decisions queued in the store's outbox to this node's evidence log
// (at once when the store announces a change to held mail, else every decisionsInterval) until
// ctx ends, and once more then.
func (i *instance) recordDecisions(ctx context.Context) {
	box, ok := i.data.store.(decisionOutbox)
	if !ok {
		return
	}
	t := time.NewTicker(decisionsInterval)
	defer t.Stop()
	for {
		if err := appendDecisions(context.WithoutCancel(ctx), box, i.evidence); err != nil {
			i.log.Warn("evidence: operators' decisions not recorded yet; tried again", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-i.decided:
		}
	}
}

// The actions of evidence renew: the operator's request (queued for one node's gateway) and the
// gateway's record of the renewal it made.
const (
	actionRenewRequested = "evidence-renew-requested"
	actionRenewed        = "evidence-renewed"
)

// appendDecisions moves every record queued for this node (or any) into l, a batch at a time; a
// record that is not an action is refused (and left queued: the log shows why). A request to
// renew is carried out first, and recorded with its outcome; while the TSA cannot renew, the
// batch waits for the next try.
func appendDecisions(ctx context.Context, box decisionOutbox, l *evidence.Log) error {
	for {
		n, err := box.EvidenceOutboxTake(ctx, l.Node(), 256, func(lines [][]byte) error {
			recs := make([]*evidence.Record, 0, len(lines))
			for _, line := range lines {
				var r evidence.Record
				if err := json.Unmarshal(line, &r); err != nil || r.Kind != evidence.KindAction || r.Action == nil {
					return fmt.Errorf("a queued decision record is not an action: %.80q", line)
				}
				recs = append(recs, &r)
				if r.Action.Action == actionRenewRequested {
					done, err := renewRecord(ctx, l, r.Action.Actor)
					if err != nil {
						return err
					}
					recs = append(recs, done)
				}
			}
			return l.Append(ctx, recs...)
		})
		if err != nil || n < 256 {
			return err
		}
	}
}

// renewRecord renews l's newest checkpoint and gives the record of it.
func renewRecord(ctx context.Context, l *evidence.Log, by string) (*evidence.Record, error) {
	r, err := l.Renew(ctx)
	detail := ""
	switch {
	case errors.Is(err, evidence.ErrNothingToRenew):
		detail = "no checkpoint to renew yet"
	case err != nil:
		return nil, fmt.Errorf("renew the newest checkpoint: %w", err)
	default:
		detail = fmt.Sprintf("the checkpoint of %d records made %s timestamped again at %s", r.Head.Size,
			r.Head.Time.UTC().Format(time.RFC3339), r.Time.UTC().Format(time.RFC3339))
	}
	return &evidence.Record{Kind: evidence.KindAction, Action: &evidence.Action{Actor: "sealpost", Action: actionRenewed,
		Subject: l.Node(), Reason: "requested by " + by, Detail: detail}}, nil
}

// evidenceRenewWait is how long evidence renew waits, by default, for the gateway's renewal.
const evidenceRenewWait = 30 * time.Second

// cmdEvidenceRenew asks a node's running gateway to timestamp its chain's newest checkpoint again
// with the TSA of the day, and waits for the renewal.
func cmdEvidenceRenew(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("evidence renew", stdout)
	configFile, data := configFlags(fs)
	nodeFlag := fs.String("node", "", "the node whose chain to renew (default: this data directory's)")
	by := fs.String("by", cliActor(), "who asks (recorded in the evidence log)")
	why := fs.String("reason", "", "why (recorded in the evidence log), e.g. the TSA certificate's expiry")
	wait := fs.Duration("wait", evidenceRenewWait, "how long to wait for the gateway's renewal (0: do not wait)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *wait < 0 {
		return fmt.Errorf("%w: evidence renew [-node NAME] [-by NAME] [-reason TEXT] [-wait DURATION]", errUsage)
	}
	cfg, err := loadConfig(*configFile, *data)
	if err != nil {
		return err
	}
	if !cfg.Evidence.Enabled {
		return errors.New("the evidence log is off (evidence.enabled)")
	}
	dir, err := existingDataDir(cfg.Data)
	if err != nil {
		return err
	}
	node := *nodeFlag
	if node == "" {
		if node, err = evidenceNode(cfg.Evidence, string(dir), false); err != nil {
			return err
		}
	}
	st, err := openStore(cfg.Data, cfg.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	box, ok := st.(interface {
		QueueEvidence(ctx context.Context, node string, line []byte) error
	})
	if !ok {
		return errors.New("the store keeps no evidence outbox")
	}
	at := time.Now()
	rec, err := json.Marshal(&evidence.Record{Time: at.UTC(), Kind: evidence.KindAction, Action: &evidence.Action{
		Actor: printableLine(*by), Action: actionRenewRequested, Subject: node, Reason: printableLine(*why)}})
	if err != nil {
		return err
	}
	if err := box.QueueEvidence(context.Background(), node, rec); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	deadline := at.Add(*wait)
	for {
		r, found, err := renewalSince(*configFile, *data, node, at)
		if err != nil {
			return err
		}
		if found {
			fmt.Fprintf(stdout, "renewed: %s's checkpoint of %d records (made %s) timestamped again at %s; evidence verify checks the renewal, and a bundle of that checkpoint carries it\n",
				node, r.size, r.made.UTC().Format(time.RFC3339), r.at.UTC().Format(time.RFC3339))
			return nil
		}
		if !time.Now().Before(deadline) {
			fmt.Fprintf(stdout, "queued: the gateway of node %s renews its newest checkpoint when it runs (no renewal within %s: is sealpost serve running there?)\n", node, *wait)
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// renewalSeen is a renewal found in a chain's checkpoints.
type renewalSeen struct {
	size     uint64
	made, at time.Time
}

// renewalSince looks in node's chain for a renewal whose token is not older than since (to the
// second, a token's precision).
func renewalSince(configFile, data, node string, since time.Time) (renewalSeen, bool, error) {
	b, _, err := openEvidenceToReadNode(configFile, data, node)
	if err != nil {
		return renewalSeen{}, false, err
	}
	defer b.Close()
	var seen renewalSeen
	var found bool
	err = b.Checkpoints(func(line []byte) error {
		var cp evidence.Checkpoint
		if json.Unmarshal(line, &cp) != nil || !cp.Renewal || cp.TokenTime.Before(since.Truncate(time.Second)) {
			return nil
		}
		if h, err := evidence.ParseHead(cp.Text); err == nil {
			seen, found = renewalSeen{size: h.Size, made: h.Time, at: cp.TokenTime}, true
		}
		return nil
	})
	return seen, found, err
}
