package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sealpost/sealpost/ops"
)

// queuectlTimeout bounds one request to the ops listener.
const queuectlTimeout = 30 * time.Second

// cmdQueue lists and controls a running gateway's spools through its ops listener:
// sealpost queue list|show ID|retry ID|delete ID|flush [-addr ADDR] [-queue outbound|desk].
// Flags may come before or after the ID.
func cmdQueue(args []string, stdout, stderr io.Writer) error {
	const use = "sealpost queue list|show ID|retry ID|delete ID|flush [-addr ADDR] [-queue outbound|desk]"
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, use)
	}
	sub, args := args[0], args[1:]
	wantArgs := map[string]int{"list": 0, "show": 1, "retry": 1, "delete": 1, "flush": 0}
	n, ok := wantArgs[sub]
	if !ok {
		return fmt.Errorf("%w: unknown queue command %q (list, show, retry, delete, flush)", errUsage, sub)
	}
	fs := newFlags("queue "+sub, stdout)
	addr := fs.String("addr", ops.DefaultAddr, "the ops listener of sealpost serve (host:port)")
	queueName := fs.String("queue", ops.DefaultQueue, "the spool: outbound or desk")
	if err := parse(fs, args); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) != n {
		return fmt.Errorf("%w: queue %s takes %d argument(s): %s", errUsage, sub, n, use)
	}
	c := &opsClient{addr: *addr, queue: *queueName, http: &http.Client{Timeout: queuectlTimeout}}
	switch sub {
	case "list":
		var l ops.EntryList
		if err := c.do(http.MethodGet, "/queue", &l); err != nil {
			return err
		}
		printEntries(stdout, l.Entries)
		return nil
	case "show":
		var e ops.Entry
		if err := c.do(http.MethodGet, "/queue/"+url.PathEscape(pos[0]), &e); err != nil {
			return err
		}
		printEntry(stdout, e)
		return nil
	case "retry":
		if err := c.do(http.MethodPost, "/queue/"+url.PathEscape(pos[0])+"/retry", nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: due now in the %s queue\n", pos[0], *queueName)
	case "delete":
		if err := c.do(http.MethodDelete, "/queue/"+url.PathEscape(pos[0]), nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: deleted from the %s queue, without a bounce\n", pos[0], *queueName)
	case "flush":
		if err := c.do(http.MethodPost, "/queue/flush", nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "every entry of the %s queue is due now\n", *queueName)
	}
	return nil
}

// opsClient calls the ops listener's queue control.
type opsClient struct {
	addr, queue string
	http        *http.Client
}

// do sends one request and decodes the JSON answer into out (when not nil). An error answer
// becomes an error carrying the listener's message.
func (c *opsClient) do(method, path string, out any) error {
	u := url.URL{Scheme: "http", Host: c.addr, Path: path, RawQuery: url.Values{"queue": {c.queue}}.Encode()}
	req, err := http.NewRequest(method, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: -addr %q: %v", errUsage, c.addr, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("is sealpost serve running? (ops listener %s): %w", c.addr, err)
		}
		return fmt.Errorf("ops listener %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("ops listener %s: %w", c.addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return fmt.Errorf("ops listener %s: %s: %s", c.addr, resp.Status, printableLine(e.Error))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("ops listener %s: unexpected answer: %w", c.addr, err)
	}
	return nil
}

func printEntries(w io.Writer, entries []ops.Entry) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCLASS\tDOMAINS\tPENDING\tATTEMPTS\tNEXT ATTEMPT\tEXPIRES")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%s\t%s\n", e.ID, printableLine(e.Class), printableLine(strings.Join(e.Domains, ",")),
			e.Pending, e.Pending+e.Delivered+e.Failed, e.Attempts, stamp(e.NextAttempt), stamp(e.Expires))
	}
	tw.Flush()
}

func printEntry(w io.Writer, e ops.Entry) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\nclass:\t%s\nsender domain:\t%s\nsize:\t%d bytes\ncreated:\t%s\nnext attempt:\t%s\nexpires:\t%s\n",
		e.ID, printableLine(e.Class), printableLine(e.SenderDomain), e.Size, stamp(e.Created), stamp(e.NextAttempt), stamp(e.Expires))
	for i, r := range e.Recipients {
		fmt.Fprintf(tw, "recipient %d:\t%s\t%s\t%d attempt(s)", i+1, printableLine(r.Domain), r.Status, r.Attempts)
		if r.LastError != "" {
			fmt.Fprintf(tw, "\t%s", printableLine(r.LastError))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
