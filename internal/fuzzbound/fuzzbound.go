package fuzzbound

import (
	"flag"
	"os"
	"testing"
)

// Main is a TestMain: it bounds minimisation when the binary fuzzes, then runs the tests.
func Main(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		chosen := false
		flag.Visit(func(f *flag.Flag) { chosen = chosen || f.Name == "test.fuzzminimizetime" })
		if !chosen {
			_ = flag.Set("test.fuzzminimizetime", "100x")
		}
	}
	os.Exit(m.Run())
}
