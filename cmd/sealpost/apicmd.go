package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sealpost/sealpost/api"
	"github.com/sealpost/sealpost/store"
)

// apiStore opens the store the API's tokens live in: the one -config (or -data) names, which every
// node shares with store.postgres.
func apiStore(configFile, data string) (backend, error) {
	dir, sc, err := keysTarget(configFile, data)
	if err != nil {
		return nil, err
	}
	return openStore(string(dir), sc)
}

// cliActor names the operator in the audit log: "cli:" and the login name, as far as it is known.
func cliActor() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + printableLine(u)
	}
	return "cli"
}

// auditCLI records an operator's change of who may call the API.
func auditCLI(ctx context.Context, st api.AuditLog, action, detail string) error {
	node, _ := os.Hostname()
	if _, err := st.AppendAudit(ctx, store.AuditRecord{At: time.Now(), Actor: cliActor(), Action: action, Detail: detail, Node: node}); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// apiTokenFlags are api token's flags: -config and -data for every subcommand, the others for create.
type apiTokenFlags struct {
	configFile, data, name, scopes *string
	expires                        *time.Duration
}

// apiToken runs api token create|list|revoke; they share one flag set, so help lists every flag.
func apiToken(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("api token", stdout)
	var f apiTokenFlags
	f.configFile, f.data = keysStoreFlags(fs)
	f.name = fs.String("name", "", "create: what the token is for, e.g. online-banking (required)")
	f.scopes = fs.String("scopes", "", "create: comma-separated scopes: "+strings.Join(api.Scopes(), ", ")+" (required)")
	f.expires = fs.Duration("expires", 0, "create: lifetime, e.g. 720h; 0: never expires")
	if err := parse(fs, args); err != nil {
		return err
	}
	createOnly := false
	fs.Visit(func(fl *flag.Flag) {
		createOnly = createOnly || fl.Name == "name" || fl.Name == "scopes" || fl.Name == "expires"
	})
	switch sub, rest := fs.Arg(0), fs.Args()[min(1, fs.NArg()):]; {
	case sub == "create" && len(rest) == 0:
		return apiTokenCreate(f, stdout, stderr)
	case sub == "list" && len(rest) == 0 && !createOnly:
		return apiTokenList(f, stdout)
	case sub == "revoke" && len(rest) == 1 && !createOnly:
		return apiTokenRevoke(f, rest[0], stdout)
	}
	return fmt.Errorf("%w: api token create -name NAME -scopes S1,S2 [-expires 720h] | list | revoke ID", errUsage)
}

func apiTokenCreate(f apiTokenFlags, stdout, stderr io.Writer) error {
	if *f.name == "" || *f.scopes == "" || *f.expires < 0 {
		return fmt.Errorf("%w: api token create -config FILE -name NAME -scopes S1,S2 [-expires 720h]", errUsage)
	}
	st, err := apiStore(*f.configFile, *f.data)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	var until time.Time
	if *f.expires > 0 {
		until = now.Add(*f.expires)
	}
	ctx := context.Background()
	secret, t, err := api.CreateToken(ctx, st, *f.name, splitList(*f.scopes), now, until)
	if errors.Is(err, api.ErrBadToken) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err != nil {
		return err
	}
	if err := auditCLI(ctx, st, "api token create", "token "+t.ID+" scopes "+strings.Join(t.Scopes, ",")); err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, "created API token %s (%s), scopes %s, expires %s: the secret above is shown only now (sealpost keeps its hash)\n",
		t.ID, printableLine(t.Name), strings.Join(t.Scopes, ","), tokenTime(t.Expires, "never"))
	return nil
}

func apiTokenList(f apiTokenFlags, stdout io.Writer) error {
	st, err := apiStore(*f.configFile, *f.data)
	if err != nil {
		return err
	}
	defer st.Close()
	toks, err := st.APITokens(context.Background())
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tEXPIRES\tREVOKED")
	for _, t := range toks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, printableLine(t.Name), strings.Join(t.Scopes, ","),
			tokenTime(t.Created, "-"), tokenTime(t.Expires, "never"), tokenTime(t.Revoked, "-"))
	}
	return tw.Flush()
}

func apiTokenRevoke(f apiTokenFlags, id string, stdout io.Writer) error {
	st, err := apiStore(*f.configFile, *f.data)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	switch err := st.RevokeAPIToken(ctx, id, time.Now()); {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no API token %s (see sealpost api token list)", quoteInput(id))
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("API token %s is revoked already", quoteInput(id))
	case err != nil:
		return err
	}
	if err := auditCLI(ctx, st, "api token revoke", "token "+id); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked API token %s: every node refuses it from its next call\n", id)
	return nil
}

// tokenTime is t in UTC, RFC 3339, or zero when t is.
func tokenTime(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339)
}
