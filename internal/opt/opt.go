// Package opt holds the settings of one call, read or write, which the
// public option constructors (query.Sort, odm.Upsert, …) set. An option is
// a read option (Read), a write option (Write) or both; their methods are
// unexported here, so only the option types of this package implement
// them, and query's ReadOption and WriteOption, which embed them, are
// sealed: a misplaced option (a write option given to a read) does not
// compile. It also sets the options that many of the driver's option
// builders share (hint, collation, sort, projection, let): each builder is
// its own type, with the same setters.
package opt

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Config is what the options of one call say. Each operation reads the
// settings that apply to it and ignores the others.
type Config struct {
	// Reads, and the shape of what a find-and-modify returns.
	Sort, Projection, Hint any
	Collation              *options.Collation
	Limit, Skip            int64
	BatchSize              int32
	Cursor                 []any // cursor.Option values: this package imports no public one
	Cached                 bool
	TTL                    time.Duration
	MinInterval            time.Duration // live reads: the shortest time between two reads

	// Writes.
	SkipValidation, SkipHooks, Unordered, Upsert, ReturnAfter bool
	InsertBatch                                               int
	ArrayFilters                                              []any
	Let                                                       any

	// Err is the first option that was given a value it refuses (a Sort
	// that is not a sort document): the call fails with it.
	Err error
}

// Fail records err as the call's error unless one is recorded already.
func (c *Config) Fail(err error) {
	if c.Err == nil {
		c.Err = err
	}
}

// Func sets part of a Config.
type Func func(*Config)

// Read is an option of reads; Write an option of writes.
type (
	Read  interface{ read(*Config) }
	Write interface{ write(*Config) }
)

// ReadFunc is a read option, WriteFunc a write option, and BothFunc an
// option of both.
type (
	ReadFunc  Func
	WriteFunc Func
	BothFunc  Func
)

func (f ReadFunc) read(c *Config)   { f(c) }
func (f WriteFunc) write(c *Config) { f(c) }
func (f BothFunc) read(c *Config)   { f(c) }
func (f BothFunc) write(c *Config)  { f(c) }

// Reads applies the read options of one call, skipping nil ones.
func Reads[O Read](opts []O) *Config {
	c := new(Config)
	for _, o := range opts {
		if Read(o) != nil {
			o.read(c)
		}
	}
	return c
}

// Writes applies the write options of one call, skipping nil ones.
func Writes[O Write](opts []O) *Config {
	c := new(Config)
	for _, o := range opts {
		if Write(o) != nil {
			o.write(c)
		}
	}
	return c
}

// The bridge to package query, set by its init: odm reads filters through
// these.
var (
	// FilterD returns a query.Filter's document and construction error;
	// ok is false when f is not a query.Filter.
	FilterD func(f any) (d bson.D, err error, ok bool)
	// CheckField is query's check of a field name (ErrInvalidField).
	CheckField func(field string) error
)

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

// SetHintCollation sets c's hint and collation on o, each only when given.
func SetHintCollation[B HintCollation[B]](o B, c *Config) {
	if c.Hint != nil {
		o.SetHint(c.Hint)
	}
	if c.Collation != nil {
		o.SetCollation(c.Collation)
	}
}

// SetShape sets c's sort, projection, hint and collation on o, each only
// when given.
func SetShape[B Shaper[B]](o B, c *Config) {
	if c.Sort != nil {
		o.SetSort(c.Sort)
	}
	if c.Projection != nil {
		o.SetProjection(c.Projection)
	}
	SetHintCollation(o, c)
}

// SetLet sets c's let on o when given.
func SetLet[B Letter[B]](o B, c *Config) {
	if c.Let != nil {
		o.SetLet(c.Let)
	}
}
