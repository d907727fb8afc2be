package query

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ErrNotFound is returned when no document matches: by FindOne, by odm's
// Replace and Delete when no document has the document's _id, and by the
// find-and-modify writes. It is databridge's one not-found error, whatever
// returns it, and also matches mongo.ErrNoDocuments with errors.Is.
var ErrNotFound error = notFoundError{}

type notFoundError struct{}

func (notFoundError) Error() string { return "no document found" }
func (notFoundError) Unwrap() error { return mongo.ErrNoDocuments }

// ErrNotRegistered is wrapped by the error of the package-level reads for a
// model type bound to no handle; the message names the type and the
// Register call that binds it.
var ErrNotRegistered = errors.New("query: model type is not registered")

// ErrUncacheable is returned by a read with the Cached option that no
// cache can serve, rather than silently running it uncached: a read
// through a handle that has no cache (give it one with odm.WithCache), or
// an aggregation that writes ($out, $merge) or whose pipeline could not be
// read for the collections it depends on. The message says which.
var ErrUncacheable = errors.New("query: Cached read cannot be cached")
