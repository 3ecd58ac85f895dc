package templates

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenMessages are the messages pinned byte for byte: each sample, in each locale.
func goldenMessages(loc string) map[string]Message {
	out := map[string]Message{}
	for _, name := range Names() {
		for i, m := range samples(name, loc) {
			file := string(name)
			if name == OTP {
				file += "-" + []string{"login", "change", "custom", "payment"}[i]
			}
			out[file+"."+loc] = m
		}
	}
	return out
}

// TestGoldenMessages pins every rendered message for a fixed clock, Message-ID and boundary.
func TestGoldenMessages(t *testing.T) {
	date := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, loc := range Locales() {
		for file, m := range goldenMessages(loc) {
			t.Run(file, func(t *testing.T) {
				r, err := Default().Render(m)
				if err != nil {
					t.Fatal(err)
				}
				got, err := r.Message("Example Bank <noreply@bank.example>", "alice@example.com", date, "<golden."+file+"@bank.example>",
					WithBoundary(func() (string, error) { return "sealpost-golden", nil }))
				if err != nil {
					t.Fatal(err)
				}
				compareGolden(t, filepath.Join("testdata", "golden", file+".eml"), got,
					"# golden: templates.Default() "+file+" sample rendered by Rendered.Message, clock 2027-01-02T03:04:05Z, "+
						"boundary sealpost-golden; regenerate with go test ./templates -run GoldenMessages -update\n")
			})
		}
	}
}

func compareGolden(t *testing.T, path string, got []byte, header string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append([]byte(header), got...), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.IndexByte(want, '\n')
	if i < 0 || !bytes.HasPrefix(want, []byte("# golden: ")) {
		t.Fatalf("%s: no golden header line", path)
	}
	if want = want[i+1:]; !bytes.Equal(got, want) {
		t.Errorf("message differs from %s:\ngot\n%s\nwant\n%s", path, got, want)
	}
}
