// Package leakcheck fails a test that leaves goroutines of this module
// running. It looks only at goroutines with a databridge frame on their stack
// (the driver's connection pool keeps its own goroutines, which are not
// leaks), so it needs no dependency beyond the standard library.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

const module = "github.com/databridge-go/databridge/"

// Check registers a cleanup that waits up to timeout for every goroutine
// running databridge code (other than the test's own) to exit, and fails the
// test with their stacks if some remain.
func Check(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	tb.Cleanup(func() {
		deadline := time.Now().Add(timeout)
		for {
			leaked := Leaked()
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				tb.Errorf("leakcheck: %d goroutine(s) still running databridge code:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// Leaked returns the stacks of goroutines running databridge code, except
// test goroutines (those started by the testing package).
func Leaked() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, module) || strings.Contains(g, "testing.tRunner") ||
			strings.Contains(g, "leakcheck.Leaked") {
			continue
		}
		out = append(out, g)
	}
	return out
}
