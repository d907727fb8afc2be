// Package optset sets the options that many of the driver's option builders
// share (hint, collation, sort, projection, let), once, for the query and
// odm packages: each builder is its own type, with the same setters.
package optset

import "go.mongodb.org/mongo-driver/v2/mongo/options"

// HintCollation is a builder with SetHint and SetCollation.
type HintCollation[B any] interface {
	SetHint(any) B
	SetCollation(*options.Collation) B
}

// Shaper is a builder that also sets a sort and a projection.
type Shaper[B any] interface {
	HintCollation[B]
	SetSort(any) B
	SetProjection(any) B
}

// Letter is a builder with SetLet.
type Letter[B any] interface{ SetLet(any) B }

// SetHintCollation sets hint and collation on o, each only when given.
func SetHintCollation[B HintCollation[B]](o B, hint any, collation *options.Collation) {
	if hint != nil {
		o.SetHint(hint)
	}
	if collation != nil {
		o.SetCollation(collation)
	}
}

// SetShape sets sort, projection, hint and collation on o, each only when
// given.
func SetShape[B Shaper[B]](o B, sort, projection, hint any, collation *options.Collation) {
	if sort != nil {
		o.SetSort(sort)
	}
	if projection != nil {
		o.SetProjection(projection)
	}
	SetHintCollation(o, hint, collation)
}

// SetLet sets let on o when given.
func SetLet[B Letter[B]](o B, let any) {
	if let != nil {
		o.SetLet(let)
	}
}
