package arrows

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/sealpost/sealpost"

// design is the "may import" column of the Packages table in DESIGN.md (shared/DESIGN.md), one
// entry per row: a package may import, among sealpost's packages, only those listed (and config,
// below). Rows for packages that do not exist yet stay, so the arrows hold when they land.
var design = map[string][]string{
	"smtpd":      {"gateway"},
	"gateway":    {},
	"outbound":   {"gateway", "mime", "smime", "pgp", "keys", "queue", "store", "evidence", "templates", "address"},
	"inbound":    {"gateway", "mime", "smime", "pgp", "keys", "quarantine", "queue", "store", "evidence", "address"},
	"quarantine": {"queue", "store"},
	"queue":      {"mime"},
	"mime":       {},
	"smime":      {"mime", "tsa", "keys"},
	"pgp":        {"mime", "tsa", "keys"},
	"tsa":        {},
	"keys":       {"address"},
	"address":    {},
	"store":      {},
	"api":        {"outbound", "keys", "ca", "otp", "store"},
	"ca":         {"keys", "store"},
	"otp":        {"store"},
	"discovery":  {"keys", "store"},
	"evidence":   {"tsa", "keys", "store"},
	"templates":  {"mime"},
	"console":    {"quarantine", "store", "queue", "evidence", "keys"},
	"dkim":       {"queue"},
	"ops":        {"queue", "tsa"},
	// internal/…: test helpers, importing nothing of sealpost's in DESIGN's row.
	"internal/interop": {},
	"internal/logtest": {},
	"internal/tlstest": {},
	"internal/softhsm": {},
}

// notInDesign are packages that exist but that DESIGN.md's table does not list, with the edges
// they have today. Keep it short: a new package belongs in DESIGN.md first.
var notInDesign = map[string][]string{
	// config is the configuration's shared types (durations, field errors) that every component's
	// Config uses; it imports nothing of sealpost's, so any package may import it (see mayImport).
	"config": {},
	// The fuzzers' shared bounds: a leaf.
	"internal/fuzzbound": {},
	// This test's own package.
	"internal/arrows": {},
	// The outbound and inbound pipelines' shared test fixture: a bank with real keys, protectors
	// and an embedded TSA, driven through gateway.Handler. Imported by tests only.
	"internal/pipelinetest": {"evidence", "gateway", "keys", "pgp", "queue", "smime", "tsa"},
	// The tests' private PostgreSQL: it skips or fails as internal/interop says for a missing peer;
	// the server itself is internal/pgserver's.
	"internal/pgtest": {"internal/interop", "internal/pgserver"},
	// A private PostgreSQL (initdb, postgres) for the tests and sealpost bench -postgres: a leaf.
	"internal/pgserver": {},
	// SoftHSM test tokens: the HSM tests make identities in them with keys.
	"internal/softhsm/softhsmtest": {"internal/interop", "internal/softhsm", "keys"},
}

// beyondDesign are edges DESIGN.md's rows lack and the code needs (issue 12's note says so):
// address is a leaf, the one copy of the address rule, and every package that compares or logs
// addresses takes it from there rather than through keys or a copy of its own. gateway's envelope
// rule (CheckSender/CheckRecipient) is such a rule; queue, dkim and ops log and count domains;
// smime and pgp compare the From address with the signer's; ca the addresses a request names with
// the customer's; api normalises the customer's address in its paths (hostile input) with the same
// rule. quarantine seals held mail with keys' one Sealer (AES-256-GCM at rest), which the secure
// mailbox uses too, rather than a copy of it. discovery compares a WKD key's user IDs with the
// address it was looked up for, and takes the address's domain, by the same rule. console shows a
// held reply's parts through the one MIME layer rather than a parser of its own, and the domains
// of queued recipients by the one address rule.
var beyondDesign = map[string][]string{
	"gateway": {"address"}, "queue": {"address"}, "dkim": {"address"}, "ops": {"address"},
	"smime": {"address"}, "pgp": {"address"}, "quarantine": {"keys"}, "ca": {"address"}, "api": {"address"},
	"discovery": {"address"}, "console": {"mime", "address"},
}

// softhsmKeys: DESIGN's internal row says "—", but internal/softhsm (the PKCS#11 session code)
// builds on keys' identities today. Listed here rather than in design so the row stays DESIGN's.
var softhsmKeys = map[string][]string{"internal/softhsm": {"keys"}}

// pending holds today's violations that a change under way removes (none now). Delete each
// edge as it goes; the test fails on any edge that is neither allowed nor listed here.
var pending = map[string][]string{}

// cmdInternal: cmd/sealpost may import everything except test helpers; internal/softhsm is
// production code for cmd (the PKCS#11 identities of sealpost serve), and internal/pgserver the
// private PostgreSQL of sealpost bench -postgres, so they are allowed there only.
var cmdInternal = []string{"internal/softhsm", "internal/pgserver"}

// mayImport says whether from may import to, and if not, the DESIGN row that forbids it.
func mayImport(from, to string) (ok bool, row string) {
	if slices.Contains(pending[from], to) {
		return true, ""
	}
	if from == "cmd/sealpost" {
		return !strings.HasPrefix(to, "internal/") || slices.Contains(cmdInternal, to), "cmd/sealpost: everything (internal/… test helpers excepted, but internal/softhsm)"
	}
	if to == "config" {
		return true, ""
	}
	allowed, inDesign := design[from]
	extra, listed := notInDesign[from]
	switch {
	case inDesign:
		allowed = append(append(slices.Clone(allowed), softhsmKeys[from]...), beyondDesign[from]...)
		ok = slices.Contains(allowed, to)
		return ok, fmt.Sprintf("%s: may import %s", from, list(design[from]))
	case listed:
		return slices.Contains(extra, to), fmt.Sprintf("%s is not in DESIGN.md; today it may import %s", from, list(extra))
	}
	return false, from + " is not in DESIGN.md's Packages table (add its row there, then here)"
}

func list(pkgs []string) string {
	if len(pkgs) == 0 {
		return "nothing of sealpost's (—)"
	}
	return "only " + strings.Join(pkgs, ", ")
}

// violations returns one message per import edge (package → its sealpost imports) that DESIGN.md
// does not allow, naming the edge and the row.
func violations(edges map[string][]string) []string {
	var out []string
	for from, tos := range edges {
		for _, to := range tos {
			if ok, row := mayImport(from, to); !ok {
				out = append(out, fmt.Sprintf("%s imports %s, which DESIGN.md's Packages table does not allow (row %s)", from, to, row))
			}
		}
	}
	sort.Strings(out)
	return out
}

// moduleEdges lists, from go list -deps run at the module root, each sealpost package's
// non-test imports of sealpost packages (paths relative to the module).
func moduleEdges(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Module", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	edges := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
			Module     *struct{ Path string }
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		from, ok := relative(p.ImportPath)
		if !ok || p.Module == nil || p.Module.Path != module {
			continue
		}
		edges[from] = []string{}
		for _, imp := range p.Imports {
			if to, ok := relative(imp); ok {
				edges[from] = append(edges[from], to)
			}
		}
	}
	return edges
}

func relative(path string) (string, bool) {
	return strings.CutPrefix(path, module+"/")
}

// TestArrows: every import between sealpost's packages is one DESIGN.md's Packages table allows
// (or a pending one the gateway split removes).
func TestArrows(t *testing.T) {
	edges := moduleEdges(t)
	for _, p := range []string{"cmd/sealpost", "smime", "queue", "mime"} {
		if _, ok := edges[p]; !ok {
			t.Fatalf("go list found no package %s: %v", p, edges)
		}
	}
	for _, v := range violations(edges) {
		t.Error(v)
	}
	for from, tos := range pending {
		for _, to := range tos {
			if !slices.Contains(edges[from], to) {
				t.Errorf("pending lists %s → %s, which is gone: delete it from pending", from, to)
			}
		}
	}
}

// TestViolationNamesEdgeAndRow: a forbidden edge is reported with both packages and DESIGN's row;
// a package the table lacks is reported as such.
func TestViolationNamesEdgeAndRow(t *testing.T) {
	got := violations(map[string][]string{
		"smime":        {"mime", "config", "queue"},
		"cmd/sealpost": {"internal/interop", "internal/softhsm", "gateway"},
		"frobnicate":   {"mime"},
	})
	want := []string{
		"cmd/sealpost imports internal/interop, which DESIGN.md's Packages table does not allow (row cmd/sealpost: everything (internal/… test helpers excepted, but internal/softhsm))",
		"frobnicate imports mime, which DESIGN.md's Packages table does not allow (row frobnicate is not in DESIGN.md's Packages table (add its row there, then here))",
		"smime imports queue, which DESIGN.md's Packages table does not allow (row smime: may import only mime, tsa, keys)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
