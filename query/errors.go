package query

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ErrNotFound is returned by FindOne when no document matches. It also
// matches mongo.ErrNoDocuments with errors.Is.
var ErrNotFound error = notFoundError{}

type notFoundError struct{}

func (notFoundError) Error() string { return "query: no document found" }
func (notFoundError) Unwrap() error { return mongo.ErrNoDocuments }

// ErrNotRegistered is returned by the package-level functions for a model
// type bound to no collection (see Register and UseDatabase).
var ErrNotRegistered = errors.New("query: model type is not bound to a collection")

// ErrNoCache is returned by a query with the Cached option when no cache
// is configured.
var ErrNoCache = errors.New("query: Cached option used but no cache is configured (query.UseCache or Handle.WithCache)")
