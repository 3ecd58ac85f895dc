package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestPrintConfigGolden: -print-config, the embedded defaults, prints testdata/golden/print-config.json
// byte for byte (keys, order and values), wherever the defaults come from.
func TestPrintConfigGolden(t *testing.T) {
	golden := filepath.Join("testdata", "golden", "print-config.json")
	var out bytes.Buffer
	if code := run([]string{"serve", "-print-config"}, nil, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("-print-config differs from %s (run with -update if the change is meant):\n%s", golden, out.String())
	}
}
