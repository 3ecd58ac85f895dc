package queue

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGoldenDSN pins a DSN's bytes for a fixed clock and boundary.
func TestGoldenDSN(t *testing.T) {
	now := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	data := []byte("From: Example Bank <statements@bank.example>\r\nTo: x@a.example, y@b.example\r\n" +
		"Subject: Statement\r\nMessage-ID: <golden-dsn@bank.example>\r\n\r\nthe body never goes back\r\n")
	got := buildDSN(dsnParams{
		hostname: "mx.sealpost.test", id: "AAAAAAAAAAAAAAAA", dsnID: "BBBBBBBBBBBBBBBB", class: "statement",
		sender: "statements@bank.example", arrival: now.Add(-time.Hour), now: now, header: originalHeader(data),
		failed: []failedRecipient{
			{"x@a.example", &DeliveryError{Code: 550, Enhanced: "5.1.1", Message: "no such user"}},
			{"y@b.example", &DeliveryError{Temporary: true, Code: 451, Enhanced: "4.2.2", Message: "mailbox full"}},
		},
		boundary: "sealpost-dsn-golden",
	})
	path := filepath.Join("testdata", "golden", "dsn.eml")
	const header = "# golden: queue.buildDSN for two failed recipients of a statement, clock 2027-01-02T03:04:05Z, " +
		"boundary sealpost-dsn-golden; regenerate with go test ./queue -run GoldenDSN -update\n"
	if *update {
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
		t.Errorf("DSN differs from %s:\ngot\n%s\nwant\n%s", path, got, want)
	}
}
