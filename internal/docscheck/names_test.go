package docscheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// packages are the directories whose names the docs cite as `dir.Name`
// (public packages, and internal ones for their tests).
var packages = []string{
	"decode", "cursor", "query", "cache", "coherence", "odm",
	"internal/testdb", "internal/outcome", "internal/closecur", "internal/encode", "internal/pipeline",
}

// declared returns every name a package directory declares at top level
// (its test files included, so that docs may cite tests), and for each
// type its fields and methods, as "Type.Member".
func declared(t *testing.T, dir string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, file := range files {
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					names[d.Name.Name] = true
					continue
				}
				recv := d.Recv.List[0].Type
				for {
					switch r := recv.(type) {
					case *ast.StarExpr:
						recv = r.X
						continue
					case *ast.IndexExpr:
						recv = r.X
						continue
					case *ast.IndexListExpr:
						recv = r.X
						continue
					}
					break
				}
				if id, ok := recv.(*ast.Ident); ok {
					names[id.Name+"."+d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						names[s.Name.Name] = true
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, field := range st.Fields.List {
								for _, n := range field.Names {
									names[s.Name.Name+"."+n.Name] = true
								}
							}
						}
						if it, ok := s.Type.(*ast.InterfaceType); ok {
							for _, m := range it.Methods.List {
								for _, n := range m.Names {
									names[s.Name.Name+"."+n.Name] = true
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							names[n.Name] = true
						}
					}
				}
			}
		}
	}
	return names
}

var (
	codeSpan = regexp.MustCompile("`[^`\n]+`")
	cited    = regexp.MustCompile(`(?:^|[^A-Za-z0-9_/.])((?:internal/)?[a-z]+)\.([A-Z][A-Za-z0-9_]*)(?:\.([A-Z][A-Za-z0-9_]*))?`)
)

// TestDocsNameExistingIdentifiers fails when README.md or a page of docs/
// cites, in a code span, an identifier of this module that no longer
// exists: `pkg.Name`, `pkg.Type.Member`, `pkg.Method` (a method of one of
// its types), or a test, benchmark or fuzz target. Old names are allowed only in the first column of a table whose
// header's first cell is "before" (the renames in docs/migration.md).
func TestDocsNameExistingIdentifiers(t *testing.T) {
	known := map[string]map[string]bool{}
	for _, dir := range packages {
		known[dir] = declared(t, dir)
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	docs = append(docs, filepath.Join(root, "README.md"))
	checked := 0
	var missing []string
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		require.NoError(t, err)
		renames := false // inside a "before | now" table
		for n, line := range strings.Split(string(text), "\n") {
			cells := strings.Split(line, "|")
			if strings.HasPrefix(line, "|") && len(cells) > 2 {
				if strings.TrimSpace(cells[1]) == "before" {
					renames = true
				}
				if renames {
					line = strings.Join(cells[2:], "|") // the old names are history
				}
			} else {
				renames = false
			}
			for _, span := range codeSpan.FindAllString(line, -1) {
				for _, m := range cited.FindAllStringSubmatch(span, -1) {
					pkg, name, member := m[1], m[2], m[3]
					names, ok := known[pkg]
					if !ok {
						continue // the driver's or the standard library's
					}
					checked++
					id := name
					if member != "" && !names[name+"."+member] && names[name] && isType(name, names) {
						id = name + "." + member
					}
					if !names[id] && (member != "" || !isMember(name, names)) {
						missing = append(missing, filepath.Base(doc)+":"+strconv.Itoa(n+1)+": "+pkg+"."+id)
					}
				}
			}
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "the docs cite identifiers that do not exist")
	assert.Greater(t, checked, 100, "the check found what to check")
}

// isMember reports whether name is a field or method of some type of the
// package: docs cite methods as `odm.Save` or `cache.Invalidate`.
func isMember(name string, names map[string]bool) bool {
	for k := range names {
		if strings.HasSuffix(k, "."+name) {
			return true
		}
	}
	return false
}

// isType reports whether name has members recorded (fields or methods),
// so that a cited Type.Member must be one of them.
func isType(name string, names map[string]bool) bool {
	for k := range names {
		if strings.HasPrefix(k, name+".") {
			return true
		}
	}
	return false
}
