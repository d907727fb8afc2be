package odm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// calls records hook calls in order, shared by the documents of one test.
type calls struct {
	mu   sync.Mutex
	list []string
	fail map[string]bool
}

func (c *calls) record(ctx context.Context, name, who string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, name+":"+who)
	if c.fail[name] {
		return errors.New(name + " refused")
	}
	return nil
}

func (c *calls) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.list...)
}

func (c *calls) reset() {
	c.mu.Lock()
	c.list = nil
	c.fail = nil
	c.mu.Unlock()
}

// User implements every hook and Validate.
type User struct {
	ID    bson.ObjectID `bson:"_id"`
	Name  string        `bson:"name"`
	Email string        `bson:"email"`
	Age   int           `bson:"age"`
	log   *calls
}

var (
	_ odm.BeforeSaveHook   = (*User)(nil)
	_ odm.AfterSaveHook    = (*User)(nil)
	_ odm.BeforeInsertHook = (*User)(nil)
	_ odm.AfterInsertHook  = (*User)(nil)
	_ odm.BeforeDeleteHook = (*User)(nil)
	_ odm.AfterDeleteHook  = (*User)(nil)
	_ odm.Validator        = (*User)(nil)
)

func (u *User) hook(ctx context.Context, name string) error {
	if u.log == nil {
		return nil
	}
	return u.log.record(ctx, name, u.Name)
}

func (u *User) BeforeSave(ctx context.Context) error   { return u.hook(ctx, "BeforeSave") }
func (u *User) AfterSave(ctx context.Context) error    { return u.hook(ctx, "AfterSave") }
func (u *User) BeforeInsert(ctx context.Context) error { return u.hook(ctx, "BeforeInsert") }
func (u *User) AfterInsert(ctx context.Context) error  { return u.hook(ctx, "AfterInsert") }
func (u *User) BeforeDelete(ctx context.Context) error { return u.hook(ctx, "BeforeDelete") }
func (u *User) AfterDelete(ctx context.Context) error  { return u.hook(ctx, "AfterDelete") }

var errInvalid = errors.New("email must contain @")

func (u *User) Validate() error {
	if u.log != nil {
		_ = u.log.record(context.Background(), "Validate", u.Name)
	}
	if !strings.Contains(u.Email, "@") {
		return errInvalid
	}
	return nil
}

type env struct {
	users *odm.Collection[User]
	coll  *mongo.Collection
	cache *cache.Cache
	log   *testdb.CommandLog
	calls *calls
}

func setup(t *testing.T) env {
	t.Helper()
	log := &testdb.CommandLog{}
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(log.Monitor())))
	coll := testdb.DBOn(t, cl).Collection("users")
	c, err := cache.New(cache.Config{})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	users, err := odm.New[User](coll, odm.WithCache(c))
	require.NoError(t, err)
	return env{users: users, coll: coll, cache: c, log: log, calls: &calls{}}
}

func (e env) user(name string) User {
	return User{Name: name, Email: name + "@example.com", Age: 30, log: e.calls}
}

func (e env) stored(t *testing.T) []User {
	t.Helper()
	var out []User
	cur, err := e.coll.Find(context.Background(), bson.D{}, options.Find().SetSort(bson.D{{Key: "name", Value: 1}}))
	require.NoError(t, err)
	require.NoError(t, cur.All(context.Background(), &out))
	return out
}

func TestSaveInsertsThenUpserts(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	u := e.user("ada")
	require.NoError(t, e.users.Save(ctx, &u))
	require.False(t, u.ID.IsZero(), "a new ObjectID is written back")
	assert.Equal(t, []string{"BeforeSave:ada", "BeforeInsert:ada", "Validate:ada", "AfterInsert:ada", "AfterSave:ada"}, e.calls.names())

	e.calls.reset()
	u.Age = 31
	require.NoError(t, e.users.Save(ctx, &u))
	assert.Equal(t, []string{"BeforeSave:ada", "Validate:ada", "AfterSave:ada"}, e.calls.names())
	got := e.stored(t)
	require.Len(t, got, 1)
	assert.Equal(t, 31, got[0].Age)

	// A document with an _id that is not stored yet is upserted.
	v := e.user("bob")
	v.ID = bson.NewObjectID()
	require.NoError(t, e.users.Save(ctx, &v))
	assert.Len(t, e.stored(t), 2)
}

func TestFastPathSkipsHooksAndValidation(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	tests := []struct {
		name      string
		opts      []query.WriteOption
		wantCalls []string
	}{
		{"defaults", nil, []string{"BeforeSave:x", "BeforeInsert:x", "Validate:x", "AfterInsert:x", "AfterSave:x"}},
		{"without validation", []query.WriteOption{odm.WithoutValidation()}, []string{"BeforeSave:x", "BeforeInsert:x", "AfterInsert:x", "AfterSave:x"}},
		{"without hooks", []query.WriteOption{odm.WithoutHooks()}, []string{"Validate:x"}},
		{"fast path", []query.WriteOption{odm.WithoutValidation(), odm.WithoutHooks()}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.calls.reset()
			e.log.Reset()
			u := e.user("x")
			require.NoError(t, e.users.Save(ctx, &u, tt.opts...))
			assert.Equal(t, tt.wantCalls, e.calls.names())
			assert.Equal(t, 1, e.log.Count("insert"), "one driver call")
			require.False(t, u.ID.IsZero(), "the new id is written back")
			n, err := e.coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: u.ID}})
			require.NoError(t, err)
			assert.EqualValues(t, 1, n, "stored under that id")
		})
	}
}

func TestValidation(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	bad := e.user("bad")
	bad.Email = "nope"

	err := e.users.Save(ctx, &bad)
	var ve *odm.HookError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "Validate", ve.Hook)
	assert.ErrorIs(t, err, errInvalid)
	assert.Empty(t, e.stored(t), "nothing is written")

	require.ErrorAs(t, e.users.Insert(ctx, &bad), &ve)
	require.ErrorAs(t, e.users.InsertMany(ctx, []User{e.user("ok"), bad}), &ve)
	assert.Equal(t, 1, ve.Index)
	require.ErrorAs(t, e.users.BulkSave(ctx, []User{bad}), &ve)
	assert.Empty(t, e.stored(t), "nothing is written by any of them")

	// Only WithoutValidation writes it.
	require.NoError(t, e.users.Save(ctx, &bad, odm.WithoutValidation()))
	assert.Len(t, e.stored(t), 1)
}

func TestHooksAbortWrites(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	for _, hook := range []string{"BeforeSave", "BeforeInsert"} {
		t.Run(hook, func(t *testing.T) {
			e.calls.reset()
			e.calls.fail = map[string]bool{hook: true}
			u := e.user("h")
			err := e.users.Save(ctx, &u)
			var he *odm.HookError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, hook, he.Hook)
			assert.Empty(t, e.stored(t))
			// WithoutHooks writes anyway.
			require.NoError(t, e.users.Save(ctx, &u, odm.WithoutHooks()))
			_, err = e.users.DeleteMany(ctx, bson.D{})
			require.NoError(t, err)
		})
	}
	// BeforeDelete aborts a delete.
	e.calls.reset()
	u := e.user("d")
	require.NoError(t, e.users.Save(ctx, &u))
	e.calls.fail = map[string]bool{"BeforeDelete": true}
	var he *odm.HookError
	require.ErrorAs(t, e.users.Delete(ctx, &u), &he)
	assert.Len(t, e.stored(t), 1)
	e.calls.fail = nil
	require.NoError(t, e.users.Delete(ctx, &u))
	assert.Empty(t, e.stored(t))
	assert.ErrorIs(t, e.users.Delete(ctx, &u), query.ErrNotFound)
}

func TestInsertManyAndBulkSaveRunHooksPerDocument(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	docs := []User{e.user("a"), e.user("b"), e.user("c")}
	require.NoError(t, e.users.InsertMany(ctx, docs))
	for _, d := range docs {
		assert.False(t, d.ID.IsZero())
	}
	assert.Equal(t, []string{"BeforeInsert:a", "Validate:a", "BeforeInsert:b", "Validate:b", "BeforeInsert:c", "Validate:c",
		"AfterInsert:a", "AfterInsert:b", "AfterInsert:c"}, e.calls.names())

	e.calls.reset()
	docs[0].Age = 99
	mixed := []User{docs[0], e.user("d")}
	require.NoError(t, e.users.BulkSave(ctx, mixed))
	assert.Equal(t, []string{"BeforeSave:a", "Validate:a", "BeforeSave:d", "BeforeInsert:d", "Validate:d",
		"AfterSave:a", "AfterInsert:d", "AfterSave:d"}, e.calls.names())
	got := e.stored(t)
	require.Len(t, got, 4)
	assert.Equal(t, 99, got[0].Age)

	e.calls.reset()
	require.NoError(t, e.users.BulkSave(ctx, []User{e.user("e")}, odm.WithoutHooks(), odm.WithoutValidation()))
	require.NoError(t, e.users.InsertMany(ctx, []User{e.user("f")}, odm.WithoutHooks(), odm.WithoutValidation()))
	assert.Empty(t, e.calls.names())
}

func TestPartialFailures(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	existing := e.user("dup")
	require.NoError(t, e.users.Insert(ctx, &existing))

	for _, tt := range []struct {
		name      string
		opts      []query.WriteOption
		wantNames []string
	}{
		{"unordered writes the rest", []query.WriteOption{odm.Unordered()}, []string{"dup", "p0", "p2"}},
		{"ordered stops at the failure", nil, []string{"dup", "p0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.calls.reset()
			docs := []User{e.user("p0"), e.user("p1"), e.user("p2")}
			docs[1].ID = existing.ID // duplicate key
			before := e.cache.Stats().Applied
			err := e.users.InsertMany(ctx, docs, tt.opts...)
			var be *odm.BulkError
			require.ErrorAs(t, err, &be)
			require.Len(t, be.Failed, 1)
			assert.Equal(t, 1, be.Failed[0].Index)
			assert.True(t, mongo.IsDuplicateKeyError(err))
			assert.Greater(t, e.cache.Stats().Applied, before, "a write that failed partway still invalidates")
			var names []string
			for _, u := range e.stored(t) {
				names = append(names, u.Name)
			}
			assert.Equal(t, tt.wantNames, names)
			// AfterInsert ran exactly for the written documents.
			var afters []string
			for _, c := range e.calls.names() {
				if strings.HasPrefix(c, "AfterInsert") {
					afters = append(afters, c)
				}
			}
			want := []string{"AfterInsert:p0"}
			if len(tt.opts) > 0 {
				want = append(want, "AfterInsert:p2")
			}
			assert.Equal(t, want, afters)
			_, err = e.users.DeleteMany(ctx, query.Ne("name", "dup"))
			require.NoError(t, err)
		})
	}

	dup := e.user("again")
	dup.ID = existing.ID
	err := e.users.Insert(ctx, &dup)
	assert.True(t, mongo.IsDuplicateKeyError(err))
}

// TestEveryWriteInvalidatesTheCache runs each write between two cached
// reads: the second read must see the write.
func TestEveryWriteInvalidatesTheCache(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	seed := []User{e.user("a"), e.user("b")}
	require.NoError(t, e.users.InsertMany(ctx, seed))
	cached := query.Cached(time.Hour)
	count := func() int {
		got, err := e.users.FindMany(ctx, nil, cached)
		require.NoError(t, err)
		sum := 0
		for _, u := range got {
			sum += u.Age
		}
		return len(got)*1000 + sum
	}
	writes := []struct {
		name  string
		write func() error
	}{
		{"Save new", func() error { u := e.user("c"); return e.users.Save(ctx, &u) }},
		{"Save existing", func() error { seed[0].Age++; return e.users.Save(ctx, &seed[0]) }},
		{"Insert", func() error { u := e.user("d"); return e.users.Insert(ctx, &u) }},
		{"InsertMany", func() error { return e.users.InsertMany(ctx, []User{e.user("e")}) }},
		{"BulkSave", func() error { seed[1].Age++; return e.users.BulkSave(ctx, []User{seed[1]}) }},
		{"Replace", func() error { seed[0].Age++; return e.users.Replace(ctx, &seed[0]) }},
		{"Update", func() error {
			_, err := e.users.UpdateOne(ctx, query.Eq("name", "a"), bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: 1}}}})
			return err
		}},
		{"UpdateMany", func() error {
			_, err := e.users.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: 1}}}})
			return err
		}},
		{"Delete", func() error { return e.users.Delete(ctx, &seed[1]) }},
		{"DeleteMany", func() error { _, err := e.users.DeleteMany(ctx, query.Eq("name", "e")); return err }},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			before := count()
			assert.Equal(t, before, count(), "cached read is stable")
			require.NoError(t, w.write())
			assert.NotEqual(t, before, count(), "the write is visible to the next cached read")
		})
	}
	assert.Positive(t, e.cache.Stats().Hits)
}

func TestReplaceMissing(t *testing.T) {
	e := setup(t)
	u := e.user("ghost")
	u.ID = bson.NewObjectID()
	err := e.users.Replace(context.Background(), &u)
	assert.ErrorIs(t, err, query.ErrNotFound)
	assert.ErrorIs(t, err, mongo.ErrNoDocuments)
}

// TestNewChecksTheType: New refuses a type whose documents cannot be
// decoded as the driver would (a bson key used twice); a type without an
// _id field reads, and its writes of whole documents fail, naming why. On
// d78d092 a duplicated key was accepted by New and failed at the first
// read.
func TestNewChecksTheType(t *testing.T) {
	coll := testdb.DB(t).Collection("x")
	type Dup struct {
		ID int `bson:"_id"`
		A  int `bson:"a"`
		B  int `bson:"a"`
	}
	_, err := odm.New[Dup](coll)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Dup")

	type NoID struct{ Name string }
	noID, err := odm.New[NoID](coll)
	require.NoError(t, err, "a read-only type needs no _id")
	_, err = noID.FindMany(context.Background(), nil)
	require.NoError(t, err)
	err = noID.Save(context.Background(), &NoID{Name: "a"})
	assert.ErrorContains(t, err, `no field tagged bson:"_id"`)
	_, err = noID.BulkWrite(context.Background(), []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(&NoID{})})
	var me *odm.WriteError
	assert.ErrorAs(t, err, &me)
}

func TestReadsThroughCollection(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	for i := range 5 {
		u := e.user(fmt.Sprint("r", i))
		require.NoError(t, e.users.Save(ctx, &u, odm.WithoutHooks()))
	}
	n, err := e.users.Count(ctx, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 5, n)
	u, err := e.users.FindOne(ctx, query.Eq("name", "r3"))
	require.NoError(t, err)
	assert.Equal(t, "r3@example.com", u.Email)
	k := 0
	for _, err := range e.users.Iter(ctx, nil) {
		require.NoError(t, err)
		k++
	}
	assert.Equal(t, 5, k)
}

// TestInsertManyEncodedPath covers the compiled-encoder path (no hooks to
// run): ids assigned by the driver are written back, the stored documents
// are what bson.Marshal would have stored, and partial failures are named.
func TestInsertManyEncodedPath(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	docs := []User{e.user("a"), e.user("b"), e.user("c")}
	preset := bson.NewObjectID()
	docs[1].ID = preset
	require.NoError(t, e.users.InsertMany(ctx, docs, odm.WithoutHooks()))
	assert.Equal(t, []string{"Validate:a", "Validate:b", "Validate:c"}, e.calls.names(), "validation ran, no hooks")
	for _, d := range docs {
		require.False(t, d.ID.IsZero(), "ids are written back")
	}
	assert.Equal(t, preset, docs[1].ID, "a preset id is kept")
	got := e.stored(t)
	require.Len(t, got, 3)
	for i := range got {
		got[i].log = e.calls
		assert.Equal(t, docs[i], got[i])
	}

	dup := []User{e.user("d"), e.user("e")}
	dup[1].ID = preset
	err := e.users.InsertMany(ctx, dup, odm.WithoutHooks(), odm.Unordered())
	var be *odm.BulkError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	assert.Equal(t, 1, be.Failed[0].Index)
	assert.False(t, dup[0].ID.IsZero())
	assert.Len(t, e.stored(t), 4)
}

// TestInsertManyIDsAfterRejection is the regression test for a write-back
// bug found while building the fault report: the driver's reply lists the
// ids of the written documents only, so when a rejected document came
// before a new one, the new one's id was read from the wrong position (or
// past the end). Each written document must get its own stored id.
func TestInsertManyIDsAfterRejection(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	existing := e.user("existing")
	require.NoError(t, e.users.Insert(ctx, &existing))

	for _, opts := range [][]query.WriteOption{
		{odm.WithoutHooks(), odm.Unordered()},
		{odm.WithoutHooks(), odm.Unordered(), odm.InsertBatch(2)},
	} {
		docs := []User{e.user("dup"), e.user("x"), e.user("y")}
		docs[0].ID = existing.ID
		err := e.users.InsertMany(ctx, docs, opts...)
		var be *odm.BulkError
		require.ErrorAs(t, err, &be)
		assert.Equal(t, []int{1, 2}, be.Written)
		require.Len(t, be.Failed, 1)
		assert.Equal(t, 0, be.Failed[0].Index)
		assert.Empty(t, be.Unknown)
		for _, d := range docs[1:] {
			stored, err := e.users.FindOne(ctx, query.Eq("_id", d.ID))
			require.NoError(t, err, "document %s must be stored under the id written back", d.Name)
			assert.Equal(t, d.Name, stored.Name)
		}
	}
}

// TestInsertManyBatches checks that InsertMany sends one driver call per
// InsertBatch documents and that an ordered write stops at the batch with a
// rejection, reporting the earlier batches as written and the later ones
// as not sent.
func TestInsertManyBatches(t *testing.T) {
	log := &testdb.CommandLog{}
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(log.Monitor())))
	coll := testdb.DBOn(t, cl).Collection("users")
	users, err := odm.New[User](coll)
	require.NoError(t, err)
	ctx := context.Background()
	existing := User{Name: "existing", Email: "e@example.com"}
	require.NoError(t, users.Insert(ctx, &existing))

	docs := make([]User, 7)
	for i := range docs {
		docs[i].Name = fmt.Sprint("b", i)
		docs[i].Email = docs[i].Name + "@example.com"
	}
	docs[3].ID = existing.ID
	log.Reset()
	err = users.InsertMany(ctx, docs, odm.WithoutHooks(), odm.InsertBatch(2))
	var be *odm.BulkError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []int{0, 1, 2}, be.Written)
	require.Len(t, be.Failed, 1)
	assert.Equal(t, 3, be.Failed[0].Index)
	assert.Empty(t, be.Unknown)
	assert.Equal(t, 2, log.Count("insert"), "batches after the rejection are not sent")
	assert.ErrorContains(t, err, "3 written, 1 rejected, 0 unknown")
	n, err := users.Count(ctx, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 4, n)

	// Unordered: the batches after the rejection are sent too.
	for i := range docs {
		if i != 3 {
			docs[i].ID = bson.ObjectID{}
		}
	}
	log.Reset()
	err = users.InsertMany(ctx, docs, odm.WithoutHooks(), odm.InsertBatch(2), odm.Unordered())
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []int{0, 1, 2, 4, 5, 6}, be.Written)
	require.Len(t, be.Failed, 1)
	assert.Equal(t, 3, be.Failed[0].Index)
	assert.Equal(t, 4, log.Count("insert"))
	assert.True(t, mongo.IsDuplicateKeyError(err))

	log.Reset()
	more := make([]User, 5)
	for i := range more {
		more[i].Email = "m@example.com"
	}
	require.NoError(t, users.InsertMany(ctx, more, odm.WithoutHooks(), odm.InsertBatch(2)))
	assert.Equal(t, 3, log.Count("insert"))
	for _, d := range more {
		assert.False(t, d.ID.IsZero())
	}
}

// TestWriteResultsAreUniform: UpdateOne and UpdateMany report the upserted
// _id (on 16a31ad Upserted could never be non-zero), DeleteOne and
// DeleteMany the driver's DeleteResult, and not-found errors are odm's own
// while matching query's and the driver's.
func TestWriteResultsAreUniform(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	set := bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: 40}}}}
	res, err := e.users.UpdateOne(ctx, query.Eq("name", "nobody"), set)
	require.NoError(t, err)
	assert.Equal(t, mongo.UpdateResult{Acknowledged: true}, *res)
	res, err = e.users.UpdateOne(ctx, query.Eq("name", "nobody"), set, odm.Upsert())
	require.NoError(t, err)
	assert.NotNil(t, res.UpsertedID)
	res, err = e.users.UpdateMany(ctx, query.Eq("name", "nobody"), set, odm.Upsert())
	require.NoError(t, err)
	assert.EqualValues(t, 1, res.MatchedCount)
	assert.Nil(t, res.UpsertedID)

	require.NoError(t, e.users.InsertMany(ctx, []User{e.user("a"), e.user("b"), e.user("c")}))
	del, err := e.users.DeleteOne(ctx, query.In("name", "a", "b"))
	require.NoError(t, err)
	assert.Equal(t, mongo.DeleteResult{DeletedCount: 1, Acknowledged: true}, *del)
	del, err = e.users.DeleteMany(ctx, bson.D{})
	require.NoError(t, err)
	assert.Equal(t, mongo.DeleteResult{DeletedCount: 3, Acknowledged: true}, *del)

	u := e.user("gone")
	err = e.users.Delete(ctx, &u)
	require.ErrorIs(t, err, query.ErrNotFound)
	assert.ErrorIs(t, err, query.ErrNotFound)
	assert.ErrorIs(t, err, mongo.ErrNoDocuments)
	assert.True(t, strings.HasPrefix(err.Error(), "odm: "), err.Error())

	// Reads through the collection reach the cursor too.
	require.NoError(t, e.users.Save(ctx, &u))
	cur, err := e.users.Cursor(ctx, bson.D{})
	require.NoError(t, err)
	got, err := cur.AppendAll(ctx, nil)
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

// TestResultsComeWithErrors: a write that fails partway returns the
// driver's result with its error, as the driver does (compared with the
// raw driver on the same documents), and BulkWrite of no models fails as
// the driver's does. Found by an independent tester: on a832584 odm
// returned a nil result with the error (on 3a1c28b a zero one), and an
// empty BulkWrite succeeded.
func TestResultsComeWithErrors(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	docs := []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 1}}, bson.D{{Key: "_id", Value: 2}, {Key: "n", Value: 2}},
		bson.D{{Key: "_id", Value: 3}, {Key: "n", Value: "x"}}, bson.D{{Key: "_id", Value: 4}, {Key: "n", Value: 4}},
	}
	inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 10}}}}
	var got [2]*mongo.UpdateResult
	for i, name := range []string{"odm", "driver"} {
		coll := e.coll.Database().Collection("partway_" + name)
		_, err := coll.InsertMany(ctx, docs)
		require.NoError(t, err)
		if name == "odm" {
			h, err := odm.New[bson.Raw](coll)
			require.NoError(t, err)
			got[i], err = h.UpdateMany(ctx, bson.D{}, inc)
			require.Error(t, err, "$inc of a string fails")
		} else {
			got[i], err = coll.UpdateMany(ctx, bson.D{}, inc)
			require.Error(t, err)
		}
	}
	assert.Equal(t, got[1], got[0], "the driver's result, with the error")

	_, err := e.users.BulkWrite(ctx, nil)
	require.ErrorIs(t, err, mongo.ErrEmptySlice)
}
