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

// ErrNoCache is returned by a read with the Cached option on a collection
// handle that has no cache (see odm.WithCache).
var ErrNoCache = errors.New("query: Cached read of a collection without a cache (attach one with odm.WithCache)")

// ErrUncacheable is returned by an aggregation with the Cached option that
// cannot be cached: one that writes ($out, $merge), or whose pipeline
// could not be read for the collections it depends on.
var ErrUncacheable = errors.New("query: aggregation cannot be cached")
