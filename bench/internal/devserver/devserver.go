// Package devserver runs the embedded MongoDB wire-protocol server (FerretDB
// v1.24 with its SQLite backend) used by databridge's tests and benchmarks,
// in this process (Serve) or, so that a client's CPU time can be measured
// apart from the server's, as a child process (Spawn).
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"

	"github.com/databridge-go/databridge/internal/devproc"
)

// ChildEnv is set in the environment of a process started by Spawn; a
// program that calls MaybeServeChild first becomes the server.
const ChildEnv = "DATABRIDGE_DEVSERVER_CHILD"

// Serve runs the server on addr until ctx is done. dataDir "" means a new
// temporary directory under /dev/shm when it exists (a probe measured
// insert_one at ~0.4 ms there against ~1.5 ms on disk), removed on return.
// ready is called with the server's MongoDB URI once it accepts connections.
func Serve(ctx context.Context, addr, dataDir string, ready func(uri string)) error {
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	if dataDir == "" {
		base := ""
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			base = "/dev/shm"
		}
		tmp, err := os.MkdirTemp(base, "databridge-devserver-")
		if err != nil {
			return fmt.Errorf("devserver: data dir: %w", err)
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	} else if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("devserver: data dir: %w", err)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    newLogger(os.Stderr),
		Handler:   "sqlite",
		SQLiteURL: "file:" + strings.TrimSuffix(dataDir, "/") + "/",
	})
	if err != nil {
		return fmt.Errorf("devserver: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	// MongoDBURI blocks until the listener is ready; if Run fails first
	// (the address is in use, say) report that instead of hanging.
	uri := make(chan string, 1)
	go func() { uri <- f.MongoDBURI() }()
	select {
	case u := <-uri:
		ready(u)
	case err := <-done:
		if err == nil {
			err = errors.New("devserver: stopped before it was ready")
		}
		return err
	}
	return <-done
}

// logPrefix starts each line of FerretDB's log, so that in the middle of a
// test run it reads as the dev server's, not as a test's failure.
const logPrefix = "devserver (FerretDB): "

// newLogger returns FerretDB's logger: ERROR and above, each line after
// logPrefix. FerretDB logs the errors it answers clients with below ERROR;
// what it logs from ERROR up is described in cmd/devserver's documentation.
// A failure to start is Serve's error, not a log line.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(prefixed{w}, &slog.HandlerOptions{Level: slog.LevelError}))
}

// prefixed writes logPrefix before each write: a slog.TextHandler writes
// each record, one line, in one Write.
type prefixed struct{ w io.Writer }

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(logPrefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// BinaryEnv names a prebuilt devserver binary for Spawn to run instead of
// re-executing the current program (make test sets it, so that a test
// binary built with -race does not run the server under the race detector).
const BinaryEnv = "DATABRIDGE_DEVSERVER"

// Spawn starts the server as a child process and returns its URI and a
// function that stops it. The child is the binary named by BinaryEnv, or
// else this same executable, which must then call MaybeServeChild at the top
// of main or TestMain.
func Spawn(ctx context.Context) (uri string, stop func() error, err error) {
	var cmd *exec.Cmd
	if bin := os.Getenv(BinaryEnv); bin != "" {
		cmd = exec.Command(bin, "-addr", "127.0.0.1:0")
	} else {
		exe, err := os.Executable()
		if err != nil {
			return "", nil, err
		}
		cmd = exec.Command(exe)
		cmd.Env = append(os.Environ(), ChildEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	wait, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	uri, err = devproc.Start(wait, cmd)
	if err != nil {
		return "", nil, fmt.Errorf("devserver: %w", err)
	}
	stop = func() error {
		_ = cmd.Process.Signal(os.Interrupt)
		errc := make(chan error, 1)
		go func() { errc <- cmd.Wait() }()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			return <-errc
		}
	}
	return uri, stop, nil
}

// MaybeServeChild makes a process started by Spawn serve and exit; in any
// other process it returns at once.
func MaybeServeChild() {
	if os.Getenv(ChildEnv) != "1" {
		return
	}
	ctx, cancel := signalContext()
	defer cancel()
	err := Serve(ctx, "127.0.0.1:0", "", func(uri string) { fmt.Println(uri) })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}
