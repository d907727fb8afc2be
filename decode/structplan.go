package decode

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/databridge-go/databridge/internal/bsontag"
)

// Struct plans: the driver's description of a struct's fields (tags,
// inline structs and maps, dominance), flattened, with each key packed for
// the decoder's in-place comparison.

// structPlan is the driver's struct description, flattened.
type structPlan struct {
	fields    []fieldPlan
	index     map[string]int
	inlineMap *fieldPlan // the `inline` map field, if any (its plan is the map's)
	err       error      // the driver's describe error, reported when decoded
}

// step is one hop of a field path through inline struct pointers.
type step struct {
	offset uintptr
	typ    reflect.Type // the pointer's element type, to allocate it
}

type fieldPlan struct {
	name   string
	offset uintptr // from the innermost inline struct pointer (or the struct)
	hops   []step  // inline struct pointers to follow (and allocate) first
	plan   *typePlan
	// mapType is set for the inline map field, whose plan is its element's.
	mapType reflect.Type
	// The key as it appears in a document, name and NUL, packed into two
	// little-endian words (k) with masks (m) for the bytes it covers, so
	// that the decoder compares it with two loads: klen is its length,
	// 0 when it is longer than 16 bytes or the name holds a NUL (nul: no
	// document key can equal such a name).
	klen   int
	nul    bool
	k0, k1 uint64
	m0, m1 uint64
}

// packKey fills klen, k and m from name.
func (f *fieldPlan) packKey() {
	key := f.name + "\x00"
	f.nul = strings.IndexByte(f.name, 0) >= 0
	if len(key) > 16 || f.nul {
		return
	}
	var b, m [16]byte
	copy(b[:], key)
	for i := range key {
		m[i] = 0xff
	}
	f.klen = len(key)
	f.k0, f.k1 = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
	f.m0, f.m1 = binary.LittleEndian.Uint64(m[:8]), binary.LittleEndian.Uint64(m[8:])
}

// describe ports the driver's describeStructSlow: tag parsing, inline
// structs, struct pointers and maps, and Go's dominance rules for keys that
// appear more than once.
func (c *compiler) describe(t reflect.Type, truncate bool) *structPlan {
	sp := &structPlan{index: map[string]int{}}
	fields, inlineMap, err := c.collect(t, truncate, 0, nil)
	if err != nil {
		sp.err = err
		return sp
	}
	for i, f := range fields {
		f.fieldPlan.packKey()
		sp.fields = append(sp.fields, f.fieldPlan)
		sp.index[f.name] = i
	}
	sp.inlineMap = inlineMap
	return sp
}

func lessIndex(a, b []int) bool {
	for k := range a {
		if k >= len(b) {
			return false
		}
		if a[k] != b[k] {
			return a[k] < b[k]
		}
	}
	return len(a) < len(b)
}

type collected struct {
	fieldPlan
	idx []int // Go field index path, for ordering and dominance
}

// collect describes t's fields as the driver does, dominance resolved, in
// field order; offsets are relative to base within the current inline-pointer
// hop. It follows the driver's describeStructSlow step by step, which keeps
// it as long as that function, so that the two can be compared side by side.
func (c *compiler) collect(t reflect.Type, truncate bool, base uintptr, hops []step) ([]collected, *fieldPlan, error) {
	var fields []collected
	var inlineMap *fieldPlan
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.PkgPath != "" {
			continue // unexported, ignored by the driver's default struct codec
		}
		tags := bsontag.Parse(sf)
		if tags.Skip {
			continue
		}
		ftrunc := truncate || tags.Truncate
		if !tags.Inline {
			fields = append(fields, collected{
				fieldPlan: fieldPlan{name: tags.Name, offset: base + sf.Offset, hops: hops, plan: c.compile(sf.Type, ftrunc)},
				idx:       []int{i},
			})
			continue
		}
		ft := sf.Type
		var inner []collected
		var err error
		switch ft.Kind() {
		case reflect.Map:
			if inlineMap != nil {
				return nil, nil, fmt.Errorf("%w: (struct %s) multiple inline maps", ErrUnsupportedType, t)
			}
			if ft.Key() != tString {
				return nil, nil, fmt.Errorf("%w: (struct %s) inline map must have a string keys", ErrUnsupportedType, t)
			}
			// The driver decodes inline map values with the struct's context,
			// not the field's own flags.
			inlineMap = &fieldPlan{name: tags.Name, offset: base + sf.Offset, plan: c.compile(ft.Elem(), truncate), mapType: ft}
			continue
		case reflect.Pointer:
			if ft.Elem().Kind() != reflect.Struct {
				return nil, nil, fmt.Errorf("%w: (struct %s) inline fields must be a struct, a struct pointer, or a map", ErrUnsupportedType, t)
			}
			h := append(append([]step(nil), hops...), step{offset: base + sf.Offset, typ: ft.Elem()})
			inner, _, err = c.collect(ft.Elem(), ftrunc, 0, h)
		case reflect.Struct:
			inner, _, err = c.collect(ft, ftrunc, base+sf.Offset, hops)
		default:
			return nil, nil, fmt.Errorf("%w: (struct %s) inline fields must be a struct, a struct pointer, or a map", ErrUnsupportedType, t)
		}
		if err != nil {
			return nil, nil, err
		}
		// The driver inlines the inner struct's resolved fields; its own
		// inline map, if any, is not carried up.
		for _, f := range inner {
			f.idx = append([]int{i}, f.idx...)
			fields = append(fields, f)
		}
	}

	sort.SliceStable(fields, func(i, j int) bool {
		x, y := fields[i], fields[j]
		if x.name != y.name {
			return x.name < y.name
		}
		if len(x.idx) != len(y.idx) {
			return len(x.idx) < len(y.idx)
		}
		return lessIndex(x.idx, y.idx)
	})
	var out []collected
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].name == fields[i].name {
			j++
		}
		if j-i > 1 && len(fields[i].idx) == len(fields[i+1].idx) {
			return nil, nil, fmt.Errorf("%w: struct %s has duplicated key %s", ErrUnsupportedType, t, fields[i].name)
		}
		out = append(out, fields[i])
		i = j
	}
	sort.SliceStable(out, func(i, j int) bool { return lessIndex(out[i].idx, out[j].idx) })
	return out, inlineMap, nil
}
