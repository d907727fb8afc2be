package cachecore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestCloseWhileLoading: loads and writes that end after Close neither
// panic nor block. On 3714b1a an independent tester saw both: ristretto's
// SetWithTTL sent on a closed channel ("send on closed channel") and Wait
// blocked for good, when a load stored its result after Close.
// Bookkeeping only: the loads are functions.
func TestCloseWhileLoading(t *testing.T) {
	for run := range 20 {
		c, err := New(Config{})
		require.NoError(t, err)
		doc, err := bson.Marshal(bson.D{{Key: "_id", Value: 1}})
		require.NoError(t, err)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 20 {
					q := Key{Database: "db", Collection: "c", Filter: bson.D{{Key: "k", Value: fmt.Sprint(g, "/", i)}}}
					_, _ = c.Fetch(context.Background(), q, time.Minute, func(ctx context.Context) ([]bson.Raw, error) {
						observed(ctx)
						time.Sleep(50 * time.Microsecond)
						return []bson.Raw{doc}, nil
					}, nil)
					Apply(Change{DB: "db", Coll: "c", Stmts: []Stmt{{Op: OpDelete, Filter: doc}}})
				}
			}()
		}
		time.Sleep(time.Duration(run%5) * time.Millisecond)
		c.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("run %d: loads still blocked 30 s after Close", run)
		}
	}
}
