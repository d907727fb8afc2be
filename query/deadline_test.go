package query_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/query"
)

// TestDeadlineNeverEndsShort runs FindMany and Iter with deadlines spread
// over the time the query takes: each must return every document or an
// error matching context.DeadlineExceeded, never a silent prefix (on 16a31ad
// FindMany returned a prefix with no error in 1 of 550 runs; see
// cursor.TestCancelNeverEndsShort for the cause).
func TestDeadlineNeverEndsShort(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	const docs, runs = 2000, 60
	h := query.From[User](usersColl(t, docs))
	short, errs, whole := 0, 0, 0
	for run := range runs {
		d := time.Duration(2+run*2) * time.Millisecond // up to 0.12 s: most end partway, some complete
		ctx, cancel := context.WithTimeout(context.Background(), d)
		var n int
		var err error
		if run%2 == 0 {
			var got []User
			got, err = h.FindMany(ctx, nil, query.BatchSize(100))
			n = len(got)
		} else {
			for _, e := range h.Iter(ctx, nil, query.BatchSize(100)) {
				if e != nil {
					err = e
					break
				}
				n++
			}
		}
		cancel()
		switch {
		case err != nil:
			errs++
			assert.True(t, errors.Is(err, context.DeadlineExceeded), "run %d: %v", run, err)
		case n == docs:
			whole++
		default:
			short++
			t.Errorf("run %d (deadline %v): %d of %d documents and no error", run, d, n, docs)
		}
	}
	t.Logf("%d runs: %d deadline errors, %d whole results, %d silent prefixes", runs, errs, whole, short)
	assert.Zero(t, short)
}
