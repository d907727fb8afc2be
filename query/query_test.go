package query_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/query"
)

type User struct {
	ID    bson.ObjectID `bson:"_id"`
	Name  string        `bson:"name"`
	Email string        `bson:"email"`
	Age   int           `bson:"age"`
}

// UserName is a projection of User.
type UserName struct {
	Name string `bson:"name"`
}

func seedUsers(t *testing.T, coll *mongo.Collection, n int) {
	t.Helper()
	docs := make([]any, n)
	for i := range docs {
		docs[i] = User{ID: bson.NewObjectID(), Name: fmt.Sprintf("user%03d", i), Email: fmt.Sprintf("u%d@example.com", i), Age: 20 + i%50}
	}
	_, err := coll.InsertMany(context.Background(), docs)
	require.NoError(t, err)
}

func usersColl(t *testing.T, n int) *mongo.Collection {
	t.Helper()
	coll := testdb.DB(t).Collection("users")
	seedUsers(t, coll, n)
	return coll
}

func TestIterRegisteredModel(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	t.Cleanup(query.Register[User](handle[User](t, usersColl(t, 250))))
	ctx := context.Background()
	filter := query.Gte("age", 60)

	n := 0
	for u, err := range query.Iter[User](ctx, filter) {
		require.NoError(t, err)
		require.GreaterOrEqual(t, u.Age, 60)
		n++
	}
	assert.Equal(t, 50, n) // ages 60..69, five each

	count, err := query.Count[User](ctx, filter)
	require.NoError(t, err)
	assert.EqualValues(t, 50, count)
}

// TestUnregisteredModel: the package-level reads of a type bound to no
// handle fail with ErrNotRegistered, naming the type and the call that
// binds it. On d78d092 the message named neither.
func TestUnregisteredModel(t *testing.T) {
	type Orphan struct{ X int }
	ctx := context.Background()
	for _, err := range query.Iter[Orphan](ctx, nil) {
		assert.ErrorIs(t, err, query.ErrNotRegistered)
	}
	_, err := query.FindMany[Orphan](ctx, nil)
	assert.ErrorIs(t, err, query.ErrNotRegistered)
	_, err = query.FindOne[Orphan](ctx, nil)
	assert.ErrorIs(t, err, query.ErrNotRegistered)
	_, err = query.Count[Orphan](ctx, nil)
	require.ErrorIs(t, err, query.ErrNotRegistered)
	assert.Contains(t, err.Error(), "query_test.Orphan")
	assert.Contains(t, err.Error(), "query.Register[query_test.Orphan](")
}

func TestFindManyOptions(t *testing.T) {
	users := handle[User](t, usersColl(t, 120))
	ctx := context.Background()
	byName := query.Sort(bson.D{{Key: "name", Value: 1}})

	tests := []struct {
		name  string
		opts  []query.ReadOption
		first string
		n     int
	}{
		{"sort", []query.ReadOption{byName}, "user000", 120},
		{"limit", []query.ReadOption{byName, query.Limit(7)}, "user000", 7},
		{"skip and limit", []query.ReadOption{byName, query.Skip(100), query.Limit(50)}, "user100", 20},
		{"small batches", []query.ReadOption{byName, query.BatchSize(7)}, "user000", 120},
		{"no prefetch", []query.ReadOption{byName, query.BatchSize(7), query.CursorOptions(cursor.WithoutPrefetch())}, "user000", 120},
		{"zero-copy strings", []query.ReadOption{byName, query.BatchSize(7), query.CursorOptions(cursor.DecodeOptions(decode.ZeroCopy()))}, "user000", 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := users.FindMany(ctx, nil, tt.opts...)
			require.NoError(t, err)
			require.Len(t, got, tt.n)
			assert.Equal(t, tt.first, got[0].Name)
			for i := 1; i < len(got); i++ {
				require.Less(t, got[i-1].Name, got[i].Name)
			}
		})
	}
}

func TestProjectionIntoSmallerStruct(t *testing.T) {
	coll := usersColl(t, 3)
	got, err := handle[UserName](t, coll).FindMany(context.Background(), nil,
		query.Projection(bson.D{{Key: "name", Value: 1}, {Key: "_id", Value: 0}}), query.Sort(bson.D{{Key: "name", Value: -1}}))
	require.NoError(t, err)
	assert.Equal(t, []UserName{{"user002"}, {"user001"}, {"user000"}}, got)
}

func TestFindOne(t *testing.T) {
	users := handle[User](t, usersColl(t, 10))
	ctx := context.Background()

	u, err := users.FindOne(ctx, query.Eq("name", "user004"))
	require.NoError(t, err)
	assert.Equal(t, "u4@example.com", u.Email)

	u, err = users.FindOne(ctx, nil, query.Sort(bson.D{{Key: "name", Value: -1}}))
	require.NoError(t, err)
	assert.Equal(t, "user009", u.Name)

	_, err = users.FindOne(ctx, query.Eq("name", "nobody"))
	assert.ErrorIs(t, err, query.ErrNotFound)
	assert.ErrorIs(t, err, mongo.ErrNoDocuments)
}

func TestIterEarlyBreakAndErrors(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	users := handle[User](t, usersColl(t, 300))
	ctx := context.Background()
	n := 0
	for _, err := range users.Iter(ctx, nil, query.BatchSize(20)) {
		require.NoError(t, err)
		n++
		if n == 30 {
			break
		}
	}
	assert.Equal(t, 30, n)

	// A server-side error (a bad operator) is yielded once, last.
	var errs []error
	for u, err := range users.Iter(ctx, bson.D{{Key: "age", Value: bson.D{{Key: "$bogus", Value: 1}}}}) {
		if err != nil {
			errs = append(errs, err)
			assert.Zero(t, u)
		}
	}
	require.Len(t, errs, 1)

	// A cancelled context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := users.FindMany(cctx, nil)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestEmptyResult(t *testing.T) {
	users := handle[User](t, usersColl(t, 3))
	got, err := users.FindMany(context.Background(), query.Eq("name", "none"))
	require.NoError(t, err)
	assert.Empty(t, got)
	for range users.Iter(context.Background(), query.Eq("name", "none")) {
		t.Fatal("no values expected")
	}
}

// TestFilterInjection proves that values from untrusted input are matched
// literally: operator-shaped values never act as operators.
func TestFilterInjection(t *testing.T) {
	coll := testdb.DB(t).Collection("accounts")
	ctx := context.Background()
	_, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "name", Value: "alice"}, {Key: "secret", Value: "a"}},
		bson.D{{Key: "name", Value: "bob"}, {Key: "secret", Value: "b"}},
	})
	require.NoError(t, err)
	accounts := handle[bson.M](t, coll)

	hostile := []struct {
		name     string
		value    any
		noFerret bool // a type FerretDB v1.24 does not support (it drops the connection)
	}{
		{"$ne map", map[string]any{"$ne": ""}, false},
		{"$gt map", bson.M{"$gt": ""}, false},
		{"$where", bson.M{"$where": "return true"}, false},
		{"$expr", bson.D{{Key: "$expr", Value: true}}, false},
		{"$regex", bson.M{"$regex": ".*"}, false},
		{"$in", bson.M{"$in": bson.A{"alice", "bob"}}, false},
		{"$exists", bson.M{"$exists": true}, false},
		{"dotted key", bson.M{"a.b": 1}, false},
		{"operator string", "$ne", false},
		{"array of operators", bson.A{bson.M{"$ne": ""}}, false},
		// A value of every BSON type, as bson.UnmarshalExtJSON of user
		// input can produce: each must be matched literally or refused.
		{"double", 1.5, false},
		{"string", "carol", false},
		{"document", bson.D{{Key: "x", Value: 1}}, false},
		{"array", bson.A{"alice", "bob"}, false},
		{"binary", bson.Binary{Subtype: 0, Data: []byte("alice")}, false},
		{"undefined", bson.Undefined{}, true},
		{"objectid", bson.NewObjectID(), false},
		{"bool", true, false},
		{"datetime", bson.DateTime(0), false},
		{"regex", bson.Regex{Pattern: ".*", Options: ""}, false},
		{"regex pointer", &bson.Regex{Pattern: "^a", Options: "i"}, false},
		{"regex raw value", regexRawValue(t, ".*"), false},
		{"dbpointer", bson.DBPointer{DB: "x", Pointer: bson.NewObjectID()}, true},
		{"javascript", bson.JavaScript("return true"), true},
		{"symbol", bson.Symbol("alice"), true},
		{"code with scope", bson.CodeWithScope{Code: "return true", Scope: bson.D{}}, true},
		{"int32", int32(1), false},
		{"timestamp", bson.Timestamp{T: 1, I: 1}, false},
		{"int64", int64(1), false},
		{"decimal128", bson.NewDecimal128(0, 1), true},
		{"minkey", bson.MinKey{}, true},
		{"maxkey", bson.MaxKey{}, true},
	}
	refused := 0
	for _, tt := range hostile {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noFerret {
				testdb.NotRunOnFerretDB(t, "the BSON type is unsupported")
			}
			in := query.In("name", tt.value)
			if strings.HasPrefix(tt.name, "regex") {
				// $in would run it as a pattern: refused before anything is sent.
				require.ErrorIs(t, in.Err(), query.ErrInvalidValue)
				_, err := accounts.FindMany(ctx, in)
				require.ErrorIs(t, err, query.ErrInvalidValue)
				in = query.In("name", "carol")
			}
			for _, f := range []query.Filter{
				query.Eq("name", tt.value),
				in,
				query.And(query.Eq("secret", tt.value)),
				query.Or(query.Eq("name", tt.value), query.Eq("secret", tt.value)),
			} {
				got, err := accounts.FindMany(ctx, f)
				if err != nil {
					// A server may refuse an operator-shaped literal; it
					// must never run it. Refusing is safe.
					t.Logf("refused %v: %v", ext(f), err)
					refused++
					continue
				}
				assert.Empty(t, got, "filter %v matched documents", ext(f))
			}
		})
	}

	assert.Less(t, refused, 2*len(hostile), "most hostile filters must run (and match nothing)")

	// The same values are matched when they really are stored.
	_, err = coll.InsertOne(ctx, bson.D{{Key: "name", Value: "$ne"}})
	require.NoError(t, err)
	got, err := accounts.FindMany(ctx, query.Eq("name", "$ne"))
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

func regexRawValue(t *testing.T, pattern string) bson.RawValue {
	t.Helper()
	typ, data, err := bson.MarshalValue(bson.Regex{Pattern: pattern})
	require.NoError(t, err)
	return bson.RawValue{Type: typ, Value: data}
}

// TestEmptyCombinations: And and Or of no filters are errors, never "match
// everything" (on 16a31ad, DeleteMany of query.Or() deleted the whole
// collection).
func TestEmptyCombinations(t *testing.T) {
	for _, f := range []query.Filter{query.And(), query.Or(), query.And(query.Or()), query.Or(query.Eq("a", 1), query.And()),
		query.And(query.Filter{}), query.Or(query.Eq("a", 1), query.Filter{}), query.Not(query.Filter{}), query.ElemMatch("a", query.Filter{})} {
		assert.ErrorIs(t, f.Err(), query.ErrNoFilters)
		_, err := f.MarshalBSON()
		assert.ErrorIs(t, err, query.ErrNoFilters)
	}
	coll := usersColl(t, 10)
	_, err := handle[User](t, coll).FindMany(context.Background(), query.Or())
	require.ErrorIs(t, err, query.ErrNoFilters)
	// The same filter handed to the driver directly fails to encode.
	_, err = coll.DeleteMany(context.Background(), query.Or())
	require.ErrorIs(t, err, query.ErrNoFilters)
	n, err := coll.CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 10, n)
}

func TestFilterFieldNames(t *testing.T) {
	tests := []struct {
		give    string
		wantErr bool
	}{
		{"name", false},
		{"address.city", false},
		{"items.0.sku", false},
		{"", true},
		{"$where", true},
		{"$expr", true},
		{"a.$ne", true},
		{"a..b", true},
		{".a", true},
		{"a.", true},
		{"a\x00b", true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			for _, f := range []query.Filter{query.Eq(tt.give, 1), query.In(tt.give, 1, 2), query.And(query.Gt(tt.give, 1))} {
				if tt.wantErr {
					assert.ErrorIs(t, f.Err(), query.ErrInvalidField)
					_, err := f.MarshalBSON()
					assert.ErrorIs(t, err, query.ErrInvalidField)
				} else {
					assert.NoError(t, f.Err())
				}
			}
		})
	}
	// Running an invalid filter fails before anything is sent.
	_, err := handle[User](t, testdb.DB(t).Collection("users")).FindMany(context.Background(), query.Eq("$where", "1"))
	assert.ErrorIs(t, err, query.ErrInvalidField)
}

func TestFilterShapes(t *testing.T) {
	tests := []struct {
		name string
		give query.Filter
		want bson.D
	}{
		{"eq", query.Eq("a", 1), bson.D{{Key: "a", Value: bson.D{{Key: "$eq", Value: 1}}}}},
		{"in", query.In("a", 1, 2), bson.D{{Key: "a", Value: bson.D{{Key: "$in", Value: bson.A{1, 2}}}}}},
		{"and", query.And(query.Eq("a", 1), query.Lt("b", 2)), bson.D{{Key: "$and", Value: bson.A{
			bson.D{{Key: "a", Value: bson.D{{Key: "$eq", Value: 1}}}}, bson.D{{Key: "b", Value: bson.D{{Key: "$lt", Value: 2}}}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, ext(tt.want), ext(tt.give))
		})
	}
}

// TestFilterHelpers runs each helper against the dev server.
func TestFilterHelpers(t *testing.T) {
	coll := testdb.DB(t).Collection("helpers")
	ctx := context.Background()
	_, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "tags", Value: bson.A{"a", "b"}}, {Key: "n", Value: 5}, {Key: "name", Value: "Ada"},
			{Key: "items", Value: bson.A{bson.D{{Key: "sku", Value: "x"}, {Key: "qty", Value: 2}}, bson.D{{Key: "sku", Value: "y"}, {Key: "qty", Value: 5}}}}},
		bson.D{{Key: "_id", Value: 2}, {Key: "tags", Value: bson.A{"b"}}, {Key: "name", Value: "bob"},
			{Key: "items", Value: bson.A{bson.D{{Key: "sku", Value: "x"}, {Key: "qty", Value: 1}}}}},
		bson.D{{Key: "_id", Value: 3}, {Key: "n", Value: "str"}},
	})
	require.NoError(t, err)
	h := handle[struct {
		ID int `bson:"_id"`
	}](t, coll)
	tests := []struct {
		name string
		give query.Filter
		want []int
	}{
		{"Nin", query.Nin("_id", 1, 2), []int{3}},
		{"ContainsAll", query.ContainsAll("tags", "a", "b"), []int{1}},
		{"Exists", query.Exists("n", true), []int{1, 3}},
		{"not Exists", query.Exists("n", false), []int{2}},
		{"Size", query.Size("tags", 1), []int{2}},
		{"Type", query.Type("n", bson.TypeString), []int{3}},
		{"Regex", query.Regex("name", "^a", "i"), []int{1}},
		{"ElemMatch", query.ElemMatch("items", query.Eq("sku", "x"), query.Gte("qty", 2)), []int{1}},
		{"ElemMatch of one", query.ElemMatch("items", query.Eq("qty", 1)), []int{2}},
		{"Not", query.Not(query.Eq("_id", 1)), []int{2, 3}},
		{"Not of Or", query.Not(query.Or(query.Eq("_id", 1), query.Eq("_id", 2))), []int{3}},
		{"Not of an operator-shaped value", query.Not(query.Eq("name", bson.M{"$ne": ""})), []int{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.HasPrefix(tt.name, "ElemMatch") {
				testdb.NotRunOnFerretDB(t, "v1.24's $elemMatch matches no array of documents")
			}
			got, err := h.FindMany(ctx, tt.give, query.Sort(bson.D{{Key: "_id", Value: 1}}))
			require.NoError(t, err)
			ids := []int{}
			for _, d := range got {
				ids = append(ids, d.ID)
			}
			assert.Equal(t, tt.want, ids)
		})
	}
	assert.ErrorIs(t, query.Nin("f", bson.Regex{Pattern: "."}).Err(), query.ErrInvalidValue)
	assert.ErrorIs(t, query.ContainsAll("f", bson.Regex{Pattern: "."}).Err(), query.ErrInvalidValue)
	assert.ErrorIs(t, query.Regex("$where", "x", "").Err(), query.ErrInvalidField)
	assert.ErrorIs(t, query.ElemMatch("items").Err(), query.ErrNoFilters)
	assert.ErrorIs(t, query.Not(query.Filter{}).Err(), query.ErrNoFilters)
	assert.ErrorIs(t, query.Not(query.Eq("$x", 1)).Err(), query.ErrInvalidField)
	// ElemMatch's condition is one document, or $and when keys repeat.
	assert.Equal(t, ext(bson.D{{Key: "items", Value: bson.D{{Key: "$elemMatch", Value: bson.D{
		{Key: "sku", Value: bson.D{{Key: "$eq", Value: "x"}}}, {Key: "qty", Value: bson.D{{Key: "$gte", Value: 2}}}}}}}}),
		ext(query.ElemMatch("items", query.Eq("sku", "x"), query.Gte("qty", 2))))
	assert.Equal(t, ext(bson.D{{Key: "items", Value: bson.D{{Key: "$elemMatch", Value: bson.D{{Key: "$and", Value: bson.A{
		bson.D{{Key: "qty", Value: bson.D{{Key: "$gte", Value: 2}}}}, bson.D{{Key: "qty", Value: bson.D{{Key: "$lt", Value: 5}}}}}}}}}}}),
		ext(query.ElemMatch("items", query.Gte("qty", 2), query.Lt("qty", 5))))
	assert.Equal(t, ext(bson.D{{Key: "items", Value: bson.D{{Key: "$elemMatch", Value: bson.D{{Key: "$and", Value: bson.A{
		bson.D{{Key: "qty", Value: bson.D{{Key: "$gte", Value: 2}}}}, bson.D{{Key: "qty", Value: bson.D{{Key: "$lt", Value: 5}}}},
		bson.D{{Key: "sku", Value: bson.D{{Key: "$eq", Value: "x"}}}}}}}}}}}),
		ext(query.ElemMatch("items", query.Gte("qty", 2), query.Lt("qty", 5), query.Eq("sku", "x"))),
		"a repeated key anywhere: $and of every filter")
}

// ext is the extended JSON of a document or filter, to compare their BSON.
func ext(v any) string {
	b, err := bson.MarshalExtJSON(v, true, false)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// TestSortRefusesWhatIsNotASortDocument: a Sort that the server would not
// read as a sort fails the call with ErrInvalidValue, naming what was
// given, before anything is sent. On 3a1c28b Sort("name") reached the
// driver, which failed with its marshal error.
func TestSortRefusesWhatIsNotASortDocument(t *testing.T) {
	users := handle[User](t, usersColl(t, 3))
	ctx := context.Background()
	tests := []struct {
		give any
		want string // in the error; "" for a valid sort
	}{
		{bson.D{{Key: "name", Value: 1}, {Key: "_id", Value: -1}}, ""},
		{bson.D{{Key: "age", Value: int64(-1)}, {Key: "n", Value: 1.0}}, ""},
		{bson.M{"name": -1}, ""},
		{"name", "got a string"},
		{[]string{"name"}, "got a []string"},
		{bson.M{"a": 1, "b": 1}, "a map of 2 fields has no order"},
		{bson.D{{Key: "name", Value: "asc"}}, `field "name" has asc (string)`},
		{bson.D{{Key: "name", Value: 2}}, `field "name" has 2 (int)`},
		{bson.D{{Key: "name", Value: 1}, {Key: "name", Value: -1}}, `field "name" is sorted on twice`},
	}
	for _, tt := range tests {
		_, err := users.FindMany(ctx, bson.D{}, query.Sort(tt.give))
		if tt.want == "" {
			assert.NoError(t, err, "%#v", tt.give)
			continue
		}
		assert.ErrorIs(t, err, query.ErrInvalidValue, "%#v", tt.give)
		assert.ErrorContains(t, err, tt.want)
		_, err = users.FindOneAndUpdate(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}, query.Sort(tt.give))
		assert.ErrorIs(t, err, query.ErrInvalidValue, "find-and-modify too: %#v", tt.give)
	}
}

// TestMisplacedOptionsDoNotCompile builds testdata/misplaced.go, in which
// each line marked "misplaced" gives an operation an option of the other
// kind: the compiler must refuse each of those lines, and no other. On
// 3a1c28b (one query.Option for reads and writes) the file compiled, and
// each such option did nothing.
func TestMisplacedOptionsDoNotCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	src, err := os.ReadFile(filepath.Join("testdata", "misplaced.go"))
	require.NoError(t, err)
	var want []int
	for i, line := range strings.Split(string(src), "\n") {
		if strings.Contains(line, "// misplaced:") {
			want = append(want, i+1)
		}
	}
	require.NotEmpty(t, want)
	out, err := exec.Command("go", "build", "-o", os.DevNull, filepath.Join("testdata", "misplaced.go")).CombinedOutput()
	require.Error(t, err, "the file compiled:\n%s", out)
	var got []int
	for _, m := range regexp.MustCompile(`misplaced\.go:(\d+):\d+: `).FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.Atoi(m[1])
		got = append(got, n)
	}
	assert.Equal(t, want, slices.Compact(got), "the lines refused:\n%s", out)
}
