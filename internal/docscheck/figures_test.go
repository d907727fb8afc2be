package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	// figure is a measured quantity: a time per operation in µs or ns, or
	// a ratio such as 2.7x.
	figure    = regexp.MustCompile(`\d[\d,.]*\s?(µs|ns)\b|\b\d+(\.\d+)?x\b`)
	dated     = regexp.MustCompile(`\b20\d\d-\d\d-\d\d\b`)
	command   = regexp.MustCompile("`[^`]*(go test|go run|make |cd bench|benchstat|valgrind)[^`]*`|`[a-z/]+\\.(Benchmark|Test|Fuzz)\\w+`|`(Benchmark|Test)\\w+`")
	generated = regexp.MustCompile(`(?s)<!-- BENCH:START -->.*?<!-- BENCH:END -->`)
	fenced    = regexp.MustCompile("(?s)```.*?```")
)

// TestFiguresNameTheirSource fails when a paragraph or table of README.md
// or docs/ quotes a measured figure (a time in µs or ns, or a ratio like
// 2.7x) without saying where it comes from: a command (or the benchmark or
// test that measures it) and the date it ran, in the paragraph itself or,
// for a table, in the paragraph that introduces it. The README's generated
// results (between the BENCH markers) carry their own stamp.
func TestFiguresNameTheirSource(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	docs = append(docs, filepath.Join(root, "README.md"))
	checked := 0
	for _, doc := range docs {
		raw, err := os.ReadFile(doc)
		require.NoError(t, err)
		text := fenced.ReplaceAllString(generated.ReplaceAllString(string(raw), ""), "")
		prev := ""
		for _, para := range regexp.MustCompile(`\n\s*\n`).Split(text, -1) {
			context := para
			if strings.HasPrefix(strings.TrimSpace(para), "|") {
				context = prev + "\n" + para
			}
			if figure.MatchString(para) {
				checked++
				first, _, _ := strings.Cut(strings.TrimSpace(para), "\n")
				assert.True(t, dated.MatchString(context) && command.MatchString(context),
					"%s: a figure without its command and date:\n%s", filepath.Base(doc), first)
			}
			prev = para
		}
	}
	assert.Greater(t, checked, 10, "the check found figures to check")
}
