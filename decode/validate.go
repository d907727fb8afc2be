package decode

import (
	"bytes"
	"encoding/binary"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A value handed to the driver (see delegate.go) is first checked here, in
// full: its structure, every length at every depth, the terminators, and
// the inner length of old binary (subtype 2). The driver trusts some of
// these: an old binary whose inner length is shorter than its outer one
// makes it parse the rest of the binary as elements of the enclosing
// document (decoding "hidden" fields), and a negative length hidden there
// can make it loop forever. Checked first, such a value is an ErrMalformed
// error of ours, and the driver only ever sees well-formed BSON.

// validateValue checks the value of BSON type t that is data[pos:end]
// (its exact extent, from valueSize) at nesting depth depth.
func validateValue(data []byte, t bson.Type, pos, end, depth int) error {
	switch t {
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		return validateDocument(data, pos, end, depth+1)
	case bson.TypeString, bson.TypeJavaScript, bson.TypeSymbol:
		return validateString(data, pos, end)
	case bson.TypeBinary:
		n := int(int32(binary.LittleEndian.Uint32(data[pos:])))
		if n < 0 || pos+5+n != end {
			return malformed("binary length %d does not match its value", n)
		}
		if data[pos+4] == 2 { // old binary: an int32 length, then the bytes
			if n < 4 {
				return malformed("binary subtype 2 of %d bytes has no inner length", n)
			}
			if inner := int(int32(binary.LittleEndian.Uint32(data[pos+5:]))); inner != n-4 {
				return malformed("binary subtype 2 inner length %d does not match its %d bytes", inner, n-4)
			}
		}
	case bson.TypeDBPointer:
		n := int(int32(binary.LittleEndian.Uint32(data[pos:])))
		if n < 1 || pos+4+n+12 != end {
			return malformed("dbpointer length %d does not match its value", n)
		}
		return validateString(data, pos, end-12)
	case bson.TypeCodeWithScope:
		n := int(int32(binary.LittleEndian.Uint32(data[pos:])))
		if n < 14 || pos+n != end {
			return malformed("code with scope length %d does not match its value", n)
		}
		if pos+8 > end {
			return malformed("code with scope is too short")
		}
		sn := int(int32(binary.LittleEndian.Uint32(data[pos+4:])))
		if sn < 1 || pos+8+sn > end {
			return malformed("code with scope string length %d runs past its value", sn)
		}
		if err := validateString(data, pos+4, pos+8+sn); err != nil {
			return err
		}
		return validateDocument(data, pos+8+sn, end, depth+1)
	case bson.TypeRegex:
		// valueSize found both terminators within the input.
		i := bytes.IndexByte(data[pos:end], 0)
		if i < 0 || bytes.IndexByte(data[pos+i+1:end], 0) != end-pos-i-2 {
			return malformed("regex is not two terminated strings")
		}
	}
	return nil
}

// validateString checks a length-prefixed string that is data[pos:end].
func validateString(data []byte, pos, end int) error {
	n := int(int32(binary.LittleEndian.Uint32(data[pos:])))
	if n < 1 || pos+4+n != end {
		return malformed("string length %d does not match its value", n)
	}
	if data[end-1] != 0 {
		return malformed("string is not terminated")
	}
	return nil
}

// validateDocument checks the document (or array) that is data[pos:end].
func validateDocument(data []byte, pos, end, depth int) error {
	if depth > MaxDepth {
		return &pathError{err: ErrTooDeep}
	}
	if end-pos < 5 || int(int32(binary.LittleEndian.Uint32(data[pos:]))) != end-pos {
		return malformed("document length does not match its value")
	}
	if data[end-1] != 0 {
		return malformed("document is not terminated")
	}
	s := state{data: data[:end-1]} // sizes are checked against the terminator
	p := pos + 4
	for p < end-1 {
		t := bson.Type(data[p])
		if t == 0 {
			return malformed("document terminator before its end")
		}
		k := bytes.IndexByte(data[p+1:end-1], 0)
		if k < 0 {
			return malformed("element key is not terminated")
		}
		vpos := p + 1 + k + 1
		n, err := s.valueSize(t, vpos)
		if err != nil {
			return err
		}
		if vpos+n > end-1 {
			return malformed("value of %d bytes runs past the end of its document", n)
		}
		if err := validateValue(data, t, vpos, vpos+n, depth); err != nil {
			return err
		}
		p = vpos + n
	}
	return nil
}
