package decode

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"unicode/utf8"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Documents: walking elements into struct fields, and sizing the values
// skipped or delegated.

// open starts a document or array at pos: it checks its length, returns
// its end, and counts one more level of nesting (the caller decrements
// s.depth when done).
func (s *state) open(pos int) (int, error) {
	d := s.data
	if pos+4 > len(d) {
		return 0, malformed("document length runs past the end of the input")
	}
	n := int(int32(binary.LittleEndian.Uint32(d[pos:])))
	if n < 5 || pos+n > len(d) {
		return 0, malformed("invalid document length %d", n)
	}
	s.depth++
	if s.depth > MaxDepth {
		return 0, &pathError{err: ErrTooDeep}
	}
	return pos + n, nil
}

// elemType reads the type byte of the next element of the document or
// array ending at end; at the terminator it returns type 0 and end. It is
// called for every element, so it only reports whether the input is
// well-formed there (ok), and small enough to inline; elemTypeErr says what
// was wrong.
func (s *state) elemType(pos, end int) (t bson.Type, next int, ok bool) {
	if pos < end { // end <= len(s.data): open checked it
		if t = bson.Type(s.data[pos]); t != 0 || pos+1 == end {
			return t, pos + 1, true
		}
	}
	return 0, 0, false
}

// elemTypeErr is the error of elemType(pos, end) when not ok.
func elemTypeErr(pos, end int) error {
	if pos >= end {
		return malformed("document is missing its terminator")
	}
	return malformed("document terminator before its declared end")
}

// key reads the NUL-terminated key at pos and returns the value's position.
func (s *state) key(pos, end int) ([]byte, int, error) {
	d := s.data
	// Keys are short: a plain loop beats bytes.IndexByte's call and setup.
	for i := pos; i < end; i++ {
		if d[i] == 0 {
			return d[pos:i], i + 1, nil
		}
	}
	return nil, 0, malformed("element key is not terminated")
}

// element reads the type and key of the next element of the document or
// array ending at end; it returns a zero type at the terminator.
func (s *state) element(pos, end int) (bson.Type, []byte, int, error) {
	t, next, ok := s.elemType(pos, end)
	if !ok {
		return 0, nil, 0, elemTypeErr(pos, end)
	}
	if t == 0 {
		return 0, nil, next, nil
	}
	pos = next
	k, pos, err := s.key(pos, end)
	if err != nil {
		return 0, nil, 0, err
	}
	return t, k, pos, nil
}

// unsafeString views b as a string for a comparison or a map lookup.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// document decodes an embedded document into a struct, as the driver's
// struct codec does (into the existing value: callers reset first). It is
// the decoder's per-field loop, run for every field of every document: the
// common case (the key is the next field's) stays inline, and any other key
// is looked up by byName.
func (s *state) document(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
	switch t {
	case bson.TypeEmbeddedDocument:
	case bson.TypeNull, bson.TypeUndefined:
		typedClear(tp.typ, p)
		return pos, nil
	default:
		return 0, mismatch(t, tp.typ)
	}
	sp := tp.st
	if sp.err != nil {
		return 0, newErr(t, tp.typ, sp.err)
	}
	end, err := s.open(pos)
	if err != nil {
		return 0, err
	}
	pos += 4
	next := 0 // documents usually list fields in struct order: try that first
	d := s.data
	for {
		var err error
		et, npos, ok := s.elemType(pos, end)
		if !ok {
			return 0, elemTypeErr(pos, end)
		}
		pos = npos
		if et == 0 {
			s.depth--
			return pos, nil
		}
		var f *fieldPlan
		var vpos int
		// Fast path: the key is the next field's name, compared in place
		// without scanning for its terminator first.
		if next < len(sp.fields) {
			nf := &sp.fields[next]
			if nf.klen > 0 && pos+16 <= len(d) {
				// Two loads against the packed key (name and NUL); the
				// bytes past it are masked off, and the NUL must lie
				// within this document.
				lo := binary.LittleEndian.Uint64(d[pos:])
				hi := binary.LittleEndian.Uint64(d[pos+8:])
				if lo&nf.m0 == nf.k0 && hi&nf.m1 == nf.k1 && pos+nf.klen <= end {
					f = nf
					next++
					vpos = pos + nf.klen
				}
			} else if nm := nf.name; !nf.nul {
				if kend := pos + len(nm); kend < end && d[kend] == 0 && unsafeString(d[pos:kend]) == nm {
					f = nf
					next++
					vpos = kend + 1
				}
			}
		}
		if f == nil {
			if f, vpos, next, err = s.byName(sp, p, et, pos, end, next); err != nil {
				return 0, err
			}
			if f == nil {
				pos = vpos // the value went into the inline map or was skipped
				continue
			}
		}
		fp := p
		for _, h := range f.hops {
			hp := (*unsafe.Pointer)(unsafe.Add(fp, h.offset))
			if *hp == nil {
				*hp = reflect.New(h.typ).UnsafePointer()
			}
			fp = *hp
		}
		pos, err = s.value(f.plan, et, vpos, unsafe.Add(fp, f.offset))
		if err != nil {
			return 0, withKey(err, f.name)
		}
	}
}

// byName finds the field of the key at pos when it is not the next field's:
// by name, then as the driver does by its lower case. It returns the field,
// its value's position and the next field to try; for a key the struct
// lacks, it returns nil and the position after the value, which it has
// stored in the inline map (under p) or skipped.
func (s *state) byName(sp *structPlan, p unsafe.Pointer, et bson.Type, pos, end, next int) (*fieldPlan, int, int, error) {
	key, vpos, err := s.key(pos, end)
	if err != nil {
		return nil, 0, 0, err
	}
	if i, ok := sp.index[unsafeString(key)]; ok {
		return &sp.fields[i], vpos, i + 1, nil
	}
	if i, ok := lowerLookup(sp, key); ok {
		return &sp.fields[i], vpos, i + 1, nil
	}
	if sp.inlineMap != nil {
		pos, err = s.inlineMapValue(sp.inlineMap, p, et, key, vpos)
	} else {
		pos, err = s.skip(et, vpos)
	}
	return nil, pos, next, err
}

// lowerLookup is the driver's second lookup, by strings.ToLower(key); it
// only allocates for keys that have upper-case or non-ASCII bytes.
func lowerLookup(sp *structPlan, key []byte) (int, bool) {
	needs := false
	for _, c := range key {
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			needs = true
			break
		}
	}
	if !needs {
		return 0, false
	}
	i, ok := sp.index[strings.ToLower(string(key))]
	return i, ok
}

func (s *state) inlineMapValue(f *fieldPlan, p unsafe.Pointer, et bson.Type, key []byte, pos int) (int, error) {
	m := reflect.NewAt(f.mapType, unsafe.Add(p, f.offset)).Elem()
	if m.IsNil() {
		m.Set(reflect.MakeMap(f.mapType))
	}
	ev := reflect.New(f.plan.typ)
	next, err := s.value(f.plan, et, pos, ev.UnsafePointer())
	if err != nil {
		return 0, withKey(err, string(key))
	}
	m.SetMapIndex(reflect.ValueOf(string(key)), ev.Elem())
	return next, nil
}

// valueSize is the driver's peekNextValueSize: how many bytes a value of
// type t at pos occupies, for skipping it or handing it to the driver.
func (s *state) valueSize(t bson.Type, pos int) (int, error) {
	d := s.data
	length := func(extra int) (int, error) {
		if pos+4 > len(d) {
			return 0, malformed("value length runs past the end of the document")
		}
		n := int(int32(binary.LittleEndian.Uint32(d[pos:])))
		if n < 0 {
			return 0, malformed("negative value length %d", n)
		}
		return n + extra, nil
	}
	switch t {
	case bson.TypeArray, bson.TypeEmbeddedDocument, bson.TypeCodeWithScope:
		return length(0)
	case bson.TypeBinary:
		return length(5)
	case bson.TypeDBPointer:
		return length(4 + 12)
	case bson.TypeString, bson.TypeJavaScript, bson.TypeSymbol:
		return length(4)
	case bson.TypeBoolean:
		return 1, nil
	case bson.TypeDateTime, bson.TypeDouble, bson.TypeInt64, bson.TypeTimestamp:
		return 8, nil
	case bson.TypeDecimal128:
		return 16, nil
	case bson.TypeInt32:
		return 4, nil
	case bson.TypeMaxKey, bson.TypeMinKey, bson.TypeNull, bson.TypeUndefined:
		return 0, nil
	case bson.TypeObjectID:
		return 12, nil
	case bson.TypeRegex:
		if pos >= len(d) {
			return 0, malformed("regex runs past the end of the document")
		}
		i := bytes.IndexByte(d[pos:], 0)
		if i < 0 {
			return 0, malformed("regex pattern is not terminated")
		}
		j := bytes.IndexByte(d[pos+i+1:], 0)
		if j < 0 {
			return 0, malformed("regex options are not terminated")
		}
		return i + j + 2, nil
	}
	return 0, malformed("unknown BSON type %#x", byte(t))
}

func (s *state) skip(t bson.Type, pos int) (int, error) {
	n, err := s.valueSize(t, pos)
	if err != nil {
		return 0, err
	}
	if pos+n > len(s.data) {
		return 0, malformed("value of %d bytes runs past the end of the document", n)
	}
	return pos + n, nil
}
