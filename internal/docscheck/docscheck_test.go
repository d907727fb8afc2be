// Package docscheck keeps the Go code in the README and docs/ honest: every
// Go code block must be preceded by a snippet marker naming a file of this
// repository, and must appear in that file verbatim. The files are compiled
// by go vet and run by the integration suite, so no snippet can rot.
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
	goBlock = regexp.MustCompile("(?s)(<!-- snippet: ([^ ]+) -->\n)?```go\n(.*?)```")
	root    = filepath.Join("..", "..")
)

func TestGoSnippetsComeFromCompiledFiles(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	docs = append(docs, filepath.Join(root, "README.md"))
	checked := 0
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		require.NoError(t, err)
		for _, m := range goBlock.FindAllSubmatch(text, -1) {
			name := filepath.Base(doc)
			file, code := string(m[2]), string(m[3])
			if !assert.NotEmpty(t, file, "%s: a Go code block has no snippet marker:\n%s", name, code) {
				continue
			}
			src, err := os.ReadFile(filepath.Join(root, file))
			if assert.NoError(t, err, "%s names %s", name, file) {
				assert.True(t, strings.Contains(string(src), code), "%s: snippet is not verbatim in %s:\n%s", name, file, code)
			}
			checked++
		}
	}
	assert.GreaterOrEqual(t, checked, 3)
}
