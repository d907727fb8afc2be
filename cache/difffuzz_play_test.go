package cache_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// Playing a round against the server: reads and writes made through odm or
// raw, every cached read checked against the server (the oracle).

// diffDoc is a document as odm writes it: every field a raw value, so that
// numbers keep their type, a null stays null and a missing field is left
// out.
type diffDoc struct {
	ID bson.RawValue `bson:"_id,omitempty"`
	A  bson.RawValue `bson:"a,omitempty"`
	B  bson.RawValue `bson:"b,omitempty"`
	M  bson.RawValue `bson:"m,omitempty"`
	N  bson.RawValue `bson:"n,omitempty"`
	T  bson.RawValue `bson:"t,omitempty"`
}

// diffDocOf is d (fields _id, a, b, m, n, t) as a diffDoc.
func diffDocOf(d bson.D) diffDoc {
	raw, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	var out diffDoc
	for _, f := range []struct {
		name string
		dst  *bson.RawValue
	}{{"_id", &out.ID}, {"a", &out.A}, {"b", &out.B}, {"m", &out.M}, {"n", &out.N}, {"t", &out.T}} {
		if v, err := bson.Raw(raw).LookupErr(f.name); err == nil {
			*f.dst = v
		}
	}
	return out
}

// run makes the read, cached or not; a count is one document {n: count}.
func (rd diffRead) run(ctx context.Context, h *odm.Collection[bson.Raw], cached bool) ([]bson.Raw, error) {
	var o []query.ReadOption
	if cached {
		o = append(o, query.Cached(time.Hour))
	}
	if rd.sort != nil {
		o = append(o, query.Sort(rd.sort))
	}
	if rd.limit > 0 {
		o = append(o, query.Limit(rd.limit))
	}
	if rd.proj != nil {
		o = append(o, query.Projection(rd.proj))
	}
	switch rd.op {
	case "findOne":
		d, err := h.FindOne(ctx, rd.filter, o...)
		if errors.Is(err, query.ErrNotFound) {
			return nil, nil
		}
		return []bson.Raw{d}, err
	case "count":
		n, err := h.Count(ctx, rd.filter, o...)
		if err != nil {
			return nil, err
		}
		d, err := bson.Marshal(bson.D{{Key: "n", Value: n}})
		return []bson.Raw{d}, err
	case "aggregate":
		p := append(bson.A{bson.D{{Key: "$match", Value: rd.filter}}}, rd.stages...)
		return odm.Aggregate[bson.Raw](ctx, h, p, o...)
	}
	return h.FindMany(ctx, rd.filter, o...)
}

// same reports whether two answers of rd are the same result: in order
// when the order is defined, by value for numbers when rd is loose.
func (rd diffRead) same(a, b []bson.Raw) bool {
	ka, kb := diffKeys(a, rd.loose), diffKeys(b, rd.loose)
	if !rd.ordered {
		slices.Sort(ka)
		slices.Sort(kb)
	}
	return slices.Equal(ka, kb)
}

func diffKeys(docs []bson.Raw, loose bool) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		if loose {
			out[i] = diffLoose(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: d})
		} else {
			out[i] = string(d)
		}
	}
	return out
}

// diffLoose renders v with every number as a float64 (and -0 as 0).
func diffLoose(v bson.RawValue) string {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		f, _ := v.AsFloat64OK()
		if f == 0 {
			f = 0
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		els, _ := bson.Raw(v.Value).Elements()
		var b strings.Builder
		b.WriteString("{")
		for _, e := range els {
			b.WriteString(e.Key() + ":" + diffLoose(e.Value()) + ",")
		}
		return b.String() + "}"
	}
	return v.String()
}

// diffEnv is a round's collection: a cache, the handles reading and
// writing through it, and the raw collection on the same client, which
// has the observer.
type diffEnv struct {
	c   *cache.Cache
	rd  *odm.Collection[bson.Raw]
	h   *odm.Collection[diffDoc]
	hp  *odm.Collection[diffDoc] // pre-images on
	raw *mongo.Collection
}

// apply makes w; its error is the write's outcome, not the test's.
func (w diffWrite) apply(ctx context.Context, e diffEnv) error {
	if w.raw {
		return w.applyRaw(ctx, e.raw)
	}
	var o []query.WriteOption
	if w.upsert {
		o = append(o, odm.Upsert())
	}
	if w.after {
		o = append(o, odm.ReturnAfter())
	}
	if w.unordered {
		o = append(o, odm.Unordered())
	}
	if w.sort != nil {
		o = append(o, query.Sort(w.sort))
	}
	h := e.h
	if w.pre {
		h = e.hp
	}
	var err error
	switch w.op {
	case "insertOne":
		d := diffDocOf(w.doc)
		err = h.Insert(ctx, &d)
	case "insertMany":
		docs := make([]diffDoc, len(w.docs))
		for i, d := range w.docs {
			docs[i] = diffDocOf(d)
		}
		err = h.InsertMany(ctx, docs, o...)
	case "updateOne":
		_, err = h.UpdateOne(ctx, w.filter, w.update, o...)
	case "updateMany":
		_, err = h.UpdateMany(ctx, w.filter, w.update, o...)
	case "replaceOne":
		d := diffDocOf(w.doc)
		if w.upsert {
			err = h.Save(ctx, &d)
		} else {
			err = h.Replace(ctx, &d)
		}
	case "findOneAndUpdate":
		_, err = h.FindOneAndUpdate(ctx, w.filter, w.update, o...)
	case "findOneAndReplace":
		d := diffDocOf(w.doc)
		_, err = h.FindOneAndReplace(ctx, w.filter, &d, o...)
	case "findOneAndDelete":
		_, err = h.FindOneAndDelete(ctx, w.filter, o...)
	case "deleteOne":
		_, err = h.DeleteOne(ctx, w.filter)
	case "deleteMany":
		_, err = h.DeleteMany(ctx, w.filter)
	case "bulkWrite":
		ms := make([]mongo.WriteModel, len(w.models))
		for i, m := range w.models {
			ms[i] = m.odm()
		}
		_, err = h.BulkWrite(ctx, ms, o...)
	}
	return err
}

func (m diffModel) odm() mongo.WriteModel {
	switch m.op {
	case "insertOne":
		d := diffDocOf(m.doc)
		return mongo.NewInsertOneModel().SetDocument(&d)
	case "replaceOne":
		d := diffDocOf(m.doc)
		return mongo.NewReplaceOneModel().SetReplacement(&d)
	case "updateOne":
		return mongo.NewUpdateOneModel().SetFilter(m.filter).SetUpdate(m.update)
	case "updateMany":
		return mongo.NewUpdateManyModel().SetFilter(m.filter).SetUpdate(m.update)
	case "deleteOne":
		return mongo.NewDeleteOneModel().SetFilter(m.filter)
	}
	return mongo.NewDeleteManyModel().SetFilter(m.filter)
}

func (m diffModel) driver() mongo.WriteModel {
	switch m.op {
	case "insertOne":
		return mongo.NewInsertOneModel().SetDocument(m.doc)
	case "replaceOne":
		return mongo.NewReplaceOneModel().SetFilter(m.filter).SetReplacement(m.doc).SetUpsert(m.upsert)
	case "updateOne":
		return mongo.NewUpdateOneModel().SetFilter(m.filter).SetUpdate(m.update).SetUpsert(m.upsert)
	case "updateMany":
		return mongo.NewUpdateManyModel().SetFilter(m.filter).SetUpdate(m.update).SetUpsert(m.upsert)
	case "deleteOne":
		return mongo.NewDeleteOneModel().SetFilter(m.filter)
	}
	return mongo.NewDeleteManyModel().SetFilter(m.filter)
}

func (w diffWrite) applyRaw(ctx context.Context, c *mongo.Collection) error {
	var err error
	switch w.op {
	case "insertOne":
		_, err = c.InsertOne(ctx, w.doc)
	case "insertMany":
		docs := make([]any, len(w.docs))
		for i, d := range w.docs {
			docs[i] = d
		}
		_, err = c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(!w.unordered))
	case "updateOne":
		_, err = c.UpdateOne(ctx, w.filter, w.update, options.UpdateOne().SetUpsert(w.upsert))
	case "updateMany":
		_, err = c.UpdateMany(ctx, w.filter, w.update, options.UpdateMany().SetUpsert(w.upsert))
	case "replaceOne":
		_, err = c.ReplaceOne(ctx, w.filter, w.doc, options.Replace().SetUpsert(w.upsert))
	case "findOneAndUpdate":
		o := options.FindOneAndUpdate().SetUpsert(w.upsert)
		if w.after {
			o.SetReturnDocument(options.After)
		}
		if w.sort != nil {
			o.SetSort(w.sort)
		}
		err = c.FindOneAndUpdate(ctx, w.filter, w.update, o).Err()
	case "findOneAndReplace":
		o := options.FindOneAndReplace().SetUpsert(w.upsert)
		if w.after {
			o.SetReturnDocument(options.After)
		}
		err = c.FindOneAndReplace(ctx, w.filter, w.doc, o).Err()
	case "findOneAndDelete":
		o := options.FindOneAndDelete()
		if w.sort != nil {
			o.SetSort(w.sort)
		}
		err = c.FindOneAndDelete(ctx, w.filter, o).Err()
	case "deleteOne":
		_, err = c.DeleteOne(ctx, w.filter)
	case "deleteMany":
		_, err = c.DeleteMany(ctx, w.filter)
	case "bulkWrite":
		ms := make([]mongo.WriteModel, len(w.models))
		for i, m := range w.models {
			ms[i] = m.driver()
		}
		_, err = c.BulkWrite(ctx, ms, options.BulkWrite().SetOrdered(!w.unordered))
	}
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	return err
}

// diffStale is a stale read: read (an index into the case's reads) after
// write (an index into its writes; -1 before any write).
type diffStale struct {
	read, write       int
	hit               bool
	served, server    []bson.Raw
	servedErr, srvErr error
}

// diffTally is what a round checked.
type diffTally struct {
	checked, afterWrite, hitsAfterWrite int
	writes, writeErrs, srvRefused       int
	refused                             []int // reads the server refuses: dropped
	stale                               []diffStale
	stats                               cache.Stats
	diverged                            []diffDivergence // with annotate
}

func (t *diffTally) add(o diffTally) {
	t.checked += o.checked
	t.afterWrite += o.afterWrite
	t.hitsAfterWrite += o.hitsAfterWrite
	t.writes += o.writes
	t.writeErrs += o.writeErrs
	t.srvRefused += o.srvRefused
	s, o2 := &t.stats, o.stats
	s.Hits, s.Misses, s.Bypassed, s.Unsettled = s.Hits+o2.Hits, s.Misses+o2.Misses, s.Bypassed+o2.Bypassed, s.Unsettled+o2.Unsettled
	s.InvalidatedByID, s.InvalidatedByMatch = s.InvalidatedByID+o2.InvalidatedByID, s.InvalidatedByMatch+o2.InvalidatedByMatch
	s.InvalidatedByPath, s.InvalidatedWide = s.InvalidatedByPath+o2.InvalidatedByPath, s.InvalidatedWide+o2.InvalidatedWide
	s.Kept, s.Discarded = s.Kept+o2.Kept, s.Discarded+o2.Discarded
	s.Held, s.Released, s.PreImages = s.Held+o2.Held, s.Released+o2.Released, s.PreImages+o2.PreImages
}

// diffFuzzer plays cases against the server.
type diffFuzzer struct {
	t      *testing.T
	db     *mongo.Database
	rounds int
	// ferret: the server is FerretDB, whose pinned gaps explain some
	// divergences (difffuzz_gaps_test.go).
	ferret bool
	// annotate records where the server's answers to the filters of the
	// reads (at each check) and of the writes (before each) are not
	// MongoDB's as internal/match reproduces them.
	annotate bool
}

// play runs cs on a fresh collection with a fresh cache: every read cached
// twice and checked, then after each write every read checked again, until
// it is first stale (its entry stays stale: a later difference would be
// the same one). With stop, it returns at the first stale read of read
// stop (-1: none).
func (f *diffFuzzer) play(ctx context.Context, cs diffCase, stop int) (tl diffTally) {
	f.rounds++
	name := "diff" + strconv.Itoa(f.rounds)
	raw := f.db.Collection(name)
	coll := f.db.Collection(name)
	c, err := cache.New(cache.Config{MaxCost: 8 << 20})
	require.NoError(f.t, err)
	defer c.Close()
	defer func() { _ = raw.Drop(context.WithoutCancel(ctx)) }()
	e := diffEnv{c: c, rd: handle[bson.Raw](f.t, coll, odm.WithCache(c)), h: handle[diffDoc](f.t, coll, odm.WithCache(c)), raw: raw,
		hp: handle[diffDoc](f.t, coll, odm.WithCache(c), odm.WithPreImages())}
	if len(cs.docs) > 0 {
		docs := make([]any, len(cs.docs))
		for i, d := range cs.docs {
			docs[i] = d
		}
		_, err := raw.InsertMany(ctx, docs)
		require.NoError(f.t, err, "seed the round")
	}
	defer func() { tl.stats = c.Stats() }()
	live := make([]bool, len(cs.reads))
	for i, rd := range cs.reads {
		_, err := rd.run(ctx, e.rd, false)
		if live[i] = err == nil; !live[i] {
			tl.refused = append(tl.refused, i)
		}
	}
	check := func(write int) bool {
		docs := f.docs(ctx, raw)
		for i, rd := range cs.reads {
			if !live[i] {
				continue
			}
			f.diverges(ctx, raw, docs, &tl, rd.filter, i, write)
			s := f.check(ctx, e, rd, &tl, write)
			if s != nil {
				s.read, live[i] = i, false
				tl.stale = append(tl.stale, *s)
				if i == stop {
					return false
				}
			}
		}
		return true
	}
	for range 2 { // the first fills each entry, the second is a hit
		if !check(-1) {
			return tl
		}
	}
	for i, w := range cs.writes {
		docs := f.docs(ctx, raw)
		for _, m := range append([]diffModel{{filter: w.filter}}, w.models...) {
			f.diverges(ctx, raw, docs, &tl, m.filter, -1, i)
		}
		tl.writes++
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if err := w.apply(wctx, e); err != nil {
			tl.writeErrs++
		}
		cancel()
		if !check(i) {
			return tl
		}
	}
	return tl
}

// docs are the documents now in c, with annotate.
func (f *diffFuzzer) docs(ctx context.Context, c *mongo.Collection) []bson.Raw {
	if !f.annotate {
		return nil
	}
	return diffAll(ctx, c)
}

// diverges records, with annotate, where the server's answer to filter on
// docs (those now in c) is not internal/match's, and on FerretDB the
// pinned gap that explains it: filter is read's at the check after write,
// or with read -1, write's.
func (f *diffFuzzer) diverges(ctx context.Context, c *mongo.Collection, docs []bson.Raw, tl *diffTally, filter bson.D, read, write int) {
	if !f.annotate {
		return
	}
	d := diffDiverges(ctx, c, docs, filter)
	if d == nil {
		return
	}
	d.read, d.write = read, write
	if f.ferret {
		d.gap = diffExplain(ctx, c, docs, d)
	}
	tl.diverged = append(tl.diverged, *d)
}

// check makes rd cached, then uncached, and returns the stale read if they
// differ.
func (f *diffFuzzer) check(ctx context.Context, e diffEnv, rd diffRead, tl *diffTally, write int) *diffStale {
	h0 := e.c.Stats().Hits
	got, gerr := rd.run(ctx, e.rd, true)
	hit := e.c.Stats().Hits > h0
	cache.Core(e.c).Wait()
	want, werr := rd.run(ctx, e.rd, false)
	tl.checked++
	if write >= 0 {
		tl.afterWrite++
		if hit {
			tl.hitsAfterWrite++
		}
	}
	switch {
	case werr != nil:
		// The dev server refuses some filters on some documents: a
		// cached answer to a read the server refuses is not compared.
		tl.srvRefused++
		return nil
	case gerr == nil && rd.same(got, want):
		return nil
	}
	return &diffStale{write: write, hit: hit, served: got, server: want, servedErr: gerr, srvErr: werr}
}
