package cache_test

import (
	"context"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Minimisation: a stale round replayed with less until the smallest case
// that still fails.

// reproduces reports whether cs still has a stale read of the read tagged
// target (its index in cs.reads), and that stale read.
func (f *diffFuzzer) reproduces(ctx context.Context, cs diffCase, target int) (diffStale, bool) {
	tl := f.play(ctx, cs, target)
	for _, s := range tl.stale {
		if s.read == target {
			return s, true
		}
	}
	return diffStale{}, false
}

// minimise removes reads, writes, statements, documents and fields from cs
// while the target read stays stale (greedy, to a fixpoint), and returns
// the smallest case found with its stale read and the replays it took.
func (f *diffFuzzer) minimise(ctx context.Context, cs diffCase, s diffStale) (diffCase, diffStale, int) {
	cs.writes = cs.writes[:s.write+1]
	deadline := time.Now().Add(diffMinimiseFor)
	replays := 0
	target := s.read
	cls := diffClass(cs, s)
	try := func(c diffCase, tgt int) bool {
		if replays >= diffMaxReplays || time.Now().After(deadline) {
			return false
		}
		replays++
		if got, ok := f.reproduces(ctx, c, tgt); ok && diffClass(c, got) == cls {
			cs, target, s = c, tgt, got
			return true
		}
		return false
	}
	for progress := true; progress; {
		progress = false
		// Other reads: all at once, then one by one.
		if len(cs.reads) > 1 {
			c := cs
			c.reads = []diffRead{cs.reads[target]}
			progress = try(c, 0) || progress
		}
		for i := len(cs.reads) - 1; i >= 0 && len(cs.reads) > 1; i-- {
			if i == target {
				continue
			}
			c := cs
			c.reads = slices.Delete(slices.Clone(cs.reads), i, i+1)
			tgt := target
			if i < target {
				tgt--
			}
			progress = try(c, tgt) || progress
		}
		for i := len(cs.writes) - 1; i >= 0; i-- {
			if i < len(cs.writes) {
				c := cs
				c.writes = slices.Delete(slices.Clone(cs.writes), i, i+1)
				progress = try(c, target) || progress
			}
		}
		progress = f.minimiseParts(&cs, target, try) || progress
	}
	return cs, s, replays
}

// minimiseParts removes the statements of bulk writes, the documents of
// inserts and of the round, their fields, and the clauses of the target
// read's filter and of updates, one at a time.
func (f *diffFuzzer) minimiseParts(cs *diffCase, target int, try func(diffCase, int) bool) bool {
	progress := false
	for wi := range cs.writes {
		for i := len(cs.writes[wi].models) - 1; i >= 0 && len(cs.writes[wi].models) > 1; i-- {
			c := cs.clone()
			c.writes[wi].models = slices.Delete(c.writes[wi].models, i, i+1)
			progress = try(c, target) || progress
		}
		for i := len(cs.writes[wi].docs) - 1; i >= 0 && len(cs.writes[wi].docs) > 1; i-- {
			c := cs.clone()
			c.writes[wi].docs = slices.Delete(c.writes[wi].docs, i, i+1)
			progress = try(c, target) || progress
		}
		for _, u := range diffShrinkUpdate(cs.writes[wi].update) {
			c := cs.clone()
			c.writes[wi].update = u
			progress = try(c, target) || progress
		}
	}
	for i := len(cs.docs) - 1; i >= 0; i-- {
		c := cs.clone()
		c.docs = slices.Delete(c.docs, i, i+1)
		progress = try(c, target) || progress
	}
	for di := range cs.docs {
		for i := len(cs.docs[di]) - 1; i >= 1; i-- {
			c := cs.clone()
			c.docs[di] = slices.Delete(slices.Clone(c.docs[di]), i, i+1)
			progress = try(c, target) || progress
		}
	}
	for wi := range cs.writes {
		progress = diffShrinkDoc(cs, func(c *diffCase) *bson.D { return &c.writes[wi].doc }, target, try) || progress
		for mi := range cs.writes[wi].models {
			progress = diffShrinkDoc(cs, func(c *diffCase) *bson.D { return &c.writes[wi].models[mi].doc }, target, try) || progress
		}
	}
	for i := len(cs.reads[target].filter) - 1; i >= 0 && len(cs.reads[target].filter) > 1; i-- {
		c := cs.clone()
		c.reads[target].filter = slices.Delete(slices.Clone(c.reads[target].filter), i, i+1)
		progress = try(c, target) || progress
	}
	for _, rd := range diffShrinkRead(cs.reads[target]) {
		c := cs.clone()
		c.reads[target] = rd
		progress = try(c, target) || progress
	}
	return progress
}

// diffShrinkDoc removes the fields but _id of the document at(cs), one at
// a time, while the case still fails.
func diffShrinkDoc(cs *diffCase, at func(*diffCase) *bson.D, target int, try func(diffCase, int) bool) bool {
	progress := false
	for i := len(*at(cs)) - 1; i >= 0; i-- {
		if (*at(cs))[i].Key == "_id" {
			continue
		}
		c := cs.clone()
		*at(&c) = slices.Delete(slices.Clone(*at(&c)), i, i+1)
		progress = try(c, target) || progress
	}
	return progress
}

// diffShrinkRead are simpler forms of rd: without its projection or one
// of its paths, its limit, its sort (when it has no limit), or its last
// stage when that is a $project or a $limit.
func diffShrinkRead(rd diffRead) []diffRead {
	var out []diffRead
	if rd.proj != nil {
		r := rd
		r.proj = nil
		out = append(out, r)
		for i := range rd.proj {
			if len(rd.proj) > 1 {
				r := rd
				r.proj = slices.Delete(slices.Clone(rd.proj), i, i+1)
				out = append(out, r)
			}
		}
	}
	if rd.limit > 0 {
		r := rd
		r.limit = 0
		out = append(out, r)
	}
	if rd.op == "find" && rd.sort != nil && rd.limit == 0 {
		r := rd
		r.sort, r.ordered = nil, false
		out = append(out, r)
	}
	if n := len(rd.stages); n > 0 {
		if k := rd.stages[n-1].(bson.D)[0].Key; k == "$project" || k == "$limit" {
			r := rd
			r.stages = rd.stages[: n-1 : n-1]
			out = append(out, r)
		}
	}
	return out
}

// diffShrinkUpdate is u without one of its operators' paths, each way.
func diffShrinkUpdate(u bson.D) []bson.D {
	var out []bson.D
	for i, op := range u {
		fields, _ := op.Value.(bson.D)
		for j := range fields {
			if len(fields) == 1 && len(u) == 1 {
				continue
			}
			v := slices.Clone(u)
			if len(fields) == 1 {
				v = slices.Delete(v, i, i+1)
			} else {
				v[i].Value = slices.Delete(slices.Clone(fields), j, j+1)
			}
			out = append(out, v)
		}
	}
	return out
}

func (cs diffCase) clone() diffCase {
	c := diffCase{docs: slices.Clone(cs.docs), reads: slices.Clone(cs.reads), writes: slices.Clone(cs.writes)}
	for i := range c.writes {
		c.writes[i].models = slices.Clone(c.writes[i].models)
		c.writes[i].docs = slices.Clone(c.writes[i].docs)
	}
	return c
}
