package query

import (
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/decode"
)

// codecs is a declared registry and BSONOptions, and the decode options
// that follow them. nil means the driver's defaults.
type codecs struct {
	reg  *bson.Registry
	opts *options.BSONOptions // a copy, never the caller's
	dec  []decode.Option
}

// interned holds one *codecs per registry and options, so that handles
// made per request (WithBSON) share their decoders and cached readers.
var interned sync.Map // codecsKey → *codecs

type codecsKey struct {
	reg  *bson.Registry
	opts options.BSONOptions
}

func newCodecs(reg *bson.Registry, opts *options.BSONOptions) *codecs {
	if reg == nil && (opts == nil || *opts == (options.BSONOptions{})) {
		return nil
	}
	k := codecsKey{reg: reg}
	if opts != nil {
		k.opts = *opts
	}
	if c, ok := interned.Load(k); ok {
		return c.(*codecs)
	}
	c := &codecs{reg: reg}
	if opts != nil {
		o := *opts
		c.opts = &o
	}
	c.dec = []decode.Option{decode.WithRegistry(c.reg), decode.WithBSONOptions(c.opts)}
	v, _ := interned.LoadOrStore(k, c)
	return v.(*codecs)
}

var (
	clientCodecs sync.Map    // weak.Pointer[mongo.Client] → *codecs
	anyDeclared  atomic.Bool // a client was ever declared: else no lookup per query
)

// UseClientOptions declares the registry and BSON options that client was
// connected with (opts.Registry and opts.BSONOptions, as set by
// SetRegistry and SetBSONOptions), so that every read through databridge
// on that client's collections decodes exactly as the driver does for it,
// and every odm write stores what the driver would store. Call it once,
// right after mongo.Connect with the same options:
//
//	opts := options.Client().ApplyURI(uri).SetRegistry(reg).SetBSONOptions(bsonOpts)
//	client, err := mongo.Connect(opts)
//	query.UseClientOptions(client, opts)
//
// The driver gives no way to read these settings back from a client: a
// client used without this declaration is read with the default registry
// and options, as bson.Unmarshal reads. A registry or BSON options set on a
// database or collection instead are declared with Handle.WithBSON. It
// returns a function that restores the previous declaration.
func UseClientOptions(client *mongo.Client, opts *options.ClientOptions) (restore func()) {
	var cc *codecs
	if opts != nil {
		cc = newCodecs(opts.Registry, opts.BSONOptions)
	}
	wp := weak.Make(client)
	if cc != nil {
		anyDeclared.Store(true)
	}
	prev, had := clientCodecs.Load(wp)
	if cc == nil {
		clientCodecs.Delete(wp)
	} else if _, loaded := clientCodecs.Swap(wp, cc); !loaded && !had {
		runtime.AddCleanup(client, func(wp weak.Pointer[mongo.Client]) { clientCodecs.Delete(wp) }, wp)
	}
	return func() {
		if had {
			clientCodecs.Store(wp, prev)
		} else {
			clientCodecs.Delete(wp)
		}
	}
}

// WithBSON returns a copy of the handle that reads as the driver does with
// reg and opts: for a database or collection created with its own
// SetRegistry or SetBSONOptions, which the driver cannot report. It takes
// precedence over the client's declaration (UseClientOptions).
func (h Handle[T]) WithBSON(reg *bson.Registry, opts *options.BSONOptions) Handle[T] {
	h.codecs = newCodecs(reg, opts)
	h.ownCodecs = true
	return h
}

// BSON returns the registry and BSON options the handle reads with (nil
// for the driver's defaults): its own (WithBSON), or its client's
// (UseClientOptions). They are shared: do not modify them.
func (h Handle[T]) BSON() (*bson.Registry, *options.BSONOptions) {
	cc := h.codecsInUse()
	if cc == nil {
		return nil, nil
	}
	return cc.reg, cc.opts
}

func (h Handle[T]) codecsInUse() *codecs {
	if h.ownCodecs || h.coll == nil || !anyDeclared.Load() {
		return h.codecs
	}
	if v, ok := clientCodecs.Load(weak.Make(h.coll.Database().Client())); ok {
		return v.(*codecs)
	}
	return nil
}

// decodeOptions returns the decode options of the codecs in use.
func (cc *codecs) decodeOptions() []decode.Option {
	if cc == nil {
		return nil
	}
	return cc.dec
}
