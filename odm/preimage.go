package odm

import (
	"context"
	"errors"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"

	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/match"
	"github.com/databridge-go/databridge/internal/opt"
	"github.com/databridge-go/databridge/internal/outcome"
)

// Pre-images (WithPreImages): a write that names one _id, while a cache
// holds entries it would otherwise invalidate for want of the document's
// other values, is sent as a findAndModify that returns the document as it
// was right before the write (new: false), projected to the fields the
// entries read: the rules then keep every entry the write cannot have
// changed. The caller's result and error stay the driver's: counts are
// computed from the reply and the pre-image (see updateResult), and a
// findAndModify the server refuses without running it is sent again as
// the plain command, whose error (or success) is the caller's.

// WithPreImages makes the handle's writes by one _id carry the document's
// prior values to the caches, so that they invalidate only the cached
// reads the write changed (docs/caching.md, "Pre-images"): Delete,
// DeleteOne, Replace, Save of a stored document and UpdateOne whose filter
// names one _id, and whose update is made of $set, $unset, $inc and
// $setOnInsert. Such a write is sent as a findAndModify instead of an
// update or delete command when, and only when, a cache holds entries the
// write would otherwise invalidate; command monitors and the profiler see
// findAndModify then. Not used in transactions or with a collation,
// hint, let or arrayFilters; a handle stops using them when a server
// refuses the findAndModify but runs the plain command (no find
// privilege, a sharded collection whose shard key is not _id before
// MongoDB 7.1) and after a write sent with an unacknowledged write
// concern (w: 0), which the driver does not let odm read beforehand.
// Default: off.
func WithPreImages() Option { return collOptionFunc(func(cc *collConfig) { cc.preImages = true }) }

// preImageFor returns whether a write of this handle may carry a pre-image
// in ctx with cfg: the handle has them on (and no server refused them),
// outside a transaction, without the options findAndModify would treat
// otherwise or older servers lack. (The driver does not say whether the
// write concern is unacknowledged: the first such write says it, see
// unacknowledged.)
func (c *Collection[T]) preImageFor(ctx context.Context, cfg *opt.Config) bool {
	if !c.preImages || c.preImagesOff.Load() || inTransaction(ctx) {
		return false
	}
	if cfg != nil && (cfg.Collation != nil || cfg.Hint != nil || cfg.Let != nil || cfg.ArrayFilters != nil) {
		return false
	}
	return true
}

// projection is a findAndModify's fields: the top-level fields the
// entries read, and those the write changes (more: the fields a count of
// modified documents needs). Nil fields: the whole document (a nil
// projection, nil kept).
func projection(fields []string, more ...string) (bson.D, []string) {
	if fields == nil {
		return nil, nil
	}
	p := bson.D{}
	var kept []string
	for _, f := range append(fields, more...) {
		if f == "" || strings.HasPrefix(f, "$") || strings.Contains(f, "\x00") || slices.Contains(kept, f) {
			continue // not a field a projection can name: entries reading it are judged without
		}
		kept = append(kept, f)
		p = append(p, bson.E{Key: f, Value: 1})
	}
	return p, kept
}

// refused reports whether err is a findAndModify's error that proves the
// write did not run: the server's own answer (ok: 0), not a lost reply,
// not a write concern error (the write ran), not the last try of a
// retryable write (an earlier try may have run). The plain command is
// then sent instead, and its outcome is the caller's.
func refused(err error) bool {
	var ce mongo.CommandError
	if !errors.As(err, &ce) || outcome.Of(err) != outcome.Done {
		return false
	}
	return !ce.HasErrorLabel(driver.RetryableWriteError) && !ce.HasErrorLabel(driver.NetworkError)
}

// unprojected reports whether err is a server's refusal of a
// findAndModify's fields that it does not implement.
func unprojected(err error) bool {
	var ce mongo.CommandError
	return refused(err) && errors.As(err, &ce) && ce.Code == 238 && strings.Contains(ce.Message, "fields")
}

// namesOneID returns the _id a filter confines a write to, when it says
// {_id: v} or {_id: {$eq: v}} (other conditions may narrow it): the _id an
// upsert inserts too.
func namesOneID(filter bson.Raw) (bson.RawValue, bool) {
	if filter == nil {
		return bson.RawValue{}, false
	}
	v, err := filter.LookupErr("_id")
	if err != nil {
		return bson.RawValue{}, false
	}
	d, isDoc := v.DocumentOK()
	if !isDoc {
		return v, v.Type != bson.TypeArray && v.Type != bson.TypeRegex
	}
	elems, err := d.Elements()
	if err != nil || len(elems) == 0 {
		return bson.RawValue{}, false
	}
	if !strings.HasPrefix(elems[0].Key(), "$") {
		return v, true // an embedded document _id
	}
	if len(elems) == 1 && elems[0].Key() == "$eq" {
		ev := elems[0].Value()
		return ev, ev.Type != bson.TypeArray && ev.Type != bson.TypeRegex
	}
	return bson.RawValue{}, false
}

// preUpdatable reports whether an update (as checkUpdate returns it) is
// one whose count of modified documents the pre-image gives: $set, $unset,
// $inc and $setOnInsert only, no positional path.
func preUpdatable(u any) ([]string, bool) {
	raw, ok := u.(bson.Raw)
	if !ok {
		return nil, false // a pipeline
	}
	elems, err := raw.Elements()
	if err != nil || len(elems) == 0 {
		return nil, false
	}
	var touched []string
	for _, el := range elems {
		switch el.Key() {
		case "$set", "$unset", "$inc", "$setOnInsert":
		default:
			return nil, false
		}
		fields, ok := el.Value().DocumentOK()
		if !ok {
			return nil, false
		}
		fes, err := fields.Elements()
		if err != nil {
			return nil, false
		}
		for _, fe := range fes {
			if strings.Contains(fe.Key(), "$") {
				return nil, false
			}
			touched = append(touched, match.Field(fe.Key()))
		}
	}
	return touched, true
}

// updateResult is the driver's UpdateResult of an updateOne by _id that
// ran as a findAndModify with new: false: before is the document it
// matched (nil: none); upserted, whether it inserted one, whose _id is
// id. MatchedCount, UpsertedCount and UpsertedID are the reply's;
// ModifiedCount is computed from before and the update as the server
// counts it (match.Apply), and is 1 for what that does not reproduce
// (docs/caching.md lists them).
func updateResult(before bson.Raw, upserted bool, id bson.RawValue, update any) *mongo.UpdateResult {
	res := &mongo.UpdateResult{Acknowledged: true}
	switch {
	case upserted:
		res.UpsertedCount = 1
		var u struct {
			ID any `bson:"_id"`
		}
		if err := bson.Unmarshal(idRaw(id), &u); err == nil {
			res.UpsertedID = u.ID // decoded as the driver decodes the reply's
		}
	case before != nil:
		res.MatchedCount = 1
		res.ModifiedCount = 1
		raw, _ := update.(bson.Raw)
		if _, modified, ok := match.Apply(before, bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw}); ok && !modified {
			res.ModifiedCount = 0
		}
	}
	return res
}

// withPreImage runs a write that may carry a pre-image: when Begin held
// an entry, pre (the findAndModify), and, when the server refused it
// without running it, plain; otherwise plain. A server that refuses the
// findAndModify and runs the plain command (no find privilege; a sharded
// collection whose shard key the filter lacks, before MongoDB 7.1) turns
// the handle's pre-images off.
func (c *Collection[T]) withPreImage(f *cachecore.Flight, plain func(context.Context) error, pre func(context.Context, []string) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if pre == nil || !f.Held() {
			return plain(ctx)
		}
		fields := f.Fields()
		if c.preImagesWhole.Load() {
			fields = nil
		}
		err := pre(ctx, fields)
		if fields != nil && unprojected(err) {
			// A server without findAndModify's fields (FerretDB 1.x): the
			// whole document, from now on.
			c.preImagesWhole.Store(true)
			err = pre(ctx, nil)
		}
		if err == nil || !refused(err) {
			return err
		}
		if err = plain(ctx); err == nil {
			c.preImagesOff.Store(true)
		}
		return err
	}
}

// setPreImage records a pre-image on the write's statement.
func setPreImage(s *cachecore.Stmt, doc bson.Raw, fields []string) {
	s.PreImage, s.PreImageFields = doc, fields
}

// preDelete is the findAndModify of a delete of one document (f, as the
// driver encodes it), or nil when the write carries no pre-image: its
// filter does not name one _id.
func (c *Collection[T]) preDelete(ctx context.Context, cfg *opt.Config, ch *cachecore.Change, f any, res **mongo.DeleteResult) func(context.Context, []string) error {
	if !c.preImageFor(ctx, cfg) {
		return nil
	}
	if _, one := namesOneID(ch.Stmts[0].Filter); !one {
		return nil
	}
	return func(ctx context.Context, fields []string) error {
		p, kept := projection(fields)
		raw, err := famRaw(c.coll.FindOneAndDelete(ctx, f, withProjection(options.FindOneAndDelete(), p)))
		s := &ch.Stmts[0]
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			*res = &mongo.DeleteResult{Acknowledged: true}
			s.NoChange = true
		case errors.Is(err, errUnacknowledged):
			*res = &mongo.DeleteResult{}
			c.unacknowledged(ch)
		case err != nil:
			return err
		default:
			*res = &mongo.DeleteResult{DeletedCount: 1, Acknowledged: true}
			setPreImage(s, raw, kept)
		}
		return nil
	}
}

// preUpdate is the findAndModify of an update of one document (f and u as
// the driver encodes them), or nil when the write carries no pre-image:
// its filter does not name one _id, or its update is one whose count of
// modified documents the pre-image does not give.
func (c *Collection[T]) preUpdate(ctx context.Context, cfg *opt.Config, ch *cachecore.Change, f, u any, res **mongo.UpdateResult) func(context.Context, []string) error {
	if !c.preImageFor(ctx, cfg) {
		return nil
	}
	id, one := namesOneID(ch.Stmts[0].Filter)
	touched, ok := preUpdatable(u)
	if !one || !ok {
		return nil
	}
	upsert := cfg.Upsert
	return func(ctx context.Context, fields []string) error {
		p, kept := projection(fields, touched...)
		raw, err := famRaw(c.coll.FindOneAndUpdate(ctx, f, u, withProjection(options.FindOneAndUpdate().SetUpsert(upsert), p)))
		s := &ch.Stmts[0]
		switch {
		case errors.Is(err, mongo.ErrNoDocuments) && upsert:
			// new: false returns no document when the upsert inserted one,
			// with the _id of the filter's equality.
			*res = updateResult(nil, true, id, u)
			s.Upserted, s.UpsertedID = true, id
		case errors.Is(err, mongo.ErrNoDocuments):
			*res = updateResult(nil, false, id, u)
			s.NotUpserted, s.NoChange = true, true
		case errors.Is(err, errUnacknowledged):
			*res = &mongo.UpdateResult{}
			c.unacknowledged(ch)
		case err != nil:
			return err
		default:
			*res = updateResult(raw, false, id, u)
			s.NotUpserted, s.NoChange = true, (*res).ModifiedCount == 0
			setPreImage(s, raw, kept)
		}
		return nil
	}
}

// preReplace is the findAndModify of a replacement of the document with
// one _id (f) by doc, an upsert for Save, or nil when the write carries no
// pre-image. res gets MatchedCount and UpsertedCount (Replace and Save
// return no counts; ModifiedCount is not computed).
func (c *Collection[T]) preReplace(ctx context.Context, ch *cachecore.Change, f any, doc *T, upsert bool, res **mongo.UpdateResult) func(context.Context, []string) error {
	if !c.preImageFor(ctx, nil) {
		return nil
	}
	return func(ctx context.Context, fields []string) error {
		p, kept := projection(fields)
		raw, err := famRaw(c.coll.FindOneAndReplace(ctx, f, doc, withProjection(options.FindOneAndReplace().SetUpsert(upsert), p)))
		s := &ch.Stmts[0]
		switch {
		case errors.Is(err, mongo.ErrNoDocuments) && upsert:
			*res = &mongo.UpdateResult{UpsertedCount: 1, Acknowledged: true}
			s.Upserted = true
			s.UpsertedID, _ = namesOneID(s.Filter)
		case errors.Is(err, mongo.ErrNoDocuments):
			*res = &mongo.UpdateResult{Acknowledged: true}
			s.NotUpserted, s.NoChange = true, true
		case errors.Is(err, errUnacknowledged):
			*res = &mongo.UpdateResult{}
			c.unacknowledged(ch)
		case err != nil:
			return err
		default:
			*res = &mongo.UpdateResult{MatchedCount: 1, Acknowledged: true}
			s.NotUpserted = true
			setPreImage(s, raw, kept)
		}
		return nil
	}
}

// unacknowledged records a findAndModify sent with an unacknowledged
// write concern (w: 0), which the handle cannot see before it sends one:
// the write may still be running, as a write whose reply is lost, and the
// handle sends its writes as plain commands from now on.
func (c *Collection[T]) unacknowledged(ch *cachecore.Change) {
	ch.Unknown = true
	c.preImagesOff.Store(true)
}

// errUnacknowledged is famRaw's error for a findAndModify sent with an
// unacknowledged write concern.
var errUnacknowledged = errors.New("odm: findAndModify sent unacknowledged")

// famRaw returns a findAndModify's document (mongo.ErrNoDocuments: none),
// or errUnacknowledged when it was sent unacknowledged (w: 0; no reply).
func famRaw(sr *mongo.SingleResult) (bson.Raw, error) {
	raw, err := sr.Raw()
	if errors.Is(err, mongo.ErrNoDocuments) && !sr.Acknowledged {
		return nil, errUnacknowledged
	}
	return raw, err
}

// withProjection sets projection p on o, unless p is nil.
func withProjection[B interface{ SetProjection(any) B }](o B, p bson.D) B {
	if p == nil {
		return o
	}
	return o.SetProjection(p)
}
