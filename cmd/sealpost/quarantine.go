package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sealpost/sealpost/evidence"
	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/store"
)

// cmdQuarantine lists, shows, releases and deletes held inbound messages. Release marks the
// message released; the running gateway (serve) delivers it to the desk within seconds, with its
// verdict unchanged and a Sealpost-Released field, or at its next start. Delete removes it. Both
// take who decided (-by, default the user) and why (-reason, required): the decision is kept on
// the entry and its record queued, in the same transaction, for the gateway's evidence log.
func cmdQuarantine(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: sealpost quarantine list|show ID|release ID|delete ID [-data DIR]", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := newFlags("quarantine "+sub, stdout)
	configFile, data := configFlags(fs)
	all := fs.Bool("all", false, "list: include released and deleted messages")
	by := fs.String("by", cliActor(), "release, delete: who decides (recorded in the evidence log)")
	why := fs.String("reason", "", "release, delete: why (required; recorded in the evidence log)")
	if err := parse(fs, args); err != nil {
		return err
	}
	wantArgs := map[string]int{"list": 0, "show": 1, "release": 1, "delete": 1}
	n, ok := wantArgs[sub]
	if !ok {
		return fmt.Errorf("%w: unknown quarantine command %q (list, show, release, delete)", errUsage, sub)
	}
	if fs.NArg() != n {
		return fmt.Errorf("%w: quarantine %s takes %d argument(s)", errUsage, sub, n)
	}
	if (sub == "release" || sub == "delete") && strings.TrimSpace(*why) == "" {
		return fmt.Errorf("%w: quarantine %s needs -reason: why (it is recorded in the evidence log)", errUsage, sub)
	}
	o, err := openOffline(*configFile, *data, true)
	if err != nil {
		return err
	}
	defer o.Close()
	ctx := context.Background()
	switch sub {
	case "list":
		return quarantineList(ctx, o, *all, stdout)
	case "show":
		return quarantineShow(ctx, o, fs.Arg(0), stdout)
	case "release", "delete":
		return quarantineDecide(ctx, o, sub, fs.Arg(0), *by, strings.TrimSpace(*why), stdout)
	}
	return nil
}

// quarantineList prints one line per held message (released ones too with all).
func quarantineList(ctx context.Context, o *offline, all bool, stdout io.Writer) error {
	list, err := o.held.List(ctx, all)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tFROM\tSTATE\tREASON")
	for _, h := range list {
		state := "held"
		if h.Released {
			state = "released by " + printableLine(h.DecidedBy)
		} else if h.Deleted {
			state = "deleted by " + printableLine(h.DecidedBy)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.ID, h.Received.UTC().Format(time.RFC3339), printableLine(h.From), state, h.Reason)
	}
	return tw.Flush()
}

// quarantineShow prints a held message's envelope and reason, and its verdict computed again.
func quarantineShow(ctx context.Context, o *offline, id string, stdout io.Writer) error {
	h, m, err := o.held.Get(ctx, id)
	if err != nil {
		return err
	}
	if m == nil {
		fmt.Fprintf(stdout, "id:\t%s\nstate:\treleased and delivered\nverdict:\t%s\n", h.ID, h.Verdict)
		return nil
	}
	// The verdict is computed again from the message as received: the operator sees what
	// would be delivered on release, including a registration or thread added since.
	res, err := o.pipeline.Evaluate(ctx, m.Data, h.Received)
	fmt.Fprintf(stdout, "id:\t%s\nreceived:\t%s\nenvelope:\t%s -> %v\nreason:\t%s\n", h.ID, h.Received.UTC().Format(time.RFC3339), printableLine(m.From), m.To, h.Reason)
	if err != nil {
		fmt.Fprintf(stdout, "verdict:\tnot processed: %s\n", gateway.ReplyFor(err).String())
		return nil
	}
	printVerdict(stdout, res.Verdict, "")
	return nil
}

// quarantineDecide releases a held message (for the running gateway to deliver) or deletes it,
// by who, for why: the decision and its evidence record are stored in one transaction.
func quarantineDecide(ctx context.Context, o *offline, action, id, by, why string, stdout io.Writer) error {
	h, err := o.held.Entry(ctx, id)
	if err != nil {
		return err
	}
	at := time.Now()
	var rec []byte // no evidence log, no record queued for it
	if o.cfg.Evidence.Enabled {
		h.From = printableLine(h.From)
		if rec, err = evidence.HeldDecision(action, h, by, why, at); err != nil {
			return err
		}
	}
	d := store.Decision{By: by, Why: why, At: at, Evidence: rec}
	if action == "release" {
		err = o.held.Release(ctx, id, d)
	} else {
		err = o.held.Delete(ctx, id, d)
	}
	switch {
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%s was already %s by %s (%s)", id, map[bool]string{true: "released", false: "deleted"}[h.Released], printableLine(h.DecidedBy), printableLine(h.DecidedWhy))
	case errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%w: %v", errUsage, err)
	case err != nil:
		return err
	}
	if action == "release" {
		fmt.Fprintf(stdout, "released %s: the running gateway delivers it to the desk with its verdict unchanged, and records who released it and why in the evidence log\n", id)
	} else {
		fmt.Fprintf(stdout, "deleted %s: its bytes are gone; the running gateway records who deleted it and why in the evidence log\n", id)
	}
	return nil
}

// printableLine keeps operator output on one line of printable characters.
func printableLine(s string) string {
	b := []rune(s)
	for i, r := range b {
		if r < 0x20 || r == 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}
