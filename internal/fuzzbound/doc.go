// Package fuzzbound lets a test binary bound fuzz minimisation to 100 executions per new input, as
// CI does (.ci/run), unless the caller chose a -fuzzminimizetime. With the default (60 s) a short
// fuzz run of a target whose inputs are kilobytes of CMS reported a few hundred executions: minimising
// one new input tries about n²/2 candidates at some 40 µs each (the engine compares 64k coverage
// counters per try), some 20 s, whose count is lost when -fuzztime ends first.
package fuzzbound
