package cache_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
)

// New sizes a cache in bytes of results; the zero Config is valid.
func ExampleNew() {
	c, err := cache.New(cache.Config{MaxCost: 256 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// Give it to collection handles: odm.New(coll, odm.WithCache(c)).
	fmt.Println(c.Stats().MaxBytes>>20, "MiB,", c.Stats().HitRatio())
	// Output: 256 MiB, 0
}

// Observer installed at connect, on every client whose reads a cache
// caches, keeps every cache of the process correct for every write the
// client sends, raw driver writes and transactions included; a cache
// stores nothing loaded through a client without it. Pass your own
// monitor, if any, to have it chained.
func ExampleObserver() {
	client, err := mongo.Connect(options.Client().
		ApplyURI(os.Getenv("MONGODB_URI")).
		SetMonitor(cache.Observer(nil)))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(context.Background())
}

// NewLogTracer writes why reads were not cached, or not cached precisely,
// to a log/slog logger at debug level; writes of unknown outcome and a
// Source that lost its place at warn level.
func ExampleNewLogTracer() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := cache.New(cache.Config{Tracer: cache.NewLogTracer(logger)})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// A cached read through a handle with this cache then logs, e.g.:
	// level=DEBUG msg="databridge: cached read" db=shop collection=orders op=find
	//   outcome=miss stored=true collection_wide=sort_not_total docs=20 bytes=4210 decode=31µs
}

// outcomes is a Tracer that counts cached reads by outcome and by the
// query shape that put them under the collection-wide rule.
type outcomes struct {
	mu     sync.Mutex
	byKind map[string]int
}

func (o *outcomes) TraceReadStart(ctx context.Context, _ cache.ReadStart) context.Context { return ctx }

func (o *outcomes) TraceReadEnd(_ context.Context, r cache.ReadEnd) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.byKind[r.Outcome.String()]++
	if r.Wide != cache.WideNone {
		o.byKind["wide:"+r.Wide.String()]++
	}
}

// A Tracer of your own: two methods, pgx's QueryTracer shape. Implement
// WriteTracer and SourceTracer too to see writes and the Source.
func ExampleTracer() {
	t := &outcomes{byKind: map[string]int{}}
	c, err := cache.New(cache.Config{Tracer: t})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// Give c to handles (odm.WithCache(c)); every cached read reaches t.
}
