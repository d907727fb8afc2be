package coherence

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/query"
)

// TestLiveAcrossProcesses: a live query in this process of documents
// 1..10, while a writer in another OS process (runWriter: odm Save and
// UpdateOne, half with pre-images, one document per write, version v by
// the v-th write) writes through its own cache and Log. The writer's
// writes are sequential and each sets one document, so the collection's
// history is known exactly: every yield must be the state after some
// prefix of the writes — the one its newest version says — never a mix
// (a linearizable history); no two consecutive yields equal; and after the
// last write the last yield is the final state, within the bound.
func TestLiveAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a second process for about 3 s")
	}
	leakcheck.Check(t, 10*time.Second)
	const writes = 100
	db := testdb.DB(t).Name()
	a := newPeer(t, observedClient(t), db)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for id := 1; id <= 10; id++ {
		a.replace(t, id, 0)
	}

	type yield struct {
		docs []Doc
		at   time.Time
	}
	var mu sync.Mutex
	var yields []yield
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s, err := range a.reader.Live(ctx, query.Lte("_id", 10), query.Sort(bson.D{{Key: "_id", Value: 1}})) {
			if err != nil {
				t.Errorf("live query: %v", err)
				return
			}
			mu.Lock()
			yields = append(yields, yield{s.Value, time.Now()})
			mu.Unlock()
		}
	}()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(yields) > 0 }, 20*time.Second, time.Millisecond)

	cmd, out := startWriter(t, db, writes, modeDescriptors)
	var seq []int // seq[v-1]: the document write v set
	var wrote []time.Time
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var id, v int
		var at int64
		_, err := fmt.Sscan(sc.Text(), &id, &v, &at)
		require.NoError(t, err, sc.Text())
		require.Equal(t, len(seq)+1, v)
		seq = append(seq, id)
		wrote = append(wrote, time.Unix(0, at))
	}
	require.NoError(t, cmd.Wait())
	require.Len(t, seq, writes)

	// state returns the documents after the first m writes.
	state := func(m int) []Doc {
		docs := make([]Doc, 10)
		for i := range docs {
			docs[i] = Doc{ID: i + 1}
		}
		for v := 1; v <= m; v++ {
			docs[seq[v-1]-1].V = v
		}
		return docs
	}
	final := state(writes)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(yields[len(yields)-1].docs, final)
	}, 20*time.Second, time.Millisecond, "the last yield is the final state")
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	var delays []time.Duration
	prev := -1
	for i, y := range yields {
		m := 0
		for _, d := range y.docs {
			m = max(m, d.V)
		}
		assert.Equal(t, state(m), y.docs, "yield %d is the state after write %d", i, m)
		assert.GreaterOrEqual(t, m, prev, "yield %d is older than yield %d", i, i-1)
		if i > 0 {
			assert.NotEqual(t, yields[i-1].docs, y.docs, "yields %d and %d are equal", i-1, i)
		}
		if m > 0 && m > prev {
			delays = append(delays, y.at.Sub(wrote[m-1]))
		}
		prev = m
	}
	slices.Sort(delays)
	t.Logf("%d writes in another process, %d yields (writes closer than a read coalesce); from a write's return there to the yield that first shows it here: p50 %v, p99 %v, last write %v",
		writes, len(yields), delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1])
}
