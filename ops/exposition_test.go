package ops

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// scrape is a parsed text exposition: each sample line's "name{labels}" (as written) to its value.
type scrape map[string]float64

// parseExposition parses the Prometheus text format strictly enough for the tests: every sample
// follows the TYPE line of its family, every value parses, no sample appears twice.
func parseExposition(t testing.TB, r io.Reader) scrape {
	t.Helper()
	out := scrape{}
	typed := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			typed[name] = typ
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("sample line without a value: %q", line)
		}
		key, val := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		name, _, _ := strings.Cut(key, "{")
		fam := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && (typed[base] == "histogram" || typed[base] == "summary") {
				fam = base
			}
		}
		if typed[fam] == "" {
			t.Fatalf("sample %q has no TYPE line before it", line)
		}
		key = canonKey(key)
		if _, dup := out[key]; dup {
			t.Fatalf("sample %q appears twice", key)
		}
		out[key] = v
	}
	return out
}

// canonKey sorts the labels of "name{a="x",b="y"}" so that lookups do not depend on the order the
// client library writes them in (client_golang sorts by label name).
func canonKey(key string) string {
	name, rest, ok := strings.Cut(key, "{")
	if !ok {
		return key
	}
	pairs := strings.Split(strings.TrimSuffix(rest, "}"), ",")
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// TestSeriesAreBounded: a label value from outside (a deferral's status code, a class) cannot make
// the registry grow without limit.
func TestSeriesAreBounded(t *testing.T) {
	m := NewMetrics()
	for i := range maxSeries + 50 {
		m.Refused("statement", fmt.Sprintf("r%d", i))
	}
	var b bytes.Buffer
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	s := parseExposition(t, bytes.NewReader(b.Bytes()))
	n := 0
	for k := range s {
		if strings.HasPrefix(k, "sealpost_messages_refused_total{") {
			n++
		}
	}
	if n != maxSeries+1 {
		t.Fatalf("%d series, want %d", n, maxSeries+1)
	}
	if v := s[`sealpost_messages_refused_total{class="other",reason="other"}`]; v != 50 {
		t.Fatalf("other = %v, want 50", v)
	}
}

func TestRedactAddresses(t *testing.T) {
	tests := []struct{ in, want string }{
		{"550 5.1.1 <Bob@Example.NET>: no such user", "550 5.1.1 <*@Example.NET>: no such user"},
		{`550 5.1.1 "john doe"@example.net unknown`, `550 5.1.1 *@example.net unknown`},
		{"451 4.4.1 connection refused", "451 4.4.1 connection refused"},
		{"452 mailbox of carol.x+tag@other.example full", "452 mailbox of *@other.example full"},
	}
	for _, tt := range tests {
		if got := redactAddresses(tt.in, []string{`"john doe"@example.net`, "bob@example.net"}); got != tt.want {
			t.Errorf("redactAddresses(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
