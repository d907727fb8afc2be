package cachecore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// woken reports whether w was signalled (and takes the signal).
func woken(w *Watch) bool {
	select {
	case <-w.C():
		return true
	default:
		return false
	}
}

// TestWatchWakes: what wakes a live query's watch, by its rules. Pure
// code: the loads return documents built here.
func TestWatchWakes(t *testing.T) {
	src := &stubSource{sinks: make(chan Sink, 1)}
	c := newTestCache(t, Config{Source: src})
	sink := <-src.sinks
	sink.Synced()
	q := Key{Database: "db", Collection: "c", Filter: bson.D{{Key: "team", Value: "a"}}, Simple: true, Shape: simpleShape}
	doc := func(id int, team string) bson.Raw {
		return mustRaw(t, bson.D{{Key: "_id", Value: id}, {Key: "team", Value: team}})
	}
	load := func(ctx context.Context) ([]bson.Raw, error) {
		observed(ctx)
		return []bson.Raw{doc(1, "a")}, nil
	}
	w := c.Watch(q)
	defer w.Close()
	read := func() Handle {
		t.Helper()
		w.Begin()
		_, h, err := c.FetchLive(context.Background(), q, time.Hour, load, nil, nil)
		require.NoError(t, err)
		w.Track(h)
		c.Wait()
		return h
	}
	set := func(id int, team string) Change {
		return Change{DB: "db", Coll: "c", Stmts: []Stmt{upd(t, id, setOp(bson.E{Key: "team", Value: team}))}}
	}

	h := read()
	require.True(t, h.Tracked())
	woken(w) // Synced at the start

	Apply(set(2, "b")) // document 2 is not in team a, and stays out
	assert.False(t, woken(w), "a write the rules say cannot change the result")
	Apply(set(2, "a"))
	assert.True(t, woken(w), "a document joins the result")

	read()
	Apply(Change{DB: "db", Coll: "other", Stmts: []Stmt{upd(t, 1, setOp(bson.E{Key: "team", Value: "b"}))}})
	assert.False(t, woken(w), "another collection")

	sink.Lost(errors.New("log wrapped"))
	assert.True(t, woken(w), "the Source lost its place: everything may have changed")
	h = read() // not following: served from the server, not stored
	assert.False(t, h.Tracked())
	Apply(set(3, "z"))
	assert.True(t, woken(w), "untracked: any write of the collection")
	read()
	sink.Synced()
	assert.True(t, woken(w), "following again: writes may have been missed meanwhile")

	read()
	c.InvalidateAll()
	assert.True(t, woken(w))

	h = read()
	require.False(t, h.Expires().IsZero(), "a stored result's entry expires")
	key, err := q.canonical()
	require.NoError(t, err)
	c.ristretto(func() { c.rc.Del(key); c.rc.Wait() }) // as an eviction
	time.Sleep(10 * time.Millisecond)
	assert.False(t, woken(w), "an entry leaving the cache is not a write")
	Apply(set(4, "z")) // a write the rules would rule out for a tracked entry
	assert.True(t, woken(w), "out of the cache, the result is untracked: any write wakes it")

	// A write applied between the read and Track is seen by Track.
	w.Begin()
	_, h, err = c.FetchLive(context.Background(), q, time.Hour, load, nil, nil)
	require.NoError(t, err)
	Apply(set(1, "b"))
	woken(w) // (the signal of the write itself, if any)
	w.Track(h)
	assert.True(t, woken(w), "Track sees the write that came before it")

	w.Close()
	read()
	Apply(set(1, "a"))
	assert.False(t, woken(w), "closed")
}
