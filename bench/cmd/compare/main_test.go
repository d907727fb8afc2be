package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/databridge-go/databridge/bench/internal/compare"
	"github.com/databridge-go/databridge/bench/internal/devserver"
)

func TestMain(m *testing.M) {
	devserver.MaybeServeChild() // the spawned dev server runs this binary
	os.Exit(m.Run())
}

// TestQuickRun runs the command as a newcomer would, in -quick mode, with
// its own embedded dev server (MONGODB_URI is ignored so the spawn path is
// tested too), and checks the report, JSON and chart it writes.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole comparison (about 30 s)")
	}
	t.Setenv("MONGODB_URI", "")
	out := t.TempDir()
	table := filepath.Join(out, "table.md")
	require.NoError(t, run([]string{"-quick", "-out", out, "-table", table}))

	dirs, err := filepath.Glob(filepath.Join(out, "*", "results.json"))
	require.NoError(t, err)
	require.Len(t, dirs, 1)
	dir := filepath.Dir(dirs[0])

	var rep compare.Report
	js, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(js, &rep))
	require.Len(t, rep.Rows, 9)
	assert.Equal(t, "insert_one", rep.Rows[0].Name, "the spec's four rows come first")
	assert.Equal(t, "bulk_update(1000)", rep.Rows[3].Name)
	for _, row := range rep.Rows {
		assert.Positive(t, row.Databridge.CPUPerOp, row.Name)
		assert.Positive(t, row.Driver.WallMedian, row.Name)
		assert.Positive(t, row.CPUSpeedup, row.Name)
		if serverBound := row.Name == "bulk_update(1000)" || row.Name == "bulk_save(1000)"; serverBound && runtime.GOOS == "linux" {
			assert.Positive(t, row.CallerSpeedup, "%s: the caller thread's CPU is measured", row.Name)
		} else if !serverBound {
			assert.Zero(t, row.CallerSpeedup, "%s: no caller-thread figure (the lock would cost the row)", row.Name)
		}
	}
	assert.True(t, rep.Quick)
	assert.NotEmpty(t, rep.GoVersion)

	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| insert_one |")
	assert.Contains(t, string(md), "chart.png")

	f, err := os.Open(filepath.Join(dir, "chart.png"))
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx(), 500)

	tb, err := os.ReadFile(table)
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(string(tb), "\n") {
		if strings.HasPrefix(l, "| ") {
			lines = append(lines, l)
		}
	}
	assert.Len(t, lines, 1+9+1+2, "header and 9 rows, then the floor table's header and its 2 rows")
	assert.Contains(t, string(tb), "raw floor")

	for _, row := range rep.Rows {
		if !strings.HasPrefix(row.Name, "find_many(100)") || strings.HasSuffix(row.Name, "cached") {
			assert.Nil(t, row.Floor, "%s has no floor", row.Name)
			continue
		}
		require.NotNil(t, row.Floor, "%s measures the raw floor", row.Name)
		assert.Positive(t, row.Floor.CPUPerOp, row.Name)
		assert.Positive(t, row.Floor.Ratio, row.Name)
		assert.Equal(t, row.Floor.Pairs, row.Pairs, "the floor runs in the same blocks")
		assert.Contains(t, []string{"pass", "fail", "inconclusive"}, row.Floor.Verdict)
	}
}
