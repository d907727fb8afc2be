package fleet_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/databridge-go/databridge/bench/internal/fleet"
	"github.com/databridge-go/databridge/bench/internal/precision"
	"github.com/databridge-go/databridge/cache"
)

// TestMain lets this test binary serve as the workers Run starts.
func TestMain(m *testing.M) {
	fleet.MaybeServeWorker()
	os.Exit(m.Run())
}

// TestRun runs a short fleet round (2 workers, 3 s phases, 200 orders)
// against MONGODB_URI: every configuration reads and writes, the results
// read in every process hash as their truths do (no more than 1% of
// misses match no state of the collection: a mismatch between a worker's
// reads and the parent's would make them all), the fleets measure
// propagation, and no worker process is left behind.
func TestRun(t *testing.T) {
	uri := os.Getenv("MONGODB_URI")
	if uri == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("MONGODB_URI not set (CI=true, so this is a failure, not a skip)")
		}
		t.Skip("NOT RUN: MONGODB_URI not set (start a dev server with `make devserver` and set MONGODB_URI=mongodb://127.0.0.1:27017/)")
	}
	cfg := fleet.Config{Workers: 2, Config: precision.Config{
		URI: uri, Docs: 200, Tenants: 20, Phase: 3 * time.Second, Rounds: 1, TTL: 10 * time.Minute,
		WritePercent: 10, RawPercent: 50, Progress: testWriter{t},
	}}
	phases, err := fleet.Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, phases, len(fleet.Configurations))
	for i, p := range phases {
		c := fleet.Configurations[i]
		assert.Equal(t, c.Name, p.Config)
		tot := p.Total()
		assert.Positive(t, tot.Reads, c.Name)
		assert.Positive(t, tot.Hits, c.Name)
		assert.Positive(t, p.Writes, c.Name)
		assert.LessOrEqual(t, p.Racing, tot.Reads/100, "%s: misses matching no state", c.Name)
		assert.Len(t, p.Stats, map[bool]int{false: 1, true: cfg.Workers}[c.Fleet], c.Name)
		if c.Fleet {
			assert.Positive(t, len(p.Propagation)+p.Timeouts, "%s: probes", c.Name)
			var remote uint64
			for _, s := range p.Stats {
				remote += s.Remote
			}
			assert.Positive(t, remote, "%s: remote invalidations (the logs recovered from %d errors, such as %q)", c.Name, p.LogErrors, p.LogError)
		}
	}
	assert.Empty(t, children(), "worker processes left behind")

	var b bytes.Buffer
	fleet.Report(&b, cfg, phases, time.Minute)
	t.Log("\n" + b.String())
	for _, c := range fleet.Configurations {
		assert.Contains(t, b.String(), "| "+c.Name+" |")
	}
}

// TestReport checks the report's arithmetic on made-up phases.
func TestReport(t *testing.T) {
	phase := func(conf string, hits int, prop ...time.Duration) fleet.Phase {
		return fleet.Phase{Config: conf, Round: 1, Workers: 3,
			Shapes: map[string]*precision.Counts{"list": {Reads: 100, Hits: hits, Ideal: 50}},
			Stale:  map[string]int{"list": 2}, Writes: 10,
			Stats:       []cache.Stats{{Remote: 5, RemotePrecise: 3}, {Remote: 1}},
			Propagation: prop,
		}
	}
	phases := []fleet.Phase{
		phase("one process", 45),
		phase("fleet, namespace events", 20, 10*time.Millisecond, 30*time.Millisecond),
		phase("fleet, descriptor events", 40, 20*time.Millisecond),
	}
	var b bytes.Buffer
	fleet.Report(&b, fleet.Config{Workers: 3}, phases, time.Minute)
	out := b.String()
	tests := []struct{ give, want string }{
		{"one process row", "| one process | 3 | 100 | 0.450 | 0.500 | **0.900** | 0.900–0.900 | 2 | 10 | – | – |"},
		{"namespace row", "| fleet, namespace events | 3 | 100 | 0.200 | 0.500 | **0.400** | 0.400–0.400 | 2 | 10 | 3 / 3 | 10.0 ms / 30.0 ms (2) |"},
		{"gap", "**-0.100** precision (fleet with namespace events − one process: -0.500)"},
		{"stale by shape", "fleet, descriptor events: 2 stale hits (list 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			assert.Contains(t, out, tt.want)
		})
	}
}

// children returns the pids of this process's children (Linux; none
// elsewhere).
func children() []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // it exited
		}
		// pid (comm) state ppid …: comm may hold spaces, not ")".
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(f, "/proc/"), "/stat"))
			out = append(out, pid)
		}
	}
	return out
}

// testWriter sends Run's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
