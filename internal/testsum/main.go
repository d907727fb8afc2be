// Command testsum reads `go test -json` output on standard input and
// prints what a person needs at a glance: each package's result as go test
// prints it, then a summary per package (passed, skipped, failed), the
// name and reason of every skipped test (the NOT RUN ones among them), and
// a closing line "N passed, N failed, N skipped". It exits 1 when a test or
// a package failed. make test (scripts/test.sh) pipes into it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type pkg struct {
	passed, failed, skipped int
	failedPkg               bool
	noTests                 bool
}

func main() {
	os.Exit(run(os.Stdin, os.Stdout))
}

// run reads go test -json events from in and writes each package's result
// as it ends, then the summary. It is one pass over the event stream, whose
// event kinds share its state.
func run(in io.Reader, out io.Writer) int {
	pkgs := map[string]*pkg{}
	outputs := map[string][]string{} // package/test → its output lines
	var skips []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(out, sc.Text()) // not JSON: a build error, say
			continue
		}
		p := pkgs[e.Package]
		if p == nil {
			p = &pkg{}
			pkgs[e.Package] = p
		}
		key := e.Package + "/" + e.Test
		switch e.Action {
		case "output":
			if e.Test == "" {
				// Package-level lines: go test's own ok/FAIL/no test files.
				if strings.HasPrefix(e.Output, "ok ") || strings.HasPrefix(e.Output, "FAIL") || strings.HasPrefix(e.Output, "?") || strings.HasPrefix(e.Output, "---") || strings.HasPrefix(e.Output, "panic") {
					fmt.Fprint(out, e.Output)
				}
				if strings.Contains(e.Output, "[no test files]") {
					p.noTests = true
				}
				continue
			}
			outputs[key] = append(outputs[key], e.Output)
		case "pass":
			if e.Test != "" {
				p.passed++
			}
		case "fail":
			if e.Test == "" {
				p.failedPkg = true
				continue
			}
			p.failed++
			for _, l := range outputs[key] {
				fmt.Fprint(out, l)
			}
		case "skip":
			if e.Test == "" {
				continue
			}
			p.skipped++
			skips = append(skips, fmt.Sprintf("%s %s: %s", short(e.Package), e.Test, reason(outputs[key])))
		}
		if e.Action == "pass" || e.Action == "fail" || e.Action == "skip" {
			delete(outputs, key)
		}
	}
	return summarize(out, pkgs, skips)
}

// summarize writes the summary: each package's counts, the skipped tests
// with their reasons, and the closing line. It returns the exit status.
func summarize(out io.Writer, pkgs map[string]*pkg, skips []string) int {
	names := make([]string, 0, len(pkgs))
	for n := range pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	var passed, failed, skipped int
	fmt.Fprintln(out, "\n==> summary: tests passed / skipped / failed per package")
	for _, n := range names {
		p := pkgs[n]
		passed, failed, skipped = passed+p.passed, failed+p.failed, skipped+p.skipped
		if p.noTests && p.passed+p.failed+p.skipped == 0 {
			continue
		}
		mark := ""
		if p.failed > 0 || p.failedPkg {
			mark = "  FAIL"
		}
		fmt.Fprintf(out, "%-52s %4d / %3d / %3d%s\n", short(n), p.passed, p.skipped, p.failed, mark)
	}
	if len(skips) > 0 {
		fmt.Fprintf(out, "\n==> %d skipped, with their reasons\n", len(skips))
		sort.Strings(skips)
		for _, s := range skips {
			fmt.Fprintln(out, s)
		}
	}
	failedPkgs := 0
	for _, p := range pkgs {
		if p.failedPkg {
			failedPkgs++
		}
	}
	fmt.Fprintf(out, "\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || failedPkgs > 0 {
		return 1
	}
	return 0
}

func short(pkg string) string {
	return strings.TrimPrefix(pkg, "github.com/databridge-go/databridge/")
}

// reason is the skip message: the last output line that is not go test's
// own "--- SKIP" or "=== RUN" line.
func reason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "---") || strings.HasPrefix(l, "===") {
			continue
		}
		if _, after, ok := strings.Cut(l, ".go:"); ok { // "file.go:12: message"
			if _, msg, ok := strings.Cut(after, ": "); ok {
				return msg
			}
		}
		return l
	}
	return "(no reason given)"
}
