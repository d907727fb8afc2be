package testdb

import (
	"context"
	"errors"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// CursorTracker records the server cursors a client opens, from the replies
// of its find, aggregate and getMore commands, so that a test can ask the
// server, at the end, which of them are still open (LeftOpen).
type CursorTracker struct {
	mu        sync.Mutex
	seen      map[int64]bool  // cursor ids the server returned; true once exhausted (getMore answered id 0)
	getMore   map[int64]int64 // request id → cursor id of a getMore in flight
	lostFinds int             // finds and aggregates that failed without the server's answer
	kills     int             // killCursors commands started
}

// NewCursorTracker returns an empty tracker; install its Monitor on the
// client under test.
func NewCursorTracker() *CursorTracker {
	return &CursorTracker{seen: map[int64]bool{}, getMore: map[int64]int64{}}
}

// Monitor returns the command monitor that feeds t.
func (t *CursorTracker) Monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			t.mu.Lock()
			defer t.mu.Unlock()
			switch e.CommandName {
			case "getMore":
				if id, ok := e.Command.Lookup("getMore").Int64OK(); ok {
					t.getMore[e.RequestID] = id
				}
			case "killCursors":
				t.kills++
			}
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			t.mu.Lock()
			defer t.mu.Unlock()
			switch e.CommandName {
			case "find", "aggregate":
				if id, ok := e.Reply.Lookup("cursor", "id").Int64OK(); ok && id != 0 {
					t.seen[id] = false
				}
			case "getMore":
				asked := t.getMore[e.RequestID]
				delete(t.getMore, e.RequestID)
				if id, ok := e.Reply.Lookup("cursor", "id").Int64OK(); ok && id == 0 {
					t.seen[asked] = true
				}
			}
		},
		Failed: func(_ context.Context, e *event.CommandFailedEvent) {
			t.mu.Lock()
			defer t.mu.Unlock()
			delete(t.getMore, e.RequestID)
			var se mongo.ServerError
			if (e.CommandName == "find" || e.CommandName == "aggregate") && !errors.As(e.Failure, &se) {
				t.lostFinds++
			}
		},
	}
}

// Reset forgets everything recorded so far.
func (t *CursorTracker) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.seen)
	clear(t.getMore)
	t.lostFinds, t.kills = 0, 0
}

// Opened returns how many server cursors the client was given.
func (t *CursorTracker) Opened() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen)
}

// Kills returns how many killCursors commands the client started.
func (t *CursorTracker) Kills() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.kills
}

// LostFinds returns how many find or aggregate commands ended without the
// server's answer (a deadline or a network error while waiting for it). If
// the server had opened a cursor for one, its id never reached the client,
// which therefore cannot kill it: the server's idle timeout (10 minutes on
// MongoDB) ends it.
func (t *CursorTracker) LostFinds() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lostFinds
}

// LeftOpen asks the server, with a killCursors of every cursor the client
// was given and did not read to the end, which ones are still open, and
// returns their ids (killing them). db must be the database the cursors
// were opened in, and coll their collection.
func (t *CursorTracker) LeftOpen(ctx context.Context, db *mongo.Database, coll string) ([]int64, error) {
	t.mu.Lock()
	var ids bson.A
	for id, exhausted := range t.seen {
		if !exhausted {
			ids = append(ids, id)
		}
	}
	t.mu.Unlock()
	if len(ids) == 0 {
		return nil, nil
	}
	raw, err := db.RunCommand(ctx, bson.D{{Key: "killCursors", Value: coll}, {Key: "cursors", Value: ids}}).Raw()
	if err != nil {
		return nil, err
	}
	vals, err := raw.Lookup("cursorsKilled").Array().Values()
	if err != nil {
		return nil, err
	}
	open := make([]int64, 0, len(vals))
	for _, v := range vals {
		open = append(open, v.Int64())
	}
	slices.Sort(open)
	return open, nil
}
