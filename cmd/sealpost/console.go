package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/api"
	"github.com/sealpost/sealpost/config"
	"github.com/sealpost/sealpost/console"
	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/store"
)

// startConsole starts the web console when it is enabled; nil when not. It works on the
// quarantine, so it needs the inbound side.
func (a *assembly) startConsole(in *inboundListener, outbound *queue.Spool) (*console.Server, error) {
	if !a.cfg.Console.Enabled {
		return nil, nil
	}
	if in == nil {
		return nil, errors.New("console: needs the inbound side (inbound.enabled), whose quarantine it shows")
	}
	key, err := a.data.dir.ConsoleKey()
	if err != nil {
		return nil, fmt.Errorf("console key: %w", err)
	}
	node, _ := os.Hostname()
	read := func(ctx context.Context, h store.Held) ([]byte, error) {
		_, m, err := in.held.Get(ctx, h.ID)
		if err != nil || m == nil {
			return nil, err
		}
		res, err := in.pipeline.Evaluate(ctx, m.Data, h.Received)
		if err != nil {
			return nil, err
		}
		return res.Message, nil
	}
	customers := consoleCustomers{dir: a.data.dir, st: a.data.store, ev: a.evidenceFiles, index: a.evidenceIndex, evidence: a.evidence != nil, outbound: outbound}
	srv, err := console.New(a.cfg.Console, console.Deps{Accounts: a.data.store, Key: key, Held: in.held, Read: read, Audit: a.data.store,
		Evidence: a.evidence != nil, Outbox: a.data.store, Node: node, Log: a.log, Customers: customers, Metrics: a.m.Snapshot,
		Queues: map[string]console.Queue{"outbound": outbound, "desk": in.desk}, Tokens: a.data.store})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, config.Prefix("console", err)
	}
	a.onFailure(func() { srv.Close() })
	return srv, nil
}

// consoleCustomers is the console's view of customers: their keys from the recipient directory
// (registered, learned, discovered), and what was sent to them and what became of it from the
// evidence log.
type consoleCustomers struct {
	dir      keys.DataDir
	st       backend
	ev       evidence.Backend  // nil: the evidence log is off
	index    *evidence.Indexer // the store's index of ev by address (nil when ev is)
	evidence bool
	outbound *queue.Spool // without the evidence log, what still waits for the customer there
}

// maxCustomerRecords bounds the records the customers page shows.
const maxCustomerRecords = 50

func (c consoleCustomers) Customer(ctx context.Context, q string) (console.Customer, error) {
	addr, err := address.Normalize(q)
	if err != nil {
		return console.Customer{}, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	out := console.Customer{Address: addr}
	if out.Threads, err = c.st.CustomerThreads(ctx, addr, 20); err != nil {
		return console.Customer{}, err
	}
	rows, err := keyRows(ctx, c.dir, c.st)
	if err != nil {
		return console.Customer{}, err
	}
	for _, r := range rows {
		if slices.ContainsFunc(r.addresses, func(a string) bool { return address.Same(a, addr) }) {
			out.Keys = append(out.Keys, r.KeyRow)
		}
	}
	if c.ev == nil {
		return c.queued(out, addr)
	}
	out.From = "the evidence log"
	entries, err := c.st.EvidenceAbout(ctx, addr, maxCustomerRecords)
	if err != nil {
		return console.Customer{}, err
	}
	for _, e := range entries {
		out.Messages = append(out.Messages, console.MessageRow{Time: e.Time, QueueID: e.QueueID, Kind: e.Kind, What: e.Summary})
	}
	if c.index != nil {
		if behind := c.ev.Size() - min(c.ev.Size(), c.index.Indexed()); behind > 0 {
			records := map[bool]string{true: "record", false: "records"}[behind == 1]
			out.Note = fmt.Sprintf("The index of this node's evidence log is %d %s behind it (it catches up in the background): the newest records may be missing.", behind, records)
		}
	}
	return out, nil
}

// queued adds what waits in the outbound queue for addr, newest first: without the evidence log
// that is all there is to tell.
func (c consoleCustomers) queued(out console.Customer, addr string) (console.Customer, error) {
	if c.outbound == nil {
		return out, nil
	}
	infos, err := c.outbound.List()
	if err != nil {
		return console.Customer{}, err
	}
	out.From = "the outbound queue"
	slices.SortFunc(infos, func(a, b queue.Info) int { return b.Created.Compare(a.Created) })
	for _, in := range infos {
		for _, r := range in.Recipients {
			if !address.Same(r.Address, addr) {
				continue
			}
			what := fmt.Sprintf("%s, %s after %d attempts", in.Class, r.Status, r.Attempts)
			if r.LastError != "" {
				what += ": " + r.LastError
			}
			out.Messages = append(out.Messages, console.MessageRow{Time: in.Created, QueueID: in.ID, Kind: "queued", What: what})
		}
		if len(out.Messages) == maxCustomerRecords {
			break
		}
	}
	return out, nil
}

func (c consoleCustomers) RemoveKey(ctx context.Context, q, fp, by, why string) error {
	addr, err := address.Normalize(q)
	if err != nil {
		return fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	d, err := recipientDirectory(ctx, c.dir, c.st)
	if err != nil {
		return err
	}
	regs, err := c.st.Registrations(ctx, addr)
	if err != nil {
		return err
	}
	found, order := api.AddressKeys(d.Entries(), regs, addr, fp)
	if len(order) != 1 {
		return fmt.Errorf("%s: %d keys match %s: %w", addr, len(order), fp, store.ErrNotFound)
	}
	if err := removeKey(ctx, c.st, c.dir, addr, order[0], found[order[0]], io.Discard); err != nil {
		return err
	}
	if !c.evidence {
		return nil
	}
	rec, err := json.Marshal(&evidence.Record{Time: time.Now().UTC(), Kind: evidence.KindAction, Action: &evidence.Action{
		Actor: by, Action: "key-removed", Subject: addr, Reason: why, Detail: order[0]}})
	if err != nil {
		return err
	}
	return c.st.QueueEvidence(ctx, "", rec)
}

// cmdConsoleUser adds, resets, disables and lists the console's accounts.
func cmdConsoleUser(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("console user", stdout)
	configFile, data := keysStoreFlags(fs)
	role := fs.String("role", "", "add: agent (quarantine, customers: read; release or delete held mail), operator (also queues and keys) or admin (also accounts)")
	if err := parse(fs, args); err != nil {
		return err
	}
	usage := fmt.Errorf("%w: console user add -role agent|operator|admin NAME | reset NAME | disable NAME | list", errUsage)
	sub, rest := fs.Arg(0), fs.Args()[min(1, fs.NArg()):]
	if (sub == "list" && len(rest) != 0) || (sub != "list" && len(rest) != 1) || (sub != "add" && *role != "") {
		return usage
	}
	st, err := apiStore(*configFile, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	if sub == "list" {
		return consoleUserList(ctx, st, stdout)
	}
	name := rest[0]
	if err := store.CheckConsoleName(name); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := consoleConfigOf(*configFile, *data)
	if err != nil {
		return err
	}
	dir, _, err := keysTarget(*configFile, *data)
	if err != nil {
		return err
	}
	now := time.Now()
	switch sub {
	case "add", "reset":
		if sub == "add" && *role == "" {
			return fmt.Errorf("%w: console user add needs -role agent|operator|admin", errUsage)
		}
		key, err := dir.ConsoleKey()
		if err != nil {
			return fmt.Errorf("console key: %w", err)
		}
		e, hash, sealed, err := console.NewEnrolment(name, cfg.Issuer, key)
		if err != nil {
			return err
		}
		if sub == "add" {
			err = st.PutConsoleAccount(ctx, store.ConsoleAccount{Name: name, Role: *role, Password: hash, TOTP: sealed, Created: now})
		} else {
			err = st.ResetConsoleAccount(ctx, name, hash, sealed, now)
		}
		switch {
		case errors.Is(err, store.ErrConflict):
			return fmt.Errorf("console account %s exists already (reset gives it new credentials)", name)
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("no console account %s (see sealpost console user list)", name)
		case errors.Is(err, store.ErrInvalid):
			return fmt.Errorf("%w: %v", errUsage, err)
		case err != nil:
			return err
		}
		if err := auditCLI(ctx, st, "console user "+sub, name+map[bool]string{true: " role " + *role, false: ""}[sub == "add"]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password: %s\ntotp secret: %s\ntotp url: %s\n", e.Password, e.Secret, e.URL)
		fmt.Fprintf(stderr, "%s console account %s: give the password and the TOTP secret (or the URL, as a QR code) to its user; they are shown only now (sealpost keeps the password's argon2id hash and the secret sealed with console.key)%s\n",
			map[bool]string{true: "added", false: "reset"}[sub == "add"], name, map[bool]string{true: "", false: "; its sessions have ended"}[sub == "add"])
		return nil
	case "disable":
		switch err := st.DisableConsoleAccount(ctx, name, now); {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("no console account %s (see sealpost console user list)", name)
		case err != nil:
			return err
		}
		if err := auditCLI(ctx, st, "console user disable", name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "disabled console account %s: it signs in no more and its sessions have ended (reset enables it again)\n", name)
		return nil
	}
	return usage
}

// consoleConfigOf is the console section of the configuration (the embedded default without one).
func consoleConfigOf(configFile, data string) (console.Config, error) {
	if configFile == "" {
		return console.DefaultConfig(), nil
	}
	cfg, err := loadConfig(configFile, data)
	return cfg.Console, err
}

func consoleUserList(ctx context.Context, st backend, stdout io.Writer) error {
	list, err := st.ConsoleAccounts(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tCREATED")
	for _, a := range list {
		state := "active"
		switch {
		case !a.Disabled.IsZero():
			state = "disabled " + a.Disabled.UTC().Format(time.RFC3339)
		case now.Before(a.LockedUntil):
			state = "locked until " + a.LockedUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.Role, state, a.Created.UTC().Format(time.RFC3339))
	}
	if len(list) == 0 {
		fmt.Fprintln(tw, strings.TrimSpace("(no accounts: sealpost console user add -role agent NAME)"))
	}
	return tw.Flush()
}
