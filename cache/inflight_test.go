package cache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// TestWriteAppliedBeforeAnEarlierOne: the rules judge a write against the
// cached documents, which must not be out of date because of another write
// that the server ran first but whose reply the process has not seen yet.
// W1 ($set status "shipped" on an order in a cached list of paid orders)
// runs on the server; its reply is held back (a slow goroutine, forced
// here by delaying its event to the observer). W2 (an UpdateMany of the
// shipped orders) runs next, matches that order, and returns. A read that
// starts after W2 returned must see the order as the server has it now:
// shipped, so not in the list. On 09ccb81 the list was kept by W2 (its
// cached copy of the order was still "paid", which W2's filter does not
// match) and served the order as paid, until W1's reply arrived.
func TestWriteAppliedBeforeAnEarlierOne(t *testing.T) {
	var (
		mu      sync.Mutex
		holdW1  = make(chan struct{})
		w1Done  = make(chan struct{})
		w1Req   int64
		w1Found bool
	)
	obs := cache.Observer(nil)
	mon := &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			if e.CommandName == "update" {
				if u, _ := e.Command.Lookup("updates", "0", "u", "$set", "status").StringValueOK(); u == "shipped" {
					mu.Lock()
					w1Req, w1Found = e.RequestID, true
					mu.Unlock()
				}
			}
			obs.Started(ctx, e)
		},
		Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
			mu.Lock()
			held := w1Found && e.RequestID == w1Req
			mu.Unlock()
			if held {
				close(w1Done) // W1 ran on the server
				<-holdW1
			}
			obs.Succeeded(ctx, e)
		},
		Failed: obs.Failed,
	}
	cl := testdb.NewClient(t, options.Client().SetMonitor(mon))
	db := testdb.DBOn(t, cl)
	ctx := context.Background()
	raw := db.Collection("orders")
	_, err := raw.InsertMany(ctx, []any{
		Order{ID: 1, Tenant: "a", Status: "paid", CreatedAt: 1},
		Order{ID: 2, Tenant: "a", Status: "paid", CreatedAt: 2},
	})
	require.NoError(t, err)
	c := newCache(t, cache.Config{})
	h := handle[Order](t, db.Collection("orders"), odm.WithCache(c))
	paid := func() []Order {
		got, err := h.FindMany(ctx, query.Eq("status", "paid"), query.Sort(bson.D{{Key: "_id", Value: 1}}), query.Cached(time.Hour))
		require.NoError(t, err)
		return got
	}
	require.Len(t, paid(), 2)

	w1 := make(chan error, 1)
	go func() {
		_, err := raw.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, set("status", "shipped"))
		w1 <- err
	}()
	<-w1Done
	_, err = raw.UpdateMany(ctx, bson.D{{Key: "status", Value: "shipped"}}, set("archived", true))
	require.NoError(t, err)

	got := paid()
	close(holdW1)
	require.NoError(t, <-w1)
	assert.Equal(t, []Order{{ID: 2, Tenant: "a", Status: "paid", CreatedAt: 2}}, got,
		"a read after W2 returned sees order 1 as the server has it: shipped")
	assert.Equal(t, got, paid(), "and after W1's reply")
}
