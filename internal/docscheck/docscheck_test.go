// Package docscheck keeps the README's code honest: the example in it must
// be, byte for byte, the file it names, which is compiled and run by the
// integration suite.
package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var snippet = regexp.MustCompile("(?s)<!-- snippet: ([^ ]+) -->\n```go\n(.*?)```")

func TestReadmeSnippetsMatchFiles(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	found := snippet.FindAllSubmatch(readme, -1)
	require.NotEmpty(t, found, "README.md has no snippet markers")
	for _, m := range found {
		file := string(m[1])
		t.Run(file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(root, file))
			require.NoError(t, err)
			assert.Equal(t, string(src), string(m[2]), "README snippet differs from %s", file)
		})
	}
}
