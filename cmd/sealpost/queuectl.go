package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sealpost/sealpost/ops"
)

// queuectlTimeout bounds one request to the ops listener.
const queuectlTimeout = 30 * time.Second

// cmdQueue lists and controls a running gateway's spools through its ops listener:
// sealpost queue list|show ID|retry ID|delete ID|flush [-addr ADDR] [-queue outbound|desk]
// [-config FILE] [-data DIR | -token-file FILE] [-corrupt]. Every request carries the ops token,
// read from DATA/ops.token (serve makes it at its first start) or -token-file. Flags may come
// before or after the ID.
func cmdQueue(args []string, stdout, stderr io.Writer) error {
	const use = "sealpost queue list|show ID|retry ID|delete ID|flush [-addr ADDR] [-queue outbound|desk] [-config FILE] [-data DIR | -token-file FILE] [-corrupt]"
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
	addr := fs.String("addr", "", "the ops listener of sealpost serve (host:port; default the configuration's ops.addr, "+ops.DefaultAddr+")")
	queueName := fs.String("queue", ops.DefaultQueue, "the spool: outbound or desk")
	configFile := fs.String("config", "", "configuration file (JSON) of sealpost serve: its ops.addr and data directory")
	data := fs.String("data", "", "the data directory of sealpost serve, which holds the ops token (default the configuration's data)")
	tokenFile := fs.String("token-file", "", "read the ops token from this file instead of DATA/"+ops.TokenFile)
	corruptOnly := fs.Bool("corrupt", false, "list: what the spool set aside because it failed its checks, instead of its entries")
	if err := parse(fs, args); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) != n {
		return fmt.Errorf("%w: queue %s takes %d argument(s): %s", errUsage, sub, n, use)
	}
	if *corruptOnly && sub != "list" {
		return fmt.Errorf("%w: -corrupt is a flag of queue list", errUsage)
	}
	if *data != "" && *tokenFile != "" {
		return fmt.Errorf("%w: give -data or -token-file, not both", errUsage)
	}
	c, err := newOpsClient(*configFile, *data, *tokenFile, *addr, *queueName)
	if err != nil {
		return err
	}
	return queueRun(c, sub, pos, *corruptOnly, *queueName, stdout)
}

// queueRun does one queue command through the ops listener and prints its outcome.
func queueRun(c *opsClient, sub string, pos []string, corruptOnly bool, queueName string, stdout io.Writer) error {
	switch sub {
	case "list":
		if corruptOnly {
			var l ops.CorruptList
			if err := c.do(http.MethodGet, "/queue/corrupt", &l); err != nil {
				return err
			}
			printCorrupt(stdout, l)
			return nil
		}
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
		fmt.Fprintf(stdout, "%s: due now in the %s queue\n", pos[0], queueName)
	case "delete":
		if err := c.do(http.MethodDelete, "/queue/"+url.PathEscape(pos[0]), nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: deleted from the %s queue, without a bounce\n", pos[0], queueName)
	case "flush":
		if err := c.do(http.MethodPost, "/queue/flush", nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "every entry of the %s queue is due now\n", queueName)
	}
	return nil
}

// opsClient calls the ops listener's queue control.
type opsClient struct {
	addr, queue string
	token       string // the secret, sent as a bearer token
	tokenPath   string // where it was read, for messages
	http        *http.Client
}

// newOpsClient finds the listener's address and the ops token: -addr, else the configuration's
// ops.addr; -token-file, else ops.token in -data, else in the configuration's data directory. What
// is missing is said in the error.
func newOpsClient(configFile, data, tokenFile, addr, queueName string) (*opsClient, error) {
	cfg := defaultConfig()
	if configFile != "" {
		var err error
		if cfg, err = loadConfig(configFile, data); err != nil {
			return nil, err
		}
	} else if data != "" {
		cfg.Data = data
	}
	if addr == "" {
		addr = cfg.Ops.Addr
	}
	path := tokenFile
	if path == "" {
		path = filepath.Join(cfg.Data, ops.TokenFile)
	}
	secret, err := ops.ReadTokenFile(path)
	switch {
	case errors.Is(err, ops.ErrNoToken) && tokenFile != "":
		return nil, fmt.Errorf("no ops token: -token-file %s does not exist", tokenFile)
	case errors.Is(err, ops.ErrNoToken):
		return nil, fmt.Errorf("no ops token: %s does not exist; give -data DIR, the data directory of sealpost serve "+
			"(it makes %s there at its first start with the ops listener enabled), -config FILE, or -token-file FILE", path, ops.TokenFile)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("cannot read the ops token %s: permission denied; run as the user sealpost serve runs as, who alone may read it", path)
	case err != nil:
		return nil, err
	}
	return &opsClient{addr: addr, queue: queueName, token: secret, tokenPath: path, http: &http.Client{Timeout: queuectlTimeout}}, nil
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
	req.Header.Set("Authorization", "Bearer "+c.token)
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
			Error  string `json:"error"`
			Detail string `json:"detail"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" && e.Detail == "" {
			e.Error = strings.TrimSpace(string(body))
		} else if e.Error == "" {
			e.Error = e.Detail
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("ops listener %s refused the ops token read from %s: %s: %s", c.addr, c.tokenPath, resp.Status, printableLine(e.Error))
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

// printCorrupt lists what a spool set aside, one line per file.
func printCorrupt(w io.Writer, l ops.CorruptList) {
	if len(l.Entries) == 0 {
		fmt.Fprintf(w, "nothing set aside in %s\n", printableLine(l.Dir))
		return
	}
	fmt.Fprintf(w, "%d %s set aside in %s, neither delivered nor deleted:\n", len(l.Entries), plural(len(l.Entries), "entry", "entries"), printableLine(l.Dir))
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFILE\tSIZE\tSET ASIDE\tPROBLEM")
	for _, e := range l.Entries {
		for _, f := range e.Files {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", printableLine(e.ID), printableLine(f.Name), f.Size, stamp(f.SetAside), printableLine(f.Problem))
		}
	}
	tw.Flush()
}

func plural(n int, one, more string) string {
	if n == 1 {
		return one
	}
	return more
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
