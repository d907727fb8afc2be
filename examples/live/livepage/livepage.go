// Package livepage serves a live list over HTTP: a small HTML page, and
// the list's live query as Server-Sent Events, for the live example
// (examples/live) and its browser test.
package livepage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// Item is the example's model: a to-do item.
type Item struct {
	ID    int    `bson:"_id" json:"id"`
	Title string `bson:"title" json:"title"`
	Done  bool   `bson:"done" json:"done"`
}

// Handler serves the page at / and the live list of open items at
// /events: one event, "items", with the whole list as JSON, at once and
// then each time it changes.
func Handler(items *odm.Collection[Item]) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		serveEvents(r.Context(), w, items)
	})
	return mux
}

// serveEvents streams the live list until the client goes away (its
// request's context ends, which ends the live query and releases it).
func serveEvents(ctx context.Context, w http.ResponseWriter, items *odm.Collection[Item]) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	// A short interval between reads: a burst of writes is one event.
	open := items.Live(ctx, query.Eq("done", false),
		query.Sort(bson.D{{Key: "_id", Value: 1}}), query.MinInterval(50*time.Millisecond))
	for snap, err := range open {
		if err != nil {
			fmt.Fprintf(w, "event: error\ndata: %q\n\n", "the list is not available")
			_ = rc.Flush()
			return
		}
		list := snap.Value
		if list == nil {
			list = []Item{}
		}
		data, err := json.Marshal(list)
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "event: items\ndata: %s\n\n", data); err != nil {
			return // the client went away
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// page shows the list and replaces it with each event.
const page = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Open items</title></head>
<body>
<h1>Open items</h1>
<p id="status">connecting…</p>
<ul id="items"></ul>
<script>
const list = document.getElementById("items");
const status = document.getElementById("status");
const events = new EventSource("/events");
events.addEventListener("items", (e) => {
  const items = JSON.parse(e.data);
  list.replaceChildren(...items.map((it) => {
    const li = document.createElement("li");
    li.textContent = it.title;
    li.dataset.id = it.id;
    return li;
  }));
  status.textContent = items.length + " open";
});
events.addEventListener("error", () => { status.textContent = "reconnecting…"; });
</script>
</body>
</html>
`
