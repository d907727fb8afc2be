//go:build ignore

// This program must not compile: each call below gives an operation an
// option of the other kind, and TestMisplacedOptionsDoNotCompile checks
// that the compiler refuses every one of them (the line of each is listed
// there). An option that fits both kinds (query.Sort) compiles anywhere.
package main

import (
	"context"
	"time"

	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

type User struct {
	ID   string `bson:"_id"`
	Name string `bson:"name"`
}

func main() {
	ctx := context.Background()
	var users *odm.Collection[User]
	u := User{}
	_ = users.InsertMany(ctx, []User{u}, query.Cached(time.Minute)) // misplaced: a read option on a write
	_, _ = users.FindMany(ctx, nil, odm.Upsert())                   // misplaced: a write option on a read
	_ = users.Save(ctx, &u, query.Limit(1))                         // misplaced: a read option on a write
	_, _ = users.Count(ctx, nil, odm.WithoutHooks())                // misplaced: a write option on a read
	_, _ = query.FindMany[User](ctx, nil, odm.Unordered())          // misplaced: a write option on a read
	_, _ = users.FindOneAndUpdate(ctx, nil, nil, query.Sort(nil), odm.ReturnAfter())
	_, _ = users.FindMany(ctx, nil, query.Sort(nil), query.Limit(1))
}
