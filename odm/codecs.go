package odm

import (
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/decode"
)

// codecs is a declared registry and BSONOptions (WithBSON), and the decode
// options that follow them. nil means the driver's defaults.
type codecs struct {
	reg  *bson.Registry
	opts *options.BSONOptions // a copy, never the caller's
	dec  []decode.Option
}

// interned holds one *codecs per registry and options, so that handles
// made per request share their decoders and cached readers.
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

// decodeOptions returns the decode options of the codecs (none for the
// defaults).
func (cc *codecs) decodeOptions() []decode.Option {
	if cc == nil {
		return nil
	}
	return cc.dec
}

// bson returns the registry and options (nil for the defaults).
func (cc *codecs) bson() (*bson.Registry, *options.BSONOptions) {
	if cc == nil {
		return nil, nil
	}
	return cc.reg, cc.opts
}
