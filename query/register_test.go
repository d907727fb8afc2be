package query_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// TestRegisterNil: the package-level reads of a type registered with a nil
// reader fail with an error instead of panicking: ErrNotRegistered for a
// nil interface, odm.ErrNilCollection for a nil *odm.Collection. Iter
// yields the error once. restore puts the previous binding back.
func TestRegisterNil(t *testing.T) {
	type Model struct{ X int }
	ctx := context.Background()
	tests := []struct {
		name string
		give query.Reader[Model]
		want error
	}{
		{"nil interface", nil, query.ErrNotRegistered},
		{"nil *odm.Collection", (*odm.Collection[Model])(nil), odm.ErrNilCollection},
		{"zero odm.Collection", &odm.Collection[Model]{}, odm.ErrNilCollection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(query.Register(tt.give))
			reads := map[string]func() error{
				"Iter": func() error {
					var errs []error
					for _, err := range query.Iter[Model](ctx, nil) {
						errs = append(errs, err)
					}
					require.Len(t, errs, 1, "the error is yielded once")
					return errs[0]
				},
				"FindMany": func() error { _, err := query.FindMany[Model](ctx, nil); return err },
				"FindOne":  func() error { _, err := query.FindOne[Model](ctx, nil); return err },
				"Count":    func() error { _, err := query.Count[Model](ctx, nil); return err },
			}
			for name, read := range reads {
				var err error
				require.NotPanics(t, func() { err = read() }, name)
				require.ErrorIs(t, err, tt.want, name)
			}
		})
	}
	// restore undid every binding: the type is unbound again.
	_, err := query.Count[Model](ctx, nil)
	require.ErrorIs(t, err, query.ErrNotRegistered)
	assert.NotContains(t, err.Error(), "nil")
}
