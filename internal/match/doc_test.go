package match_test

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/databridge-go/databridge/internal/match"
)

// TestDocsListTheOperators fails when docs/caching.md's list of the
// operators a precise read may use ("**Which reads are precise.**", in
// "## Precise invalidation") differs from the matcher's table, or when
// that paragraph cannot be found.
func TestDocsListTheOperators(t *testing.T) {
	doc, err := os.ReadFile("../../docs/caching.md")
	require.NoError(t, err)
	listed, err := docOperators(string(doc))
	require.NoError(t, err, "docs/caching.md")

	table := match.Operators()
	var twice []string
	for i, name := range listed {
		if slices.Contains(listed[:i], name) {
			twice = append(twice, name)
		}
	}
	assert.Empty(t, twice, "docs/caching.md lists these twice")
	assert.Empty(t, missing(table, listed), "docs/caching.md lists operators the matcher's table (internal/match/operators.go) lacks")
	assert.Empty(t, missing(listed, table), "the matcher's table (internal/match/operators.go) has operators docs/caching.md does not list")
}

func TestDocOperatorsNeedsTheParagraph(t *testing.T) {
	const para = "**Which reads are precise.** A read whose filter uses only `$eq` and\n`$in`, on\ntop-level paths (not `$where`)."
	tests := []struct {
		name    string
		give    string
		want    []string
		wantErr string
	}{
		{"found", "# Caching\n\n## Precise invalidation\n\nText.\n\n" + para + "\n\n## Next\n", []string{"$eq", "$in"}, ""},
		{"section renamed", "## Invalidation\n\n" + para + "\n", nil, "no section"},
		{"paragraph renamed", "## Precise invalidation\n\n" + strings.Replace(para, "Which reads", "What", 1) + "\n", nil, "no paragraph"},
		{"paragraph in another section", "## Precise invalidation\n\nText.\n\n## Other\n\n" + para + "\n", nil, "no paragraph"},
		{"list reworded", "## Precise invalidation\n\n" + strings.Replace(para, "uses only", "may use", 1) + "\n", nil, "whose filter uses only"},
		{"no names", "## Precise invalidation\n\n**Which reads are precise.** whose filter uses only equality, on top-level paths\n", nil, "no operators"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := docOperators(tt.give)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

var backquotedOperator = regexp.MustCompile("`(\\$[A-Za-z]+)`")

// docOperators returns the backquoted operators that the paragraph
// starting "**Which reads are precise.**" of the section "## Precise
// invalidation" lists between "whose filter uses only" and "on
// top-level", in the order it lists them.
func docOperators(doc string) ([]string, error) {
	_, section, ok := strings.Cut("\n"+doc, "\n## Precise invalidation\n")
	if !ok {
		return nil, errors.New(`no section "## Precise invalidation"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, para, ok := strings.Cut(section, "\n**Which reads are precise.**")
	if !ok {
		return nil, errors.New(`no paragraph "**Which reads are precise.**" in "## Precise invalidation"`)
	}
	para, _, _ = strings.Cut(para, "\n\n")
	para = strings.Join(strings.Fields(para), " ") // the list wraps across lines
	_, list, ok := strings.Cut(para, "whose filter uses only")
	if !ok {
		return nil, errors.New(`"**Which reads are precise.**" no longer says "whose filter uses only"`)
	}
	list, _, ok = strings.Cut(list, "on top-level")
	if !ok {
		return nil, errors.New(`"**Which reads are precise.**" no longer says "on top-level" after its list`)
	}
	var names []string
	for _, m := range backquotedOperator.FindAllStringSubmatch(list, -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no operators between %q and %q", "whose filter uses only", "on top-level")
	}
	return names, nil
}

// missing returns the names in want that have is missing.
func missing(have, want []string) []string {
	var out []string
	for _, name := range want {
		if !slices.Contains(have, name) {
			out = append(out, name)
		}
	}
	return out
}
