package decode_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/decode"
)

// corpusDir finds the BSON specification's corpus where it already is: in
// the v1 driver module that bench's module graph holds (it is not copied
// into this repository).
func corpusDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-modfile=../bench/go.mod", "-m", "-f", "{{.Dir}}", "go.mongodb.org/mongo-driver").Output()
	dir := filepath.Join(strings.TrimSpace(string(out)), "testdata", "bson-corpus")
	if _, serr := os.Stat(dir); err != nil || serr != nil || strings.TrimSpace(string(out)) == "" {
		msg := "the BSON corpus is not in the module cache (run `cd bench && go mod download`, which make test does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

type corpusFile struct {
	Description string `json:"description"`
	BSONType    string `json:"bson_type"`
	TestKey     string `json:"test_key"`
	Valid       []struct {
		Description    string `json:"description"`
		CanonicalBSON  string `json:"canonical_bson"`
		DegenerateBSON string `json:"degenerate_bson"`
	} `json:"valid"`
	DecodeErrors []struct {
		Description string `json:"description"`
		BSON        string `json:"bson"`
	} `json:"decodeErrors"`
}

// corpusTypes are the Go types each document is decoded into: the natural
// type of its BSON type (decoded natively where decode has a native path),
// and always any, bson.D and map[string]any (delegated, so the driver's
// hazards are behind decode's checks).
var corpusTypes = map[string]reflect.Type{
	"0x01": reflect.TypeFor[float64](),
	"0x02": reflect.TypeFor[string](),
	"0x03": reflect.TypeFor[map[string]any](),
	"0x04": reflect.TypeFor[[]any](),
	"0x05": reflect.TypeFor[[]byte](),
	"0x07": reflect.TypeFor[bson.ObjectID](),
	"0x08": reflect.TypeFor[bool](),
	"0x09": reflect.TypeFor[time.Time](),
	"0x10": reflect.TypeFor[int32](),
	"0x12": reflect.TypeFor[int64](),
}

// TestBSONCorpus runs the specification's corpus through decode and the
// driver: every valid document decodes as the driver decodes it, into each
// target type; every decodeErrors document is refused by decode (and is
// not well-formed by decode.WellFormed, the fuzz target's oracle).
func TestBSONCorpus(t *testing.T) {
	dir := corpusDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	valid, refused := 0, 0
	for _, path := range files {
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		var f corpusFile
		require.NoError(t, json.Unmarshal(raw, &f), path)
		if f.TestKey == "" {
			f.TestKey = "a"
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			targets := []reflect.Type{reflect.TypeFor[any](), reflect.TypeFor[bson.RawValue]()}
			if nt, ok := corpusTypes[f.BSONType]; ok {
				targets = append(targets, nt)
			}
			for _, v := range f.Valid {
				for _, hexDoc := range []string{v.CanonicalBSON, v.DegenerateBSON} {
					if hexDoc == "" {
						continue
					}
					doc, err := hex.DecodeString(hexDoc)
					require.NoError(t, err)
					require.NoError(t, decode.WellFormed(doc), "%s: %s", v.Description, hexDoc)
					for _, whole := range []any{new(bson.D), new(map[string]any), new(bson.M)} {
						corpusParity(t, v.Description, doc, reflect.TypeOf(whole).Elem())
					}
					for _, ft := range targets {
						st := reflect.StructOf([]reflect.StructField{{Name: "V", Type: ft, Tag: reflect.StructTag(`bson:"` + f.TestKey + `"`)}})
						corpusParity(t, v.Description, doc, st)
					}
					valid++
				}
			}
			for _, de := range f.DecodeErrors {
				doc, err := hex.DecodeString(de.BSON)
				require.NoError(t, err)
				// Content checks the driver does not make either (UTF-8 in
				// strings, a boolean byte other than 0 or 1 where no bool is
				// decoded) are matched, not required: decode gives what the
				// driver gives. Every structural error is refused.
				semantic := strings.Contains(de.Description, "UTF-8") || strings.Contains(strings.ToLower(de.Description), "boolean")
				if !semantic {
					assert.Error(t, decode.WellFormed(doc), "%s: well-formed by decode.WellFormed", de.Description)
				}
				for _, whole := range []any{new(bson.D), new(map[string]any)} {
					corpusParity(t, de.Description, doc, reflect.TypeOf(whole).Elem())
					if !semantic {
						assert.Error(t, decode.Into(doc, whole), "%s into %T", de.Description, whole)
					}
				}
				for _, ft := range targets {
					st := reflect.StructOf([]reflect.StructField{{Name: "V", Type: ft, Tag: reflect.StructTag(`bson:"` + f.TestKey + `"`)}})
					if semantic {
						corpusParity(t, de.Description, doc, st)
					} else {
						// A field the type has no place for is skipped
						// unread, by the driver too: decode may be stricter
						// than the driver here, never laxer.
						corpusAtLeastAsStrict(t, de.Description, doc, st)
					}
				}
				refused++
			}
		})
	}
	t.Logf("%d valid documents decoded as the driver does, %d malformed ones refused, from %d corpus files", valid, refused, len(files))
}

// corpusParity decodes doc into a new value of type typ with decode and
// with the driver, and requires the same values, or errors from both.
func corpusParity(t *testing.T, name string, doc []byte, typ reflect.Type) {
	t.Helper()
	want, got := reflect.New(typ), reflect.New(typ)
	werr := driverUnmarshal(doc, want.Interface())
	gerr := decode.Into(doc, got.Interface())
	if werr != nil {
		assert.Error(t, gerr, "%s into %v: the driver fails (%v)", name, typ, werr)
		return
	}
	if assert.NoError(t, gerr, "%s into %v", name, typ) {
		assert.True(t, sameValue(want.Interface(), got.Interface()), "%s into %v:\ndriver: %#v\ndecode: %#v", name, typ, want.Elem(), got.Elem())
	}
}

// corpusAtLeastAsStrict requires decode to fail wherever the driver fails,
// and to agree with it where both succeed.
func corpusAtLeastAsStrict(t *testing.T, name string, doc []byte, typ reflect.Type) {
	t.Helper()
	want, got := reflect.New(typ), reflect.New(typ)
	werr := driverUnmarshal(doc, want.Interface())
	gerr := decode.Into(doc, got.Interface())
	switch {
	case werr != nil:
		assert.Error(t, gerr, "%s into %v: the driver fails (%v)", name, typ, werr)
	case gerr == nil:
		assert.True(t, sameValue(want.Interface(), got.Interface()), "%s into %v:\ndriver: %#v\ndecode: %#v", name, typ, want.Elem(), got.Elem())
	}
}
