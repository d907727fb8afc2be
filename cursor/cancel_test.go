package cursor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/internal/leakcheck"
)

// TestCancelNeverEndsShort is the fault test for a stream whose context is
// cancelled inside the loop, at many points: the loop goes on (it does not
// break), so the stream must yield every document or end with an error,
// never stop silently after a prefix. On 16a31ad the prefetch goroutine
// closed its channel when the context ended and the reader took that for the
// end of the results: 12 of 200 runs ended short with no error (37 of 100
// under -race).
func TestCancelNeverEndsShort(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	const docs, runs = 2000, 100
	e := setup(t, docs)
	for _, form := range []string{"All", "Borrowed", "AppendAll"} {
		t.Run("form="+form, func(t *testing.T) {
			short, errs, whole := 0, 0, 0
			for run := range runs {
				at := (run * 7919) % docs // cancel points spread over the stream
				ctx, cancel := context.WithCancel(context.Background())
				c := e.open(t, ctx, 100)
				n, err := drain(ctx, c, form, at, cancel)
				cancel()
				switch {
				case err != nil:
					errs++
					assert.ErrorIs(t, err, context.Canceled, "run %d", run)
				case n == docs:
					whole++
				default:
					short++
					t.Errorf("run %d: cancelled at %d, ended after %d of %d documents with no error", run, at, n, docs)
				}
			}
			t.Logf("%d runs: %d ended with the context's error, %d read the whole result, %d ended short silently", runs, errs, whole, short)
			assert.Zero(t, short)
		})
	}
}

// drain reads c to the end in the given form, calling cancel after the
// document at position at, and returns how many documents it saw.
func drain(ctx context.Context, c *cursor.Cursor[Doc], form string, at int, cancel func()) (int, error) {
	n := 0
	switch form {
	case "All":
		for d, err := range c.All(ctx) {
			if err != nil {
				return n, err
			}
			if d.ID != n {
				return n, fmt.Errorf("document %d has _id %d", n, d.ID)
			}
			if n++; n == at {
				cancel()
			}
		}
	case "Borrowed":
		for d, err := range c.Borrowed(ctx) {
			if err != nil {
				return n, err
			}
			if d.ID != n {
				return n, fmt.Errorf("document %d has _id %d", n, d.ID)
			}
			if n++; n == at {
				cancel()
			}
		}
	case "AppendAll":
		// No loop body to cancel from: cancel from outside, soon.
		go func() {
			time.Sleep(time.Duration(at%50) * 100 * time.Microsecond)
			cancel()
		}()
		out, err := c.AppendAll(ctx, nil)
		for i, d := range out {
			if d.ID != i {
				return i, fmt.Errorf("document %d has _id %d", i, d.ID)
			}
		}
		return len(out), err
	}
	return n, nil
}

// TestPrefetchContextEndsBeforeStream: the background fetch runs under the
// context of the first Next; when that context ends while a later Next has
// a live one, the stream must report it rather than end early.
func TestPrefetchContextEndsBeforeStream(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	e := setup(t, 500)
	first, cancel := context.WithCancel(context.Background())
	c := e.open(t, context.Background(), 50)
	defer c.Close(context.Background())
	require.True(t, c.Next(first))
	cancel()
	n := 1
	for c.Next(context.Background()) {
		n++
	}
	if n < 500 {
		require.Error(t, c.Err(), "ended after %d of 500 documents", n)
		assert.ErrorIs(t, c.Err(), context.Canceled)
	}
}
