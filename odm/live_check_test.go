package odm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// Checked is the document of the live-query checker: a team, a score, tags
// and a nested value, so that filters, sorts and limits of every shape
// have something to read.
type Checked struct {
	ID     int      `bson:"_id"`
	Team   string   `bson:"team"`
	Score  int      `bson:"score"`
	Tags   []string `bson:"tags"`
	Nested struct {
		X int `bson:"x"`
	} `bson:"nested"`
}

// yield is one result of a live query: its value, and the window in which
// the read that made it ran (from the previous yield's return to this
// yield).
type yield struct {
	s        string
	from, to time.Time
}

// collect sends each value of a live query to out with its read's window.
func collect[V any](seq func(func(odm.Snapshot[V], error) bool), out chan<- yield) {
	from := time.Now()
	for s, err := range seq {
		to := time.Now()
		if err != nil {
			out <- yield{s: "error: " + err.Error(), from: from, to: to}
			return
		}
		out <- yield{s: canon(s.Value), from: from, to: to}
		from = time.Now()
	}
}

// liveCase is one live query of the checker, and its uncached twin: the
// server's own answer, read by the coordinator after each write.
type liveCase struct {
	name   string
	start  func(ctx context.Context, h *odm.Collection[Checked], out chan<- yield)
	answer func(ctx context.Context, h *odm.Collection[Checked]) (string, error)
}

func canon(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// findCase is a live find and the same find uncached.
func findCase(name string, filter any, opts ...query.ReadOption) liveCase {
	return liveCase{
		name: name,
		start: func(ctx context.Context, h *odm.Collection[Checked], out chan<- yield) {
			collect(h.Live(ctx, filter, opts...), out)
		},
		answer: func(ctx context.Context, h *odm.Collection[Checked]) (string, error) {
			v, err := h.FindMany(ctx, filter, opts...)
			return canon(v), err
		},
	}
}

func countCase(name string, filter any) liveCase {
	return liveCase{
		name: name,
		start: func(ctx context.Context, h *odm.Collection[Checked], out chan<- yield) {
			collect(h.LiveCount(ctx, filter), out)
		},
		answer: func(ctx context.Context, h *odm.Collection[Checked]) (string, error) {
			n, err := h.Count(ctx, filter)
			return canon(n), err
		},
	}
}

func aggCase(name string, pipeline bson.A) liveCase {
	type sum struct {
		ID  string `bson:"_id"`
		Sum int    `bson:"sum"`
	}
	return liveCase{
		name: name,
		start: func(ctx context.Context, h *odm.Collection[Checked], out chan<- yield) {
			collect(odm.LiveAggregate[sum](ctx, h, pipeline), out)
		},
		answer: func(ctx context.Context, h *odm.Collection[Checked]) (string, error) {
			v, err := odm.Aggregate[sum](ctx, h, pipeline)
			return canon(v), err
		},
	}
}

// TestLiveChecker checks live queries against a linearizable history:
// one coordinator issues random writes of every kind (odm by _id and by
// filter, inserts, deletes, raw driver writes on an observed client), one
// at a time, and after each records every query's answer as the server
// gives it uncached (state j). Each live query's yields must then be
// states of that history in order (each equal to some state at or after
// the one its previous yield matched: never an older result, never a
// result the collection never had), no two consecutive yields equal, and,
// once the writes stop, its last yield the final state's answer within
// the bound. DATABRIDGE_LIVE_WRITES sets the number of writes (default
// 150), DATABRIDGE_LIVE_SEED the seed (default: random, logged).
//
// It runs twice: with writes of one document only, where every yield must
// be a state of the history, and with every kind, where a yield read
// while a write of several documents ran may be a state between two (the
// server applies such a write document by document), counted apart.
func TestLiveChecker(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	t.Run("single-document writes", func(t *testing.T) { checkLive(t, true) })
	t.Run("every kind of write", func(t *testing.T) { checkLive(t, false) })
}

func checkLive(t *testing.T, single bool) {
	writes := 150
	if s := os.Getenv("DATABRIDGE_LIVE_WRITES"); s != "" {
		var err error
		writes, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	seed := rand.Uint64()
	if s := os.Getenv("DATABRIDGE_LIVE_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (DATABRIDGE_LIVE_SEED), %d writes, single-document writes only: %v", seed, writes, single)
	rng := rand.New(rand.NewPCG(seed, 0))

	c, err := cache.New(cache.Config{})
	require.NoError(t, err)
	defer c.Close()
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	coll := testdb.DBOn(t, cl).Collection("checked")
	h, err := odm.New[Checked](coll, odm.WithCache(c))
	require.NoError(t, err)
	plain, err := odm.New[Checked](coll) // the coordinator's uncached reads
	require.NoError(t, err)
	ctx := context.Background()
	teams := []string{"a", "b", "c"}
	tags := []string{"x", "y", "z"}
	doc := func(id int) Checked {
		d := Checked{ID: id, Team: teams[rng.IntN(3)], Score: rng.IntN(20), Tags: []string{tags[rng.IntN(3)]}}
		if rng.IntN(2) == 0 {
			d.Tags = append(d.Tags, tags[rng.IntN(3)])
		}
		d.Nested.X = rng.IntN(10)
		return d
	}
	for id := range 20 {
		d := doc(id)
		require.NoError(t, h.Save(ctx, &d))
	}

	byID := query.Sort(bson.D{{Key: "_id", Value: 1}})
	cases := []liveCase{
		findCase("team a", query.Eq("team", "a"), byID),
		findCase("top 3 by score", nil, query.Sort(bson.D{{Key: "score", Value: -1}, {Key: "_id", Value: 1}}), query.Limit(3)),
		findCase("tagged x", query.Eq("tags", "x"), byID),
		findCase("nested x < 5", query.Lt("nested.x", 5), byID),
		findCase("teams projected", nil, byID, query.Projection(bson.D{{Key: "team", Value: 1}})),
		findCase("one by _id", query.Eq("_id", 3)),
		findCase("score in [5, 10)", query.And(query.Gte("score", 5), query.Lt("score", 10)), byID),
		findCase("skip 2 (collection-wide)", nil, byID, query.Skip(2)),
		findCase("top 2 by score only (collection-wide: the sort is not total)", query.Eq("team", "b"), query.Sort(bson.D{{Key: "score", Value: -1}}), query.Limit(2)),
		countCase("count team b", query.Eq("team", "b")),
		countCase("count score > 10", query.Gt("score", 10)),
		aggCase("sum of c's scores", bson.A{
			bson.D{{Key: "$match", Value: bson.D{{Key: "team", Value: "c"}}}},
			bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$team"}, {Key: "sum", Value: bson.D{{Key: "$sum", Value: "$score"}}}}}},
		}),
	}
	// "top 2 by score only" is not a total order: the server picks among
	// ties, and the same server state gives the same pick to the live read
	// and the coordinator's (true of the dev server; a MongoDB plan change
	// between two reads could pick differently, and fail this check).

	answers := make([][]string, len(cases)) // answers[q][j]: state j's
	record := func() {
		for q, lc := range cases {
			a, err := lc.answer(ctx, plain)
			require.NoError(t, err, lc.name)
			answers[q] = append(answers[q], a)
		}
	}
	record()

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type yielded struct {
		mu   sync.Mutex
		seen []string
		win  []yield
	}
	got := make([]*yielded, len(cases))
	var wg sync.WaitGroup
	for q, lc := range cases {
		got[q] = &yielded{}
		out := make(chan yield)
		wg.Go(func() { lc.start(lctx, h, out); close(out) })
		wg.Go(func() {
			for y := range out {
				got[q].mu.Lock()
				got[q].seen = append(got[q].seen, y.s)
				got[q].win = append(got[q].win, y)
				got[q].mu.Unlock()
			}
		})
	}
	// The first yields, before any write.
	require.Eventually(t, func() bool {
		for _, g := range got {
			g.mu.Lock()
			n := len(g.seen)
			g.mu.Unlock()
			if n == 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, time.Millisecond)

	next := 20
	kinds := map[string]int{}
	history := []string{"setup"}
	// wrote[j] is when write j (which made state j) ran; state 0 is the
	// setup's.
	type span struct{ start, end time.Time }
	wrote := []span{{}}
	// A write of several documents is not atomic: a read while it runs may
	// see some of its documents changed and not others, a state between
	// two of the history's. Their times say which yields may be one.
	var multi []span
	for range writes {
		id := rng.IntN(next + 2) // sometimes a missing _id
		var err error
		kind := ""
		start := time.Now()
		k := rng.IntN(11)
		if single && (k == 3 || k == 5 || k == 7 || k == 9) {
			k = 1
		}
		switch k {
		case 0:
			kind = "odm Save"
			d := doc(id)
			err = h.Save(ctx, &d)
			next = max(next, id+1) // an upsert of a new _id: inserts take the ones after it
		case 1:
			kind = "odm UpdateOne $set by _id"
			_, err = h.UpdateOne(ctx, query.Eq("_id", id), bson.D{{Key: "$set", Value: bson.D{{Key: "team", Value: teams[rng.IntN(3)]}}}})
		case 2:
			kind = "odm UpdateOne $inc by _id"
			_, err = h.UpdateOne(ctx, query.Eq("_id", id), bson.D{{Key: "$inc", Value: bson.D{{Key: "score", Value: rng.IntN(7) - 3}}}})
		case 3:
			kind = "odm UpdateMany by filter"
			_, err = h.UpdateMany(ctx, query.Eq("team", teams[rng.IntN(3)]), bson.D{{Key: "$set", Value: bson.D{{Key: "nested.x", Value: rng.IntN(10)}}}})
		case 4:
			kind = "odm DeleteOne"
			_, err = h.DeleteOne(ctx, query.Eq("_id", id))
		case 5:
			kind = "odm InsertMany"
			ds := []Checked{doc(next), doc(next + 1)}
			next += 2
			err = h.InsertMany(ctx, ds)
		case 6:
			kind = "raw UpdateOne $push"
			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$push", Value: bson.D{{Key: "tags", Value: tags[rng.IntN(3)]}}}})
		case 7:
			kind = "raw UpdateMany by filter"
			_, err = coll.UpdateMany(ctx, bson.D{{Key: "score", Value: bson.D{{Key: "$gte", Value: rng.IntN(20)}}}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "score", Value: -1}}}})
		case 8:
			kind = "raw ReplaceOne"
			_, err = coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc(id)) // no upsert
		case 9:
			kind = "raw DeleteMany"
			_, err = coll.DeleteMany(ctx, bson.D{{Key: "nested.x", Value: rng.IntN(10)}, {Key: "team", Value: teams[rng.IntN(3)]}})
		case 10:
			kind = "raw InsertOne"
			_, err = coll.InsertOne(ctx, doc(next))
			next++
		}
		require.NoError(t, err, kind)
		wrote = append(wrote, span{start, time.Now()})
		switch kind {
		case "odm UpdateMany by filter", "odm InsertMany", "raw UpdateMany by filter", "raw DeleteMany":
			multi = append(multi, span{start, time.Now()})
		}
		kinds[kind]++
		history = append(history, fmt.Sprintf("%s of %d, %s-%s", kind, id, start.Format("15:04:05.000000"), time.Now().Format("15:04:05.000000")))
		record()
	}
	t.Logf("writes by kind: %v", kinds)

	// Once the writes stop: every query's last yield is the final answer.
	last := len(answers[0]) - 1
	deadline := time.Now().Add(30 * time.Second)
	for q := range cases {
		for {
			got[q].mu.Lock()
			s := got[q].seen[len(got[q].seen)-1]
			got[q].mu.Unlock()
			if s == answers[q][last] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the last yield is not the final state's answer 30 s after the writes stopped:\n got %s\nwant %s", cases[q].name, s, answers[q][last])
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	cancel()
	wg.Wait()

	partial := func(from, to time.Time) bool {
		for _, m := range multi {
			if m.start.Before(to) && m.end.After(from) {
				return true
			}
		}
		return false
	}
	yields, changes, between := 0, 0, 0
	for q, lc := range cases {
		seen := got[q].seen
		yields += len(seen)
		for j := 1; j < len(answers[q]); j++ {
			if answers[q][j] != answers[q][j-1] {
				changes++
			}
		}
		// visible reports whether state j may be what a read in w saw: it
		// began to show during write j and stopped during write j+1.
		visible := func(j int, w yield) bool {
			if j > 0 && wrote[j].start.After(w.to) {
				return false
			}
			return j+1 >= len(wrote) || !wrote[j+1].end.Before(w.from)
		}
		at := 0 // the state the previous yield matched
		for i, s := range seen {
			if i > 0 && s == seen[i-1] {
				t.Errorf("%s: yields %d and %d are equal: %s", lc.name, i-1, i, s)
			}
			j := at
			for j < len(answers[q]) && (answers[q][j] != s || !visible(j, got[q].win[i])) {
				j++
			}
			if j == len(answers[q]) && partial(got[q].win[i].from, got[q].win[i].to) {
				between++ // read while a write of several documents ran
				continue
			}
			if j == len(answers[q]) {
				t.Errorf("%s: yield %d is no state of the history at or after state %d visible while its read ran:\n%s\n(state %d: %s)", lc.name, i, at, s, at, answers[q][at])
				t.Logf("  read between %s and %s; the previous yield: %s", got[q].win[i].from.Format("15:04:05.000000"), got[q].win[i].to.Format("15:04:05.000000"), seen[max(i-1, 0)])
				for j := max(at-2, 0); j < min(at+4, len(answers[q])); j++ {
					t.Logf("  state %d (after %s): %s", j, history[j], answers[q][j])
				}
				for k := 0; k < len(answers[q]); k++ {
					if answers[q][k] == s {
						t.Logf("  the yield is state %d's answer (after %s)", k, history[k])
					}
				}
				break
			}
			at = j
		}
	}
	if single && between > 0 {
		t.Errorf("%d yields matched no state with single-document writes only", between)
	}
	t.Logf("%d queries, %d writes: %d yields for %d changes of the server's answers (a change between two yields coalesces); %d yields were states between two (read while a write of several documents ran)", len(cases), writes, yields, changes, between)
}
