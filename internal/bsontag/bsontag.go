// Package bsontag parses `bson` struct tags exactly as the driver's default
// struct tag parser does: the one parser of the decoder, the encoder and
// the ODM, so that they cannot drift. It imports nothing of this module, so
// decode, which sits below everything else, may use it.
package bsontag

import (
	"reflect"
	"strings"
)

// Tag is a parsed field tag.
type Tag struct {
	Name                                       string // the key: the tag's first part, or the lowercased field name
	OmitEmpty, MinSize, Truncate, Inline, Skip bool
	Raw                                        string // the tag text the flags came from
}

// Parse reads the bson tag of sf, or the whole tag when it has no key:"value"
// pairs; "-" skips the field.
func Parse(sf reflect.StructField) Tag {
	t := Tag{Name: strings.ToLower(sf.Name)}
	tag, ok := sf.Tag.Lookup("bson")
	if !ok && !strings.Contains(string(sf.Tag), ":") && len(sf.Tag) > 0 {
		tag = string(sf.Tag)
	}
	t.Raw = tag
	if tag == "-" {
		t.Skip = true
		return t
	}
	for i, s := range strings.Split(tag, ",") {
		if i == 0 && s != "" {
			t.Name = s
		}
		switch s {
		case "omitempty":
			t.OmitEmpty = true
		case "minsize":
			t.MinSize = true
		case "truncate":
			t.Truncate = true
		case "inline":
			t.Inline = true
		}
	}
	return t
}
