//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/internal/logtest"
)

// What TestREADMERunsVerbatim runs and checks, so that the README can be written for it:
//
//   - Fenced code blocks (``` or ~~~) are runnable when their info string's first word is "sh";
//     every other block (json, text, console, none) is documentation.
//   - Of the first sh block only the first command line runs (the newcomer's `go run ./cmd/sealpost
//     serve`): it is started, waited for until it logs "sealpost serving" or accepts on
//     127.0.0.1:2525, interrupted with SIGINT, and must exit 0. The rest of that block is not run.
//   - Every later sh block runs verbatim, in order, in the root of a fresh copy of the repository, in
//     one bash process (variables, the working directory and `&` jobs carry over to later blocks).
//     Each block runs under `set -e -o pipefail` with stdin from /dev/null: the first failing
//     command stops the test, which names the block, the README line and the command.
//   - A block whose first line is `# not run: REASON` is skipped, and REASON is logged.
//   - A ```text block that follows an sh block, with only blank lines or one line of prose ending in
//     ":" between them, is that block's output: each of its non-empty lines, trimmed, must occur within
//     a line of the block's stdout and stderr, each on a later line than the one before; "…" matches any
//     run of characters within a line.
//   - Each block has readmeBlockTimeout; everything it started is killed at the end.

// readmePorts are the addresses the README's commands bind: they must be free before the test starts
// and again after it.
var readmePorts = []string{"127.0.0.1:2525", "127.0.0.1:2526", "127.0.0.1:9925", "127.0.0.1:9926"}

const (
	readmeNested       = "SEALPOST_README_VERBATIM" // set for the README's commands, so that a go test among them does not recurse
	readmeBlockTimeout = 3 * time.Minute
	readmeTotalTimeout = 10 * time.Minute
	readmeOutputTail   = 40 // lines of output shown when a block fails
)

// TestREADMERunsVerbatim: a newcomer who follows README.md top to bottom, pasting each sh block into a
// shell, sees every command succeed and print what the README says it prints.
func TestREADMERunsVerbatim(t *testing.T) {
	if testing.Short() {
		t.Skip("runs README.md's commands (builds sealpost, starts the gateway on its fixed ports): not with -short")
	}
	if os.Getenv(readmeNested) != "" {
		t.Skip("a README block runs go test: not again from inside TestREADMERunsVerbatim")
	}
	for _, tool := range []string{"swaks", "openssl", "gpg"} {
		interop.Tool(t, tool)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("the README's commands are run with bash, which is not installed")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the README starts with go run, and no go is on PATH")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := readmeBlocks(string(doc))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	plan, err := planREADME(blocks)
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if err := portsFree(readmePorts); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := readmeContext(t)
	defer cancel()
	repo, work := t.TempDir(), t.TempDir()
	how, err := copyRepo(root, repo)
	if err != nil {
		t.Fatalf("copy the repository: %v", err)
	}
	t.Logf("copied the repository (%s) to %s", how, repo)
	// Registered after the temporary directories, so it runs before they are removed.
	t.Cleanup(func() { stopGPGAgents(t, repo) })
	env := readmeEnv(goBin)

	start := time.Now()
	out, err := runFirstCommand(ctx, repo, env, plan.FirstCommand, readmePorts[0], readmeBlockTimeout)
	if err != nil {
		t.Fatalf("README.md:%d: the first command %q: %v\n%s", plan.First.Fence+1, plan.FirstCommand, err, tail(out, readmeOutputTail))
	}
	t.Logf("README.md:%d: %s: ready, interrupted, exit 0 (%v); the rest of its block is not run", plan.First.Fence+1, plan.FirstCommand, time.Since(start).Round(time.Millisecond))
	checkExpected(t, plan.First, out)

	var run []readmeBlock
	for _, b := range plan.Later {
		if reason, ok := b.notRun(); ok {
			t.Logf("README.md:%d: not run: %s", b.Fence, reason)
			continue
		}
		run = append(run, b)
	}
	err = runBlocks(ctx, repo, work, env, run, readmeBlockTimeout, func(b readmeBlock, output string, took time.Duration) {
		t.Logf("README.md:%d: %s: ok (%v)", b.Fence, b.command(), took.Round(time.Millisecond))
		if testing.Verbose() {
			t.Logf("output:\n%s", indent(output))
		}
		checkExpected(t, b, output)
	})
	if err != nil {
		t.Error(err)
	}
	if err := portsFree(readmePorts); err != nil {
		t.Errorf("after the README's commands were stopped: %v", err)
	}
	t.Logf("the README ran in %v", time.Since(start).Round(time.Millisecond))
	if left := unignoredLeftovers(t, root, repo); len(left) > 0 {
		t.Errorf("the README's commands leave files that .gitignore does not cover (git add . would commit them, private keys among them): %v", left)
	}
}

// unignoredLeftovers lists what the README's commands wrote in the copy, outside what git tracks,
// that the repository's .gitignore does not ignore.
func unignoredLeftovers(t *testing.T, root, repo string) []string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Log("git is not installed: not checking what .gitignore covers")
		return nil
	}
	tracked, err := trackedFiles(root)
	if err != nil {
		t.Logf("git ls-files: %v: not checking what .gitignore covers", err)
		return nil
	}
	known := map[string]bool{}
	for _, f := range tracked {
		known[f] = true
	}
	var written []string
	filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(repo, path)
		if !known[rel] {
			written = append(written, rel)
		}
		return nil
	})
	if len(written) == 0 {
		t.Fatal("the README's commands wrote nothing: the check of .gitignore would pass for nothing")
	}
	// git check-ignore needs a repository: a throw-away one in the copy, which has the .gitignore.
	if out, err := exec.Command("git", "-C", repo, "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	cmd := exec.Command("git", "-C", repo, "check-ignore", "--no-index", "--verbose", "--non-matching", "--stdin")
	cmd.Stdin = strings.NewReader(strings.Join(written, "\n") + "\n")
	out, _ := cmd.Output()
	var left []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// --non-matching prints "::\tPATH" for a path no pattern ignores.
		if p, ok := strings.CutPrefix(l, "::\t"); ok {
			left = append(left, p)
		}
	}
	return left
}

// checkExpected fails the test when b has a ```text block of expected output that output lacks.
func checkExpected(t *testing.T, b readmeBlock, output string) {
	t.Helper()
	if b.Expect == nil {
		return
	}
	if i, ok := matchExpected(b.Expect.Lines, output); !ok {
		t.Errorf("README.md:%d: the block at README.md:%d (%s) does not print line %d of its expected output:\n    %s\nthe expected lines must occur in this order, … matching anything; the output ends:\n%s",
			b.Expect.Fence+1+i, b.Fence, b.command(), i+1, strings.TrimSpace(b.Expect.Lines[i]), tail(output, readmeOutputTail))
	}
}

// readmeBlock is one fenced code block of a Markdown document.
type readmeBlock struct {
	Info   string       // the info string's first word: "sh", "json", "text", "" for none
	Fence  int          // the line number of the opening fence; content line n is at Fence+n
	Lines  []string     // the content, verbatim
	Expect *readmeBlock // for an sh block, the ```text block that shows its output
}

// command returns the block's first line that is neither blank nor a comment, to name the block.
func (b readmeBlock) command() string {
	for _, l := range b.Lines {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return "(no command)"
}

var notRunLine = regexp.MustCompile(`^#\s*not run\b:?\s*(.*)$`)

// notRun returns the reason given by a first line `# not run: REASON`.
func (b readmeBlock) notRun() (reason string, ok bool) {
	if len(b.Lines) == 0 {
		return "", false
	}
	m := notRunLine.FindStringSubmatch(strings.TrimSpace(b.Lines[0]))
	if m == nil {
		return "", false
	}
	return m[1], true
}

// readmeBlocks returns the fenced code blocks of a Markdown document in order, each sh block paired
// with the ```text block showing its output: one that follows it with only blank lines, or a single
// line of prose ending in ":", between them.
func readmeBlocks(doc string) ([]readmeBlock, error) {
	lines := strings.Split(strings.ReplaceAll(doc, "\r\n", "\n"), "\n")
	var blocks []readmeBlock
	var between []string // lines since the last block closed
	for i := 0; i < len(lines); i++ {
		ind, fence, info, ok := fenceOpen(lines[i])
		if !ok {
			between = append(between, lines[i])
			continue
		}
		b := readmeBlock{Info: info, Fence: i + 1}
		for i++; ; i++ {
			if i == len(lines) {
				return nil, fmt.Errorf("line %d: the code block is never closed", b.Fence)
			}
			if fenceCloses(lines[i], fence) {
				break
			}
			b.Lines = append(b.Lines, stripIndent(lines[i], ind))
		}
		if n := len(blocks); n > 0 && b.Info == "text" && blocks[n-1].Info == "sh" && showsOutput(between) {
			blocks[n-1].Expect = &b
		}
		blocks = append(blocks, b)
		between = nil
	}
	return blocks, nil
}

// showsOutput reports whether the lines between two blocks let the second be the first's output.
func showsOutput(between []string) bool {
	var prose []string
	for _, l := range between {
		if strings.TrimSpace(l) != "" {
			prose = append(prose, strings.TrimSpace(l))
		}
	}
	return len(prose) == 0 || len(prose) == 1 && strings.HasSuffix(prose[0], ":")
}

// fenceOpen parses an opening code fence (CommonMark): up to three spaces, three or more backticks or
// tildes, then an info string, which for backticks may hold none.
func fenceOpen(line string) (indent int, fence, info string, ok bool) {
	rest := strings.TrimLeft(line, " ")
	indent = len(line) - len(rest)
	if indent > 3 || len(rest) < 3 || rest[0] != '`' && rest[0] != '~' {
		return 0, "", "", false
	}
	n := len(rest) - len(strings.TrimLeft(rest, rest[:1]))
	if n < 3 {
		return 0, "", "", false
	}
	fence, info = rest[:n], strings.TrimSpace(rest[n:])
	if fence[0] == '`' && strings.Contains(info, "`") {
		return 0, "", "", false
	}
	if f := strings.Fields(info); len(f) > 0 {
		info = f[0]
	}
	return indent, fence, info, true
}

// fenceCloses reports whether line closes a block opened with fence: up to three spaces, at least as
// many of the same character, nothing else.
func fenceCloses(line, fence string) bool {
	rest := strings.TrimLeft(line, " ")
	if len(line)-len(rest) > 3 {
		return false
	}
	rest = strings.TrimRight(rest, " \t")
	return len(rest) >= len(fence) && strings.Trim(rest, fence[:1]) == ""
}

// stripIndent removes up to n leading spaces, the opening fence's indentation.
func stripIndent(line string, n int) string {
	for ; n > 0 && strings.HasPrefix(line, " "); n-- {
		line = line[1:]
	}
	return line
}

// readmePlan is what TestREADMERunsVerbatim does with a README.
type readmePlan struct {
	First        readmeBlock   // the first sh block
	FirstCommand string        // its first command: the only line of it that runs
	Later        []readmeBlock // every later sh block in order, those not to run included
}

// planREADME picks the first command and the later sh blocks, and rejects a `# not run` without a reason.
func planREADME(blocks []readmeBlock) (readmePlan, error) {
	var p readmePlan
	found := false
	for _, b := range blocks {
		if b.Info != "sh" {
			continue
		}
		if reason, ok := b.notRun(); ok && reason == "" {
			return p, fmt.Errorf("line %d: write why the block is not run: # not run: REASON", b.Fence+1)
		}
		if found {
			p.Later = append(p.Later, b)
			continue
		}
		found, p.First = true, b
	}
	if !found {
		return p, errors.New("no ```sh block: nothing to run")
	}
	if p.FirstCommand = p.First.command(); p.FirstCommand == "(no command)" {
		return p, fmt.Errorf("line %d: the first ```sh block has no command", p.First.Fence)
	}
	return p, nil
}

// matchExpected checks that each non-empty expected line occurs, in order, in output: within one
// output line, each on a later line than the one before, leading and trailing white space ignored and
// "…" matching any run of characters. It returns the index of the first expected line not found.
func matchExpected(expected []string, output string) (missing int, ok bool) {
	out := strings.Split(strings.ReplaceAll(output, "\r\n", "\n"), "\n")
	next := 0
	for i, want := range expected {
		if strings.TrimSpace(want) == "" {
			continue
		}
		for next < len(out) && !matchLine(want, out[next]) {
			next++
		}
		if next == len(out) {
			return i, false
		}
		next++
	}
	return -1, true
}

// matchLine reports whether pattern, trimmed, occurs in line, "…" matching any run of characters.
// Taking each literal piece at its leftmost place is enough: the pattern is anchored nowhere.
func matchLine(pattern, line string) bool {
	for _, piece := range strings.Split(strings.TrimSpace(pattern), "…") {
		i := strings.Index(line, piece)
		if i < 0 {
			return false
		}
		line = line[i+len(piece):]
	}
	return true
}

// commandAt returns the command that content line n (1-based) of lines belongs to, with the number of
// its first line: continuation lines (a trailing backslash, pipe, && or ||) are joined to it.
func commandAt(lines []string, n int) (first int, command string) {
	if n < 1 || n > len(lines) {
		return 0, ""
	}
	continues := func(l string) bool {
		l = strings.TrimRight(l, " \t")
		return strings.HasSuffix(l, `\`) || strings.HasSuffix(l, "|") || strings.HasSuffix(l, "&&")
	}
	first, last := n, n
	for first > 1 && continues(lines[first-2]) {
		first--
	}
	for last < len(lines) && continues(lines[last-1]) {
		last++
	}
	return first, strings.Join(lines[first-1:last], "\n")
}

// blockError says which block failed, where, and what it printed.
type blockError struct {
	Block    readmeBlock
	Line     int    // the content line of the failing command's first line; 0 when not known
	Command  string // the failing command as the README writes it, else as bash saw it
	Status   int    // the command's exit status; -1 for a signal or a timeout
	TimedOut bool
	Limit    time.Duration // the block's time limit when it timed out; 0 when the test's time ran out
	Output   string        // everything the block printed
}

func (e *blockError) Error() string {
	var b strings.Builder
	what := fmt.Sprintf("failed with exit status %d", e.Status)
	switch {
	case e.Status == 0:
		what = "ended the shell (exit 0), so later blocks did not run"
	case e.Status < 0:
		what = "was killed by a signal"
	}
	if e.TimedOut {
		what = "was still running at the test's deadline"
		if e.Limit > 0 {
			what = fmt.Sprintf("did not finish within %v", e.Limit)
		}
	}
	fmt.Fprintf(&b, "README.md:%d: the block %q %s", e.Block.Fence, e.Block.command(), what)
	if e.Line > 0 {
		fmt.Fprintf(&b, " at README.md:%d:\n%s", e.Block.Fence+e.Line, indent(e.Command))
	} else if e.Command != "" {
		fmt.Fprintf(&b, " in:\n%s", indent(e.Command))
	}
	fmt.Fprintf(&b, "\nits output ends:\n%s", tail(e.Output, readmeOutputTail))
	return b.String()
}

// runBlocks runs blocks in order in one bash process in dir, calling done after each with its output;
// work holds the scripts and outputs. Each block is sourced into the same shell under set -e, so `&`
// jobs, variables and the working directory carry over, and the first failing command ends the run
// with a *blockError. Before runBlocks returns, every process the blocks started has been stopped.
func runBlocks(ctx context.Context, dir, work string, env []string, blocks []readmeBlock, perBlock time.Duration, done func(b readmeBlock, output string, took time.Duration)) (err error) {
	if len(blocks) == 0 {
		return nil
	}
	cmd, events, err := startDriver(dir, work, env, blocks)
	if err != nil {
		return err
	}
	pgid, waited := cmd.Process.Pid, false
	defer func() {
		stopErr := stopGroup(pgid)
		if !waited {
			cmd.Wait()
		}
		if stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	output := func(i int) string {
		b, _ := os.ReadFile(filepath.Join(work, fmt.Sprintf("out-%d", i)))
		return string(b)
	}
	cur, ended, started := -1, -1, time.Now()
	timer := time.NewTimer(perBlock)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				waited = true
				werr := cmd.Wait()
				if werr == nil && ended == len(blocks)-1 {
					return nil
				}
				return failure(work, blocks, cur, werr, output)
			}
			var i int
			if _, e := fmt.Sscanf(ev, "start %d", &i); e == nil {
				cur, started = i, time.Now()
				timer.Reset(perBlock)
			} else if _, e := fmt.Sscanf(ev, "end %d", &i); e == nil {
				ended = i
				done(blocks[i], output(i), time.Since(started))
			}
		case <-timer.C:
			return timedOut(work, blocks, cur, perBlock, output)
		case <-ctx.Done():
			return timedOut(work, blocks, cur, 0, output)
		}
	}
}

// startDriver starts bash on the driver script in its own process group, and returns the events the
// driver writes on fd 3 ("start N", "end N"); the channel closes when bash exits.
func startDriver(dir, work string, env []string, blocks []readmeBlock) (*exec.Cmd, <-chan string, error) {
	driver, err := writeDriver(work, dir, blocks)
	if err != nil {
		return nil, nil, err
	}
	log, err := os.Create(filepath.Join(work, "driver.log"))
	if err != nil {
		return nil, nil, err
	}
	defer log.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command("bash", driver)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, log, log
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	events := make(chan string, 2*len(blocks)) // never blocks the reader, read to the end or not
	go func() {
		defer close(events)
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			events <- sc.Text()
		}
	}()
	return cmd, events, nil
}

// writeDriver writes the blocks and the script that sources them one by one, and returns its path.
// The ERR trap records the failing command; the DEBUG trap the running one, for a timeout.
func writeDriver(work, dir string, blocks []readmeBlock) (string, error) {
	fail, cur := shellQuote(filepath.Join(work, "failed")), shellQuote(filepath.Join(work, "running"))
	var s strings.Builder
	s.WriteString("set -e -T -o pipefail\n")
	fmt.Fprintf(&s, "trap %s ERR\n", shellQuote(`rc=$?; printf '%s\n%s\n%s\n%s' "$rc" "${BASH_SOURCE[0]-}" "$LINENO" "$BASH_COMMAND" > `+fail))
	fmt.Fprintf(&s, "trap %s DEBUG\n", shellQuote(`printf '%s\n%s\n%s\n%s' -1 "${BASH_SOURCE[0]-}" "$LINENO" "$BASH_COMMAND" > `+cur))
	fmt.Fprintf(&s, "cd %s\n", shellQuote(dir))
	for i, b := range blocks {
		file := filepath.Join(work, fmt.Sprintf("block-%d.sh", i))
		if err := os.WriteFile(file, []byte(strings.Join(b.Lines, "\n")+"\n"), 0o600); err != nil {
			return "", err
		}
		out := shellQuote(filepath.Join(work, fmt.Sprintf("out-%d", i)))
		// 3>&- keeps fd 3 out of the block's processes, so that it closes when bash exits.
		fmt.Fprintf(&s, "printf 'start %d\\n' >&3\n. %s </dev/null >%s 2>&1 3>&-\nprintf 'end %d\\n' >&3\n", i, shellQuote(file), out, i)
	}
	driver := filepath.Join(work, "driver.sh")
	return driver, os.WriteFile(driver, []byte(s.String()), 0o600)
}

// failure builds the error for a driver that exited before the end: block cur failed.
func failure(work string, blocks []readmeBlock, cur int, werr error, output func(int) string) error {
	if cur < 0 {
		b, _ := os.ReadFile(filepath.Join(work, "driver.log"))
		return fmt.Errorf("the README's blocks did not start: %v\n%s", werr, b)
	}
	e := &blockError{Block: blocks[cur], Status: -1, Output: output(cur)}
	var exit *exec.ExitError
	if errors.As(werr, &exit) {
		e.Status = exit.ExitCode()
	}
	rec, ok := readTrap(filepath.Join(work, "failed"))
	if !ok {
		rec, ok = readTrap(filepath.Join(work, "running")) // `exit N`, or a signal: the last command started
	}
	if ok {
		e.locate(rec, filepath.Join(work, fmt.Sprintf("block-%d.sh", cur)))
	}
	return e
}

// timedOut builds the error for block cur running out of time, naming the command it was running.
func timedOut(work string, blocks []readmeBlock, cur int, limit time.Duration, output func(int) string) error {
	if cur < 0 {
		return errors.New("the README's blocks did not start in time")
	}
	e := &blockError{Block: blocks[cur], Status: -1, TimedOut: true, Limit: limit, Output: output(cur)}
	if rec, ok := readTrap(filepath.Join(work, "running")); ok {
		e.locate(rec, filepath.Join(work, fmt.Sprintf("block-%d.sh", cur)))
	}
	return e
}

// trapRecord is what the ERR or DEBUG trap wrote: status, source file, line, command.
type trapRecord struct {
	Status  int
	Source  string
	Line    int
	Command string
}

func readTrap(file string) (trapRecord, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return trapRecord{}, false
	}
	f := strings.SplitN(string(b), "\n", 4)
	if len(f) < 4 {
		return trapRecord{}, false
	}
	status, _ := strconv.Atoi(f[0])
	line, _ := strconv.Atoi(f[2])
	return trapRecord{Status: status, Source: f[1], Line: line, Command: f[3]}, true
}

// locate sets the failing line and command from a trap record made while blockFile was running.
func (e *blockError) locate(rec trapRecord, blockFile string) {
	if rec.Status > 0 {
		e.Status = rec.Status
	}
	e.Command = rec.Command
	if rec.Source == blockFile {
		e.Line, e.Command = commandAt(e.Block.Lines, rec.Line)
	}
}

// runFirstCommand runs line with bash in dir in its own process group, waits until the gateway is
// ready (it logs "sealpost serving", or addr accepts), interrupts the gateway with SIGINT and waits for
// the command to exit 0.
func runFirstCommand(ctx context.Context, dir string, env []string, line, addr string, limit time.Duration) (string, error) {
	out := &logtest.Buffer{}
	cmd := exec.Command("bash", "-c", line)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopGroup(pgid)

	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	// Only its own log line counts: something else answering on addr (another sealpost started by a
	// parallel run) must not make a gateway that is still compiling look ready.
	for !strings.Contains(out.String(), "sealpost serving") {
		select {
		case err := <-exited:
			return out.String(), fmt.Errorf("exited before it was ready (%v)", err)
		case <-ctx.Done():
			stopGroup(pgid)
			<-exited
			return out.String(), fmt.Errorf("not ready (no \"sealpost serving\" for %s) within %v", addr, limit)
		case <-tick.C:
		}
	}
	if err := interruptGateway(pgid); err != nil {
		return out.String(), fmt.Errorf("interrupt: %w", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			return out.String(), fmt.Errorf("after SIGINT: %v, want exit 0", err)
		}
		return out.String(), nil
	case <-time.After(30 * time.Second):
		stopGroup(pgid)
		<-exited
		return out.String(), errors.New("still running 30s after SIGINT")
	}
}

// readmeStopGrace is how long stopGroup lets processes stop on SIGTERM before it sends SIGKILL.
var readmeStopGrace = 10 * time.Second

// stopGroup ends every process left in process group pgid: SIGTERM (bash starts `&` jobs with SIGINT
// ignored; sealpost stops cleanly on SIGTERM), then SIGKILL for what is still there after readmeStopGrace.
func stopGroup(pgid int) error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if !groupAlive(pgid) {
			return nil
		}
		syscall.Kill(-pgid, sig)
		for deadline := time.Now().Add(readmeStopGrace); groupAlive(pgid) && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if groupAlive(pgid) {
		return fmt.Errorf("processes of group %d survive SIGKILL", pgid)
	}
	return nil
}

// groupAlive reports whether a process of group pgid still runs.
func groupAlive(pgid int) bool {
	members, ok := groupMembers(pgid)
	if !ok {
		return syscall.Kill(-pgid, 0) == nil
	}
	return len(members) > 0
}

// groupMembers returns the running processes of group pgid, pid to parent pid, from /proc; ok is
// false without /proc. Zombies do not count: whoever inherited an orphan may be slow to reap it.
func groupMembers(pgid int) (parents map[int]int, ok bool) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	parents = map[int]int{}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" || f[2] != strconv.Itoa(pgid) {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parents[pid] = ppid
	}
	return parents, true
}

// interruptGateway sends SIGINT to the processes of group pgid that have no child in it: the gateway
// itself, not the go run that started it. go run exits 1 when it gets SIGINT itself, whatever the
// gateway did (Ctrl-C in a terminal signals both). Without /proc, the whole group gets it.
func interruptGateway(pgid int) error {
	members, ok := groupMembers(pgid)
	if !ok {
		return syscall.Kill(-pgid, syscall.SIGINT)
	}
	hasChild := map[int]bool{}
	for _, ppid := range members {
		hasChild[ppid] = true
	}
	sent := 0
	for pid := range members {
		if !hasChild[pid] {
			if err := syscall.Kill(pid, syscall.SIGINT); err == nil {
				sent++
			}
		}
	}
	if sent == 0 {
		return errors.New("no process left to interrupt")
	}
	return nil
}

// stopGPGAgents stops the gpg-agent of each GnuPG home the blocks made under dir: it leaves the
// process group (it daemonizes), so stopGroup does not reach it.
func stopGPGAgents(t *testing.T, dir string) {
	gpgconf, err := exec.LookPath("gpgconf")
	if err != nil {
		return
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "private-keys-v1.d" {
			home := filepath.Dir(path)
			if out, err := exec.Command(gpgconf, "--homedir", home, "--kill", "all").CombinedOutput(); err != nil {
				t.Logf("gpgconf --homedir %s --kill all: %v\n%s", home, err, out)
			}
			return filepath.SkipDir
		}
		return nil
	})
}

// copyRepo copies the repository at root into dst as a fresh clone would have it: the files git
// tracks, as they are in the working tree; without git, the tree minus .git, data and build outputs.
func copyRepo(root, dst string) (how string, err error) {
	files, gitErr := trackedFiles(root)
	if gitErr != nil {
		files, err = untrackedWalk(root)
		if err != nil {
			return "", err
		}
		how = fmt.Sprintf("git unavailable (%v): the tree without .git, sealpost-data and build outputs", gitErr)
	}
	n := 0
	for _, rel := range files {
		copied, err := copyEntry(filepath.Join(root, rel), filepath.Join(dst, rel))
		if err != nil {
			return "", err
		}
		if copied {
			n++
		}
	}
	if how == "" {
		how = "git ls-files"
	}
	return fmt.Sprintf("%s: %d files", how, n), nil
}

func trackedFiles(root string) ([]string, error) {
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %w", err)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, filepath.FromSlash(f))
		}
	}
	if len(files) == 0 {
		return nil, errors.New("git ls-files lists nothing")
	}
	return files, nil
}

// readmeUntracked are what a developer's tree holds that a clone does not (see .gitignore).
var readmeUntracked = map[string]bool{".git": true, "sealpost-data": true, "data": true, "sealpost": true, "sealpost.exe": true, "cmd/sealpost/sealpost": true}

func untrackedWalk(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.Name() == ".git" || readmeUntracked[filepath.ToSlash(rel)] || strings.HasSuffix(rel, ".test") || strings.HasSuffix(rel, ".prof") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}

// copyEntry copies one file or symbolic link with its permission bits; a tracked file deleted from
// the working tree, or a submodule, is left out.
func copyEntry(src, dst string) (bool, error) {
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) || err == nil && fi.IsDir() {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return false, err
		}
		return true, os.Symlink(target, dst)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return false, err
	}
	return true, os.WriteFile(dst, b, fi.Mode().Perm())
}

// portsFree fails when something listens on one of addrs.
func portsFree(addrs []string) error {
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("another sealpost is running on %s: stop it (%v)", a, err)
		}
		l.Close()
	}
	return nil
}

// readmeContext ends at readmeTotalTimeout, or earlier to leave the test 30 seconds to clean up
// before go test's -timeout.
func readmeContext(t *testing.T) (context.Context, context.CancelFunc) {
	d := time.Now().Add(readmeTotalTimeout)
	if td, ok := t.Deadline(); ok && td.Add(-30*time.Second).Before(d) {
		d = td.Add(-30 * time.Second)
	}
	return context.WithDeadline(context.Background(), d)
}

// readmeEnv is the newcomer's environment (GOCACHE, GOMODCACHE and GOFLAGS inherited, so the build is
// the usual one) with the go found on PATH first, for the blocks' own go commands.
func readmeEnv(goBin string) []string {
	env := append(os.Environ(), readmeNested+"=1")
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env[i] = "PATH=" + filepath.Dir(goBin) + string(os.PathListSeparator) + kv[len("PATH="):]
			return env
		}
	}
	return append(env, "PATH="+filepath.Dir(goBin))
}

// shellQuote quotes s as one bash word.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// tail returns the last n lines of s, indented.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[… %d lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return indent(strings.Join(lines, "\n"))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// TestREADMEBlocks: what the extractor takes for a block, its info string, its line numbers and its
// expected output.
func TestREADMEBlocks(t *testing.T) {
	type block struct {
		Info   string
		Fence  int
		Lines  []string
		Expect int // the fence line of the paired ```text block, 0 for none
	}
	for _, tc := range []struct {
		name string
		doc  string
		want []block
	}{
		{"info strings and line numbers",
			"# t\n\n```sh\necho a\n```\n```json\n{}\n```\n```\nplain\n```\n```console\n$ x\n```\n~~~sh\necho b\n~~~\n",
			[]block{{"sh", 3, []string{"echo a"}, 0}, {"json", 6, []string{"{}"}, 0}, {"", 9, []string{"plain"}, 0},
				{"console", 12, []string{"$ x"}, 0}, {"sh", 15, []string{"echo b"}, 0}}},
		{"info string: first word only", "```sh title=x\necho\n```\n", []block{{"sh", 1, []string{"echo"}, 0}}},
		{"inline code is no fence", "```sh` not a block\ntext\n", nil},
		{"a longer fence holds a shorter one", "````text\n```sh\nx\n```\n````\n", []block{{"text", 1, []string{"```sh", "x", "```"}, 0}}},
		{"tildes are not closed by backticks", "~~~sh\n```\n~~~\n", []block{{"sh", 1, []string{"```"}, 0}}},
		{"indented fence: content loses that indent", "  ```sh\n  echo a\n    echo b\n echo c\n  ```\n",
			[]block{{"sh", 1, []string{"echo a", "  echo b", "echo c"}, 0}}},
		{"four spaces: code, not a fence", "    ```sh\n    echo\n", nil},
		{"blank lines and CRLF kept as lines", "```sh\r\necho a\r\n\r\necho b\r\n```\r\n", []block{{"sh", 1, []string{"echo a", "", "echo b"}, 0}}},
		{"output right after", "```sh\necho hi\n```\n```text\nhi\n```\n",
			[]block{{"sh", 1, []string{"echo hi"}, 4}, {"text", 4, []string{"hi"}, 0}}},
		{"output after blank lines", "```sh\necho hi\n```\n\n\n```text\nhi\n```\n",
			[]block{{"sh", 1, []string{"echo hi"}, 6}, {"text", 6, []string{"hi"}, 0}}},
		{"output after one line of prose ending in a colon", "```sh\necho hi\n```\n\nIt prints:\n\n```text\nhi\n```\n",
			[]block{{"sh", 1, []string{"echo hi"}, 7}, {"text", 7, []string{"hi"}, 0}}},
		{"not output: prose without a colon", "```sh\necho hi\n```\nIt prints this.\n```text\nhi\n```\n",
			[]block{{"sh", 1, []string{"echo hi"}, 0}, {"text", 5, []string{"hi"}, 0}}},
		{"not output: two lines of prose", "```sh\necho hi\n```\nThen\nit prints:\n```text\nhi\n```\n",
			[]block{{"sh", 1, []string{"echo hi"}, 0}, {"text", 6, []string{"hi"}, 0}}},
		{"not output: a block without info string", "```sh\necho hi\n```\n```\nhi\n```\n",
			[]block{{"sh", 1, []string{"echo hi"}, 0}, {"", 4, []string{"hi"}, 0}}},
		{"not output: console", "```sh\necho hi\n```\n```console\nhi\n```\n",
			[]block{{"sh", 1, []string{"echo hi"}, 0}, {"console", 4, []string{"hi"}, 0}}},
		{"not output: text after json", "```json\n{}\n```\n```text\nhi\n```\n",
			[]block{{"json", 1, []string{"{}"}, 0}, {"text", 4, []string{"hi"}, 0}}},
		{"not output: a second text block", "```sh\necho hi\n```\n```text\nhi\n```\n```text\nho\n```\n",
			[]block{{"sh", 1, []string{"echo hi"}, 4}, {"text", 4, []string{"hi"}, 0}, {"text", 7, []string{"ho"}, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocks, err := readmeBlocks(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			var got []block
			for _, b := range blocks {
				g := block{b.Info, b.Fence, b.Lines, 0}
				if b.Expect != nil {
					g.Expect = b.Expect.Fence
				}
				got = append(got, g)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestREADMEBlocksUnclosed: a fence never closed is a mistake in the README, not a block to the end.
func TestREADMEBlocksUnclosed(t *testing.T) {
	if _, err := readmeBlocks("text\n```sh\necho\n"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("got %v, want an error naming line 2", err)
	}
}

// TestREADMEPlan: the first command is the first sh block's first command; later sh blocks run unless
// marked `# not run: REASON`.
func TestREADMEPlan(t *testing.T) {
	doc := "```sh\ngo run ./cmd/sealpost serve   # the gateway\ngo test ./...\n```\n" +
		"```json\n{}\n```\n" +
		"```sh\n# not run: needs root\nsystemctl start sealpost\n```\n" +
		"```sh\necho later\n```\n"
	blocks, err := readmeBlocks(doc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := planREADME(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if p.FirstCommand != "go run ./cmd/sealpost serve   # the gateway" || p.First.Fence != 1 {
		t.Errorf("first command %q at line %d", p.FirstCommand, p.First.Fence)
	}
	if len(p.Later) != 2 {
		t.Fatalf("later blocks: %+v", p.Later)
	}
	if reason, ok := p.Later[0].notRun(); !ok || reason != "needs root" {
		t.Errorf("not run: %q %v, want \"needs root\"", reason, ok)
	}
	if _, ok := p.Later[1].notRun(); ok || p.Later[1].command() != "echo later" {
		t.Errorf("the last block is %q, not run %v", p.Later[1].command(), ok)
	}

	for _, tc := range []struct{ name, doc, want string }{
		{"no sh block", "```json\n{}\n```\n", "no ```sh block"},
		{"no reason", "```sh\ngo run .\n```\n```sh\n# not run\nx\n```\n", "line 5: write why"},
		{"first block only comments", "```sh\n# hello\n```\n", "line 1: the first ```sh block has no command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocks, err := readmeBlocks(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := planREADME(blocks); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestREADMEMatchLine: "…" matches any run of characters within a line; nothing else is special.
func TestREADMEMatchLine(t *testing.T) {
	for _, tc := range []struct {
		name, pattern, line string
		want                bool
	}{
		{"the same", "verdict: verified", "verdict: verified", true},
		{"within a longer line", "250 2.0.0 queued as …", "<~  250 2.0.0 queued as 01J9ZQ", true},
		{"white space around the pattern ignored", "   exit 0  ", "exit 0", true},
		{"… in the middle", "fingerprint=…; registered=yes", "x; fingerprint=ab:cd; registered=yes; y", true},
		{"… matching nothing", "a…b", "ab", true},
		{"several …", "…a…b…c…", "xaybzc", true},
		{"only …", "…", "", true},
		{"a later place for the second piece", "a…b", "a a b", true},
		{"must not match: another word", "verdict: verified", "verdict: unverified", false},
		{"must not match: pieces out of order", "a…b", "b a", false},
		{"must not match: case differs", "Exit 0", "exit 0", false},
		{"must not match: a dot is no wildcard", "1.234", "1,234", false},
		{"must not match: a star is no wildcard", "a*", "abc", false},
		{"must not match: three dots are not …", "queued as ...", "queued as 01J9ZQ", false},
		{"must not match: inner white space counts", "250  2.0.0", "250 2.0.0", false},
		{"must not match: empty line", "x", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := matchLine(tc.pattern, tc.line); got != tc.want {
				t.Errorf("matchLine(%q, %q) = %v, want %v", tc.pattern, tc.line, got, tc.want)
			}
		})
	}
}

// TestREADMEMatchExpected: the expected lines occur in order, each on a later output line.
func TestREADMEMatchExpected(t *testing.T) {
	out := "-> MAIL FROM:<a@b>\r\n<-  250 ok\n-> RCPT TO:<c@d>\n<** 550 5.7.1 no key\nexit 1\n"
	for _, tc := range []struct {
		name     string
		expected []string
		missing  int // -1: all found
	}{
		{"all, in order", []string{"250 ok", "550 5.7.1 …", "exit 1"}, -1},
		{"blank expected lines ignored", []string{"", "250 ok", "  ", "exit 1"}, -1},
		{"nothing expected", nil, -1},
		{"CRLF output: the line end is not part of the line", []string{"MAIL FROM:<a@b>", "<-  250 ok"}, -1},
		{"must not match: out of order", []string{"550 5.7.1", "250 ok"}, 1},
		{"must not match: a line not printed", []string{"250 ok", "verdict: verified"}, 1},
		{"must not match: one output line for two expected lines", []string{"550", "5.7.1"}, 1},
		{"must not match: … does not cross lines", []string{"RCPT…550"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			missing, ok := matchExpected(tc.expected, out)
			if ok != (tc.missing < 0) || missing != tc.missing {
				t.Errorf("matchExpected = %d, %v; want %d", missing, ok, tc.missing)
			}
		})
	}
}

// TestREADMECommandAt: a failing line is reported with the whole command it belongs to.
func TestREADMECommandAt(t *testing.T) {
	lines := []string{
		"echo a",
		"swaks --server x \\",
		"  --body y",
		"openssl cms -decrypt -in m \\",
		"  | openssl cms -verify",
		"false && ",
		"true",
		"echo z",
	}
	for _, tc := range []struct {
		n, first int
		want     string
	}{
		{1, 1, "echo a"},
		{2, 2, "swaks --server x \\\n  --body y"},
		{3, 2, "swaks --server x \\\n  --body y"},
		{5, 4, "openssl cms -decrypt -in m \\\n  | openssl cms -verify"},
		{7, 6, "false && \ntrue"},
		{8, 8, "echo z"},
		{9, 0, ""},
	} {
		if first, got := commandAt(lines, tc.n); first != tc.first || got != tc.want {
			t.Errorf("commandAt(%d) = %d %q, want %d %q", tc.n, first, got, tc.first, tc.want)
		}
	}
}

// TestREADMERunner: blocks share one shell (variables, directory, `&` jobs), the first failing command
// is named with its line, a block out of time is stopped, and nothing a block started survives.
func TestREADMERunner(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	block := func(fence int, lines ...string) readmeBlock {
		return readmeBlock{Info: "sh", Fence: fence, Lines: lines}
	}
	run := func(t *testing.T, perBlock time.Duration, blocks ...readmeBlock) (dir string, outputs []string, err error) {
		dir = t.TempDir()
		err = runBlocks(context.Background(), dir, t.TempDir(), os.Environ(), blocks, perBlock, func(_ readmeBlock, out string, _ time.Duration) {
			outputs = append(outputs, out)
		})
		return dir, outputs, err
	}
	pidOf := func(t *testing.T, file string) int {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	running := func(pid int) bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return syscall.Kill(pid, 0) == nil
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		return len(f) > 0 && f[0] != "Z" && f[0] != "X"
	}

	t.Run("state carries over", func(t *testing.T) {
		_, outputs, err := run(t, time.Minute,
			block(10, "sleep 300 &", "x=kept; mkdir sub; cd sub"),
			block(20, `echo "x=$x jobs=$(jobs -p | wc -l) dir=${PWD##*/}"`, "echo to stderr >&2"),
			block(30, "kill %1"),
		)
		if err != nil {
			t.Fatal(err)
		}
		if len(outputs) != 3 || outputs[1] != "x=kept jobs=1 dir=sub\nto stderr\n" {
			t.Errorf("outputs %q", outputs)
		}
	})
	t.Run("the failing command, its line and status", func(t *testing.T) {
		_, outputs, err := run(t, time.Minute,
			block(10, "echo one"),
			block(20, "echo two", "ls /nonexistent \\", "  -l", "echo not reached"),
			block(30, "echo not run"),
		)
		var be *blockError
		if !errors.As(err, &be) {
			t.Fatalf("got %v, want a *blockError", err)
		}
		if be.Block.Fence != 20 || be.Line != 2 || be.Command != "ls /nonexistent \\\n  -l" || be.Status != 2 || be.TimedOut {
			t.Errorf("got block %d line %d command %q status %d timed out %v", be.Block.Fence, be.Line, be.Command, be.Status, be.TimedOut)
		}
		if !strings.Contains(be.Output, "two\n") || strings.Contains(be.Output, "not reached") || len(outputs) != 1 {
			t.Errorf("output %q, outputs of finished blocks %q", be.Output, outputs)
		}
		if msg := be.Error(); !strings.Contains(msg, "README.md:20: the block \"echo two\" failed with exit status 2 at README.md:22:") {
			t.Errorf("message:\n%s", msg)
		}
	})
	t.Run("a failing pipeline", func(t *testing.T) {
		_, _, err := run(t, time.Minute, block(10, "echo a", "printf 'x\\n' \\", "  | grep y \\", "  | cat"))
		var be *blockError
		if !errors.As(err, &be) || be.Line != 2 || be.Status != 1 {
			t.Fatalf("got %#v", err)
		}
	})
	t.Run("exit in a block", func(t *testing.T) {
		_, _, err := run(t, time.Minute, block(10, "echo a", "exit 3"), block(20, "echo b"))
		var be *blockError
		if !errors.As(err, &be) || be.Block.Fence != 10 || be.Status != 3 || be.Line != 2 {
			t.Fatalf("got %#v", err)
		}
	})
	t.Run("a block out of time; its jobs are stopped", func(t *testing.T) {
		dir, _, err := run(t, 2*time.Second, block(10, "sleep 300 & echo $! > bg.pid", "sleep 0.1", "sleep 60"))
		var be *blockError
		if !errors.As(err, &be) || !be.TimedOut || be.Line != 3 || be.Command != "sleep 60" {
			t.Fatalf("got %#v", err)
		}
		if msg := be.Error(); !strings.Contains(msg, "did not finish within 2s at README.md:13:") {
			t.Errorf("message:\n%s", msg)
		}
		if pid := pidOf(t, filepath.Join(dir, "bg.pid")); running(pid) {
			t.Errorf("the block's background job %d survived", pid)
		}
	})
	t.Run("jobs left running at the end are stopped", func(t *testing.T) {
		defer func(g time.Duration) { readmeStopGrace = g }(readmeStopGrace)
		readmeStopGrace = time.Second // the stubborn job needs SIGKILL
		dir, _, err := run(t, time.Minute, block(10, "sleep 300 & echo $! > bg.pid", "(trap '' TERM; sleep 300) & echo $! > stubborn.pid"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"bg.pid", "stubborn.pid"} {
			if pid := pidOf(t, filepath.Join(dir, f)); running(pid) {
				t.Errorf("%s: %d survived", f, pid)
			}
		}
	})
}

// TestREADMECopyWithoutGit: without git, the copy leaves out what a clone would not have.
func TestREADMECopyWithoutGit(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"go.mod", "README.md", "cmd/sealpost/main.go", "testdata/sealpost/x.pem", ".ci/run",
		".git/HEAD", "sealpost-data/ca.key", "data/x", "sealpost", "cmd/sealpost/sealpost", "cmd/sealpost/sealpost.test", "cpu.prof"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, ".ci/run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := trackedFiles(root); err == nil {
		t.Skip("the temporary directory is inside a git repository")
	}
	dst := t.TempDir()
	how, err := copyRepo(root, dst)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(dst, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dst, path)
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	want := []string{".ci/run", "README.md", "cmd/sealpost/main.go", "go.mod", "testdata/sealpost/x.pem"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("copied %q (%s), want %q", got, how, want)
	}
	if fi, err := os.Stat(filepath.Join(dst, ".ci/run")); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o755 {
		t.Errorf(".ci/run has mode %v, want 0755 as in the tree", fi.Mode().Perm())
	}
}
