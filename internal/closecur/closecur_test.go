package closecur

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// fakeCursor records the context its Close got. A hand-made Closer: what is
// tested is which context Close passes on, not the driver.
type fakeCursor struct {
	id     int64
	closed chan context.Context
	err    error // the context's error when Close was called
}

func (f *fakeCursor) ID() int64 { return f.id }

func (f *fakeCursor) Close(ctx context.Context) error {
	f.err = ctx.Err()
	f.closed <- ctx
	return nil
}

func TestClose(t *testing.T) {
	t.Run("exhausted cursor: closed at once with the caller's context", func(t *testing.T) {
		f := &fakeCursor{closed: make(chan context.Context, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // even an ended context: there is nothing to send
		assert.NoError(t, Close(ctx, f, time.Second))
		got := <-f.closed
		assert.Equal(t, ctx, got)
	})
	t.Run("open cursor, live context: bounded by the timeout", func(t *testing.T) {
		f := &fakeCursor{id: 42, closed: make(chan context.Context, 1)}
		assert.NoError(t, Close(context.Background(), f, time.Second))
		got := <-f.closed
		deadline, ok := got.Deadline()
		assert.True(t, ok, "the close has a deadline")
		assert.WithinDuration(t, time.Now().Add(time.Second), deadline, time.Second)
	})
	t.Run("open cursor, context about to end: the kill does not inherit its deadline", func(t *testing.T) {
		// On d78d092 the kill ran under the caller's context; with a
		// deadline a moment away the driver refuses to send killCursors
		// and forgets the cursor (query.TestStreamsLeaveNoServerCursor).
		f := &fakeCursor{id: 42, closed: make(chan context.Context, 1)}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		_ = Close(ctx, f, time.Minute)
		got := <-f.closed
		deadline, ok := got.Deadline()
		assert.True(t, ok, "the close has a deadline")
		assert.WithinDuration(t, time.Now().Add(time.Minute), deadline, 10*time.Second, "the close timeout bounds the kill, not the caller's deadline")
	})
	t.Run("open cursor, ended context: closed in the background", func(t *testing.T) {
		f := &fakeCursor{id: 42, closed: make(chan context.Context, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		assert.NoError(t, Close(ctx, f, time.Second))
		select {
		case got := <-f.closed:
			assert.NoError(t, f.err, "the background close runs under a live context")
			_, ok := got.Deadline()
			assert.True(t, ok, "bounded by the timeout")
		case <-time.After(5 * time.Second):
			t.Fatal("the background close never ran")
		}
	})
}
