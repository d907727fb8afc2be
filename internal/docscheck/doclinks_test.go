package docscheck

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// modPkg is one package of the library module as go/doc sees it: what a
// doc link may name ("Name", "Type.Member"), embedded types, and imports by
// name (go/doc resolves [pkg.Name] against all the package's files).
type modPkg struct {
	name    string
	syms    map[string]bool
	embeds  map[string][]string
	imports map[string]string
	files   map[string]*ast.File
}

// has reports whether name is a method, interface method or field of type
// recv, or of a type of the package that recv embeds.
func (p *modPkg) has(recv, name string, depth int) bool {
	if p.syms[recv+"."+name] {
		return true
	}
	for _, e := range p.embeds[recv] {
		if depth < 8 && p.has(e, name, depth+1) {
			return true
		}
	}
	return false
}

// typeName is T for a receiver or embedded T, *T or T[K] (as go/doc names it).
func typeName(x ast.Expr) string {
	name, _, _ := strings.Cut(strings.TrimLeft(types.ExprString(x), "*"), "[")
	return name
}

// importName is the name an import is used by: its explicit name, or its
// path's last element that is not a major version (ristretto/v2).
func importName(spec *ast.ImportSpec, ipath string) string {
	if spec.Name != nil {
		return spec.Name.Name
	}
	dir, last := path.Split(ipath)
	if regexp.MustCompile(`^v[0-9]+$`).MatchString(last) {
		last = path.Base(dir)
	}
	return last
}

// declare records what a file declares at top level in p.
func (p *modPkg) declare(f *ast.File) {
	for _, spec := range f.Imports {
		ipath, _ := strconv.Unquote(spec.Path.Value)
		p.imports[importName(spec, ipath)] = ipath
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Recv != nil {
				p.syms[typeName(d.Recv.List[0].Type)+"."+d.Name.Name] = true
			} else {
				p.syms[d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				p.declareSpec(spec)
			}
		}
	}
}

// declareSpec records a const, var or type, with a type's fields,
// interface methods and embedded types.
func (p *modPkg) declareSpec(spec ast.Spec) {
	switch s := spec.(type) {
	case *ast.ValueSpec:
		for _, n := range s.Names {
			p.syms[n.Name] = true
		}
	case *ast.TypeSpec:
		p.syms[s.Name.Name] = true
		var fields []*ast.Field
		if st, ok := s.Type.(*ast.StructType); ok {
			fields = st.Fields.List // go/doc links fields too
		} else if it, ok := s.Type.(*ast.InterfaceType); ok {
			fields = it.Methods.List
		}
		for _, field := range fields {
			for _, n := range field.Names {
				p.syms[s.Name.Name+"."+n.Name] = true
			}
			if len(field.Names) == 0 {
				p.embeds[s.Name.Name] = append(p.embeds[s.Name.Name], typeName(field.Type))
			}
		}
	}
}

// module is the library module's packages (non-test files; bench/ is
// its own module) by import path, and those a link may name by their last
// path element ("" when two share it; a main package cannot be linked).
type module struct {
	pkgs   map[string]*modPkg
	byName map[string]string
}

func loadModule(t *testing.T, fset *token.FileSet) *module {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	modpath := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(gomod), "\n", 2)[0], "module"))
	m := &module{pkgs: map[string]*modPkg{}, byName: map[string]string{}}
	nested := func(dir string) bool { _, err := os.Stat(filepath.Join(dir, "go.mod")); return err == nil }
	err = filepath.WalkDir(root, func(file string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && file != root && (nested(file) || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")):
			return filepath.SkipDir // bench/ is its own module
		case d.IsDir() || !strings.HasSuffix(file, ".go") || strings.HasSuffix(file, "_test.go"):
			return nil
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(file))
		ip := path.Join(modpath, filepath.ToSlash(rel))
		if m.pkgs[ip] == nil {
			m.pkgs[ip] = &modPkg{name: f.Name.Name, syms: map[string]bool{}, embeds: map[string][]string{},
				imports: map[string]string{}, files: map[string]*ast.File{}}
			base := path.Base(ip)
			if _, dup := m.byName[base]; dup && f.Name.Name != "main" {
				m.byName[base] = "" // ambiguous
			} else if f.Name.Name != "main" {
				m.byName[base] = ip
			}
		}
		m.pkgs[ip].files[file] = f
		m.pkgs[ip].declare(f)
		return nil
	})
	require.NoError(t, err)
	return m
}

var (
	bracketed = regexp.MustCompile(`\[(\*?[A-Za-z_][\w./-]*)\]`)
	docName   = regexp.MustCompile(`^\*?(?:[\w.-]+/)*\w+(?:\.\w+)*$`)
	linkDef   = regexp.MustCompile(`^\s*\[([^\]]+)\]:`)
	listItem  = regexp.MustCompile(`^\s+([-*+•]|[0-9]+[.)])\s`)
)

// docLinks returns the texts of the doc links of one line of comment text:
// a bracketed name ([Name], [Type.Method], [pkg.Name], [*pkg.Name],
// [path/to/pkg.Name]) between spaces or punctuation, as go/doc requires, and
// not followed by "(" or ":" (a Markdown link, a link definition). Single
// letters are type parameters or indexes ([T], [i]), never links.
func docLinks(line string) []string {
	var links []string
	for _, m := range bracketed.FindAllStringSubmatchIndex(line, -1) {
		text, before, after := line[m[2]:m[3]], line[:m[0]], line[m[1]:]
		if !docName.MatchString(text) || len(strings.TrimPrefix(text, "*")) < 2 {
			continue
		}
		if r, _ := utf8.DecodeLastRuneInString(before); before != "" && !unicode.IsPunct(r) && !unicode.IsSpace(r) {
			continue
		}
		if r, _ := utf8.DecodeRuneInString(after); after != "" && (r == '(' || r == ':' || !unicode.IsPunct(r) && !unicode.IsSpace(r)) {
			continue
		}
		links = append(links, text)
	}
	return links
}

// prose yields each line of a comment group that is neither a link
// definition nor in a code block (a span of lines indented after "//" that
// does not start with a list marker), with its line number. The brackets of
// [text] defined by a link definition ("[text]: URL") are dropped.
func prose(fset *token.FileSet, g *ast.CommentGroup, yield func(line int, text string)) {
	var defs []string
	for _, c := range g.List {
		if m := linkDef.FindStringSubmatch(strings.TrimPrefix(c.Text, "//")); m != nil {
			defs = append(defs, "["+m[1]+"]", m[1])
		}
	}
	undef := strings.NewReplacer(defs...)
	const text, list, code = 0, 1, 2
	mode := text
	for _, c := range g.List {
		line := fset.Position(c.Pos()).Line
		if body, ok := strings.CutPrefix(c.Text, "/*"); ok { // no code blocks here
			for i, l := range strings.Split(strings.TrimSuffix(body, "*/"), "\n") {
				yield(line+i, l)
			}
			continue
		}
		s := strings.TrimPrefix(strings.TrimPrefix(c.Text, "//"), " ")
		switch {
		case strings.TrimSpace(s) == "" || linkDef.MatchString(s):
			continue
		case !strings.HasPrefix(s, " ") && !strings.HasPrefix(s, "\t"):
			mode = text
		case mode == text && listItem.MatchString(s):
			mode = list
		case mode == text:
			mode = code
		}
		if mode != code {
			yield(line, undef.Replace(s))
		}
	}
}

// isStd reports whether ip is a package of the standard library.
func isStd(ip string) bool {
	fi, err := os.Stat(filepath.Join(build.Default.GOROOT, "src", filepath.FromSlash(ip)))
	return err == nil && fi.IsDir() && !strings.Contains(strings.Split(ip, "/")[0], ".")
}

// resolve reports whether a doc link in package p names something. Links
// into packages outside this module (the standard library, the driver under
// go.mongodb.org, ristretto, msgpack) are accepted unchecked: they are not
// loaded, and only their package must be known.
func (m *module) resolve(p *modPkg, text string) bool {
	text = strings.TrimPrefix(text, "*")
	pkg, recv, name := text, "", "" // split as go/doc does
	if i := strings.LastIndex(text, "."); i >= 0 && token.IsIdentifier(text[i+1:]) {
		pkg, name = text[:i], text[i+1:]
		if j := strings.LastIndex(pkg, "."); token.IsExported(pkg[j+1:]) {
			pkg, recv = pkg[:max(j, 0)], pkg[j+1:]
		}
	} else if token.IsIdentifier(text) && (p.syms[text] || types.Universe.Lookup(text) != nil) {
		return true // [Name], [unexported], [error]
	}
	target := p
	if pkg != "" && pkg != p.name {
		ip, ok := p.imports[pkg]
		if !ok && strings.Contains(pkg, "/") {
			ip, ok = pkg, true // a full import path
		}
		if !ok {
			ip, ok = m.byName[pkg] // across the module without an import
			ok = ok && ip != ""
		}
		if !ok && isStd(pkg) {
			ip = pkg // go doc knows single-element std paths (context, iter)
		}
		if target, ok = m.pkgs[ip]; !ok {
			return ip != "" && (isStd(ip) || strings.Contains(strings.Split(ip, "/")[0], "."))
		}
	}
	switch {
	case name == "":
		return true // [pkg]
	case recv != "":
		return target.syms[recv] && target.has(recv, name, 0)
	}
	return target.syms[name]
}

// TestGoDocLinksResolve fails when a comment of the library module (its
// non-test files; bench/ is its own module) has a doc link that does not
// resolve: [Name] must be declared in the package (or be predeclared, or
// name a package), [Type.Member] must be a method, field or interface
// method of the type, and [pkg.Name] must name an import of the package
// or, so that package docs can link across the module without importing, a
// package of the module by its last path element; in a package of the
// module the name must exist.
func TestGoDocLinksResolve(t *testing.T) {
	fset := token.NewFileSet()
	m := loadModule(t, fset)
	checked := 0
	var missing []string
	for _, p := range m.pkgs {
		for file, f := range p.files {
			for _, g := range f.Comments {
				prose(fset, g, func(line int, text string) {
					for _, link := range docLinks(text) {
						checked++
						if !m.resolve(p, link) {
							rel, _ := filepath.Rel(root, file)
							missing = append(missing, rel+":"+strconv.Itoa(line)+": ["+link+"] does not resolve")
						}
					}
				})
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d doc links do not resolve:\n%s", len(missing), strings.Join(missing, "\n"))
	}
	assert.Greater(t, checked, 20, "the check found links to check")
	t.Logf("%d doc links checked", checked)
}

func TestResolve(t *testing.T) {
	m := loadModule(t, token.NewFileSet())
	query := m.pkgs["github.com/databridge-go/databridge/query"]
	require.NotNil(t, query)
	tests := []struct {
		give string
		want bool
	}{
		{give: "Eq", want: true},
		{give: "*OperatorError", want: true},
		{give: "query.Not", want: true},
		{give: "Nor", want: false},
		{give: "error", want: true},
		{give: "cursor.Cursor.Next", want: true},      // imported
		{give: "odm.Collection.FindMany", want: true}, // by last element
		{give: "cache.Cache.Invalidate", want: true},  // by last element
		{give: "cache.NoSuchName", want: false},
		{give: "coherence.ChangeStream", want: true}, // examples/coherence is a main
		{give: "Option.NoSuchMethod", want: false},
		{give: "bson.M", want: true},                // imported, not checked
		{give: "context.Context", want: true},       // single-element std
		{give: "json.Marshal", want: false},         // not imported
		{give: "encoding/json.Marshal", want: true}, // full path
		{give: "ristretto.Cache", want: false},      // not imported by query
		{give: "go.mongodb.org/mongo-driver/v2/mongo.Client", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			assert.Equal(t, tt.want, m.resolve(query, tt.give))
		})
	}
}

// TestDocLinks checks the scanner: which bracketed texts of a comment
// are doc links.
func TestDocLinks(t *testing.T) {
	tests := []struct {
		give string // a comment, lines after "// "
		want []string
	}{
		{give: "returns [query.ErrNotFound] when none", want: []string{"query.ErrNotFound"}},
		{give: "fresh a[i] and docs[lo:hi]", want: nil},
		{give: "options ([Sort], [Limit]).", want: []string{"Sort", "Limit"}},
		{give: "a [*Cursor] is single-use", want: []string{"*Cursor"}},
		{give: "[Cursor.Next] and [*odm.Collection]", want: []string{"Cursor.Next", "*odm.Collection"}},
		{give: "see [encoding/json.Marshal]", want: []string{"encoding/json.Marshal"}},
		{give: "see [x](http://example.com)", want: nil},
		{give: "as in [RFC 1234]", want: nil},
		{give: "[text]: https://example.com", want: nil},
		{give: "[T] and [0] and {$nor: [f]}", want: nil},
		{give: "map[string]any and $[identifier]", want: nil},
		{give: "[]byte and [K, V]", want: nil},
		{give: "[Spec] says\n\n[Spec]: https://go.dev/ref/spec", want: nil},
		{give: "For example:\n\n\tx := [Code]\n\n\t[More]\nthen [Prose]", want: []string{"Prose"}},
		{give: "Options:\n  - [Sort] orders,\n    [Limit] caps", want: []string{"Sort", "Limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			fset := token.NewFileSet()
			src := "// " + strings.ReplaceAll(tt.give, "\n", "\n// ") + "\npackage p\n"
			f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
			require.NoError(t, err)
			var got []string
			prose(fset, f.Comments[0], func(_ int, text string) { got = append(got, docLinks(text)...) })
			assert.Equal(t, tt.want, got)
		})
	}
}
