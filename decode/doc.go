// Package decode is databridge's compiled BSON→struct decoder: a drop-in for
// bson.Unmarshal that reads the raw document bytes the driver hands out
// (cursor.Current, bson.Raw) straight into Go structs.
//
// # Recommended use
//
// Compile a plan once per type and decode into a reused destination:
//
//	var users = decode.MustCompile[User]()
//
//	var u User
//	for cur.Next(ctx) {
//		if err := users.Decode(cur.Current, &u); err != nil { … }
//		…
//	}
//
// decode.Unmarshal(doc, &u) does the same with the cached plan looked up per
// call; decode.Into(doc, any) is the reflection-typed form.
//
// # Compatibility
//
// For every document, Decode produces what bson.Unmarshal of driver v2.10
// produces into a zero value, or an error where the driver errors. That
// includes the driver's struct tags (key, omitempty, minsize, truncate,
// inline for structs, struct pointers and map[string]T, "-"), the lower-case
// key default and the case-insensitive fallback lookup, unexported fields
// ignored, embedded structs (a subdocument unless inlined), all numeric
// conversions with the driver's overflow and truncation errors, null and
// undefined into every kind, unknown keys skipped, and duplicate keys (the
// last scalar wins, nested documents merge). A parity table and a fuzz target
// check this against the driver itself.
//
// Common kinds and driver types (bool, integers, floats, strings, []byte,
// time.Time, bson.ObjectID, bson.DateTime, structs, pointers, slices, arrays,
// maps with string keys) are decoded natively. The rest is delegated to the
// driver, value by value, so its semantics are exact: interface{} (documents
// become bson.D, arrays bson.A), bson.D, bson.M's values, bson.Decimal128,
// bson.Binary, bson.Regex, bson.Timestamp, bson.Raw, bson.RawValue, maps with
// non-string keys, uncommon conversions (a symbol into a string, a hex string
// into an ObjectID), and every type that implements bson.Unmarshaler or
// bson.ValueUnmarshaler. Delegated values cost about what bson.Unmarshal
// costs for them.
//
// By default the decoder follows the default registry and no BSON options,
// as bson.Unmarshal does. A client connected with its own registry or
// BSONOptions decodes differently, and the driver cannot report those
// settings: declare them with WithRegistry and WithBSONOptions (or on a
// collection's handle with odm.WithBSON), and Decode gives what that client's
// cursor gives. Types the registry does not change stay native; see
// codecs.go for what goes to the driver.
//
// # Times
//
// As with the driver, a BSON datetime has millisecond precision and carries
// no time zone: it decodes into a time.Time in UTC (or in the local zone
// with the UseLocalTimeZone BSON option), truncated to the millisecond, so
// a time written with nanoseconds reads back different from the value
// written. Compare times with Equal after Truncate(time.Millisecond).
//
// # Reuse
//
// Decode resets the destination first, so a reused value never keeps fields
// from an earlier document (bson.Unmarshal would). The backing arrays of
// slices already in the destination are reused, so decoding a stream into one
// value allocates only for strings, maps, pointers and slice growth.
//
// The strings of one document are copied into shared chunks of at most 2 KiB,
// sized from the documents decoded before with the same plan, so a
// document's strings usually cost one allocation, not one each (strings of
// 1 KiB or more get their own). A string you keep therefore keeps its chunk
// alive: at most 2 KiB of the same document's other strings. DecodeWith and
// an Arena carry the chunks, and backing arrays for fresh short slices, from
// one document to the next, so that a batch of documents costs a few
// allocations in all (the cursor package decodes with one); a kept string
// or slice then keeps at most 2 KiB of nearby documents' values alive.
//
// Do not keep slices of a destination across a Decode into it; copy what you
// keep (or decode into a fresh value, which never shares memory with an
// earlier one).
//
// # Zero-copy
//
// With ZeroCopy, strings point into the source bytes and decoding allocates
// nothing for them. Such strings are valid only while the source is alive and
// unchanged: the driver never rewrites a batch it has returned, so strings
// into cursor batches stay valid, but they keep the whole batch in memory.
//
// # Errors
//
// Errors are *Error values naming the field path ("items[3].price"), the BSON
// type found and the Go type expected, wrapping ErrMalformed,
// ErrTypeMismatch, ErrOverflow, ErrTruncation, ErrTooDeep,
// ErrUnsupportedType, ErrDriverPanic or the driver's error for a delegated
// value. Malformed input never panics, never hangs and never reads out of
// bounds; nesting is limited to MaxDepth levels.
//
// Every value handed to the driver is first checked in full (its structure
// and every length, at every depth), and a panic inside the driver is an
// error (ErrDriverPanic): the driver has hazards of its own on malformed
// input (an old binary, subtype 2, whose inner length is shorter than its
// bytes makes it read the rest as hidden fields; a negative length hidden
// there can make it loop), and it panics filling [N]any.
//
// # Differences from the driver
//
// These are the only ones, each on purpose:
//
//   - Reset before decode: Decode zeroes the destination first (see Reuse);
//     bson.Unmarshal into a used value keeps fields the document lacks.
//   - MaxDepth: documents nested deeper than 200 levels are ErrTooDeep,
//     where the driver decodes any depth (MongoDB itself stores at most 100).
//   - Strictness on malformed input: decode refuses, with ErrMalformed,
//     some malformed BSON the driver accepts: an old binary whose inner
//     length does not match its bytes (the specification's corpus lists it
//     among decodeErrors), an unterminated document or string nested in a
//     value the driver does not check (into bson.Raw, inside code with
//     scope), a 4-byte top-level document, a negative string length (which
//     the driver can misread as a MaxKey element). On the specification's
//     BSON corpus the two agree: every valid document decodes as the driver
//     decodes it, every structural decodeError is refused (TestBSONCorpus).
//     Like the driver, decode does not check UTF-8 in strings.
//   - A panic of the driver is an error, not a panic.
package decode
