package livepage_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/examples/live/livepage"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// sse reads Server-Sent Events: each event's name and data.
type sse struct{ r *bufio.Reader }

func (s sse) next(t *testing.T) (event, data string) {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && event != "":
			return event, data
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		}
	}
}

func titles(t *testing.T, data string) []string {
	t.Helper()
	var items []livepage.Item
	require.NoError(t, json.Unmarshal([]byte(data), &items))
	out := []string{}
	for _, it := range items {
		out = append(out, it.Title)
	}
	return out
}

// TestEventStream reads the example's stream as a browser's EventSource
// would: the open items at once, then the new list after each write
// (odm and raw driver writes), and the live query is released when the
// client goes away.
func TestEventStream(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	c, err := cache.New(cache.Config{})
	require.NoError(t, err)
	defer c.Close()
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	coll := testdb.DBOn(t, cl).Collection("items")
	items, err := odm.New[livepage.Item](coll, odm.WithCache(c))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, items.Save(ctx, &livepage.Item{ID: 1, Title: "write the docs"}))
	require.NoError(t, items.Save(ctx, &livepage.Item{ID: 2, Title: "ship it", Done: true}))

	srv := httptest.NewServer(livepage.Handler(items))
	defer srv.Close()

	page, err := http.Get(srv.URL)
	require.NoError(t, err)
	page.Body.Close()
	assert.Equal(t, http.StatusOK, page.StatusCode)

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, srv.URL+"/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events := sse{bufio.NewReader(resp.Body)}

	ev, data := events.next(t)
	assert.Equal(t, "items", ev)
	assert.Equal(t, []string{"write the docs"}, titles(t, data))

	require.NoError(t, items.Save(ctx, &livepage.Item{ID: 3, Title: "test in a browser"}))
	_, data = events.next(t)
	assert.Equal(t, []string{"write the docs", "test in a browser"}, titles(t, data))

	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}}}})
	require.NoError(t, err)
	_, data = events.next(t)
	assert.Equal(t, []string{"test in a browser"}, titles(t, data))

	// The client goes away: the handler's live query ends (leak-checked);
	// a write after that reaches no one.
	cancel()
	resp.Body.Close()
	_, err = items.UpdateOne(ctx, query.Eq("_id", 3), bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}}}})
	require.NoError(t, err)
}
