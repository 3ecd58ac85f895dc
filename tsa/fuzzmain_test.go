package tsa

import (
	"flag"
	"os"
	"testing"
)

// TestMain bounds fuzz minimisation to 100 executions per new input, as CI does (.ci/run), unless
// the caller chose a -fuzzminimizetime. With the default (60 s) a short run of FuzzDecrypt,
// FuzzVerify or FuzzClientReply reported a few hundred executions: each new input is a CMS
// structure of about 1 KB, and minimising it tries about n²/2 candidates at some 40 µs each (the
// engine compares 64k coverage counters per try), some 20 s, whose count is lost when -fuzztime
// ends first.
func TestMain(m *testing.M) {
	flag.Parse()
	boundFuzzMinimization()
	os.Exit(m.Run())
}

func boundFuzzMinimization() {
	if f := flag.Lookup("test.fuzz"); f == nil || f.Value.String() == "" {
		return
	}
	chosen := false
	flag.Visit(func(f *flag.Flag) { chosen = chosen || f.Name == "test.fuzzminimizetime" })
	if !chosen {
		_ = flag.Set("test.fuzzminimizetime", "100x")
	}
}
