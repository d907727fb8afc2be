// Package devproc starts a dev server process and waits for the URI it
// prints as its first line of output (the protocol of bench/cmd/devserver),
// for the test helper (internal/testdb) and the benchmark command
// (bench/internal/devserver).
package devproc

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Start starts cmd, whose Stdout must be unset, and returns the mongodb://
// URI it prints first; the rest of its output is drained. If the line is
// not a URI, or ctx ends first, the process is killed and reaped and the
// error says why.
func Start(ctx context.Context, cmd *exec.Cmd) (string, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		for sc.Scan() { // drain
		}
	}()
	fail := func(err error) (string, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", err
	}
	select {
	case u, ok := <-line:
		if !ok || !strings.HasPrefix(u, "mongodb://") {
			return fail(fmt.Errorf("%s did not report a URI (got %q)", cmd.Path, u))
		}
		return u, nil
	case <-ctx.Done():
		return fail(fmt.Errorf("%s did not report a URI: %w", cmd.Path, ctx.Err()))
	}
}
