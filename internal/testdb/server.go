package testdb

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/databridge-go/databridge/internal/devproc"
)

// EnvServerBinary names a prebuilt dev server binary (make test sets it).
// Fault-injection tests start their own server process with it, so that they
// can kill and restart it without disturbing other tests.
const EnvServerBinary = "DATABRIDGE_DEVSERVER"

// Server is a dev server process owned by one test.
type Server struct {
	tb   testing.TB
	bin  string
	addr string
	dir  string
	cmd  *exec.Cmd
	URI  string
}

// StartServer starts a dev server of the test's own on a free port, with a
// data directory that survives Kill and Restart. It skips (fails under CI)
// when EnvServerBinary is not set.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	bin := os.Getenv(EnvServerBinary)
	if bin == "" {
		unavailable(tb, EnvServerBinary+" is not set: run `make test`, which builds the dev server for fault-injection tests")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testdb: free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{tb: tb, bin: bin, addr: addr, dir: tb.TempDir()}
	s.start()
	tb.Cleanup(s.Kill)
	return s
}

func (s *Server) start() {
	s.tb.Helper()
	cmd := exec.Command(s.bin, "-addr", s.addr, "-data", s.dir)
	cmd.Stderr = os.Stderr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	uri, err := devproc.Start(ctx, cmd)
	if err != nil {
		s.tb.Fatalf("testdb: dev server: %v", err)
	}
	s.URI = uri
	s.cmd = cmd
}

// Kill kills the server process at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same address and data.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	var err error
	for range 50 { // the port may take a moment to be free again
		var l net.Listener
		if l, err = net.Listen("tcp", s.addr); err == nil {
			l.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.tb.Fatalf("testdb: %s still in use: %v", s.addr, err)
	}
	s.start()
}

// String names the server by address.
func (s *Server) String() string { return fmt.Sprintf("dev server %s", s.addr) }
