package decode_test

import (
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/decode"
)

func ExamplePlan_Decode() {
	type Item struct {
		SKU   string  `bson:"sku"`
		Price float64 `bson:"price"`
	}
	type Order struct {
		Customer string `bson:"customer"`
		Items    []Item `bson:"items"`
	}
	plan := decode.MustCompile[Order]()

	doc, _ := bson.Marshal(bson.D{
		{Key: "customer", Value: "Ada"},
		{Key: "items", Value: bson.A{bson.D{{Key: "sku", Value: "A-1"}, {Key: "price", Value: int32(3)}}}},
	})
	var o Order
	if err := plan.Decode(doc, &o); err != nil {
		panic(err)
	}
	fmt.Printf("%s bought %s at %.2f\n", o.Customer, o.Items[0].SKU, o.Items[0].Price)
	// Output: Ada bought A-1 at 3.00
}

func ExampleError() {
	type Item struct {
		Price float64 `bson:"price"`
	}
	type Order struct {
		Items []Item `bson:"items"`
	}
	doc, _ := bson.Marshal(bson.D{{Key: "items", Value: bson.A{
		bson.D{{Key: "price", Value: 1.5}},
		bson.D{{Key: "price", Value: "free"}},
	}}})
	var o Order
	err := decode.Unmarshal(doc, &o)

	var de *decode.Error
	if errors.As(err, &de) {
		fmt.Println(de.Path, de.BSONType, de.GoType, errors.Is(err, decode.ErrTypeMismatch))
	}
	// Output: items[1].price string float64 true
}

func ExampleZeroCopy() {
	type User struct {
		Name string `bson:"name"`
	}
	plan := decode.MustCompile[User](decode.ZeroCopy())
	doc, _ := bson.Marshal(bson.D{{Key: "name", Value: "Grace"}})
	var u User
	_ = plan.Decode(doc, &u) // u.Name points into doc: valid while doc is
	fmt.Println(u.Name)
	// Output: Grace
}

func ExamplePlan_DecodeWith() {
	type User struct {
		Name string   `bson:"name"`
		Tags []string `bson:"tags"`
	}
	plan := decode.MustCompile[User]()
	var docs [][]byte
	for _, n := range []string{"Ada", "Grace", "Edsger"} {
		doc, _ := bson.Marshal(bson.D{{Key: "name", Value: n}, {Key: "tags", Value: bson.A{"admin"}}})
		docs = append(docs, doc)
	}
	// One Arena for the batch: the three users' strings and tag slices
	// share a few allocations instead of costing two or more each.
	var arena decode.Arena
	users := make([]User, len(docs))
	for i, doc := range docs {
		if err := plan.DecodeWith(doc, &users[i], &arena); err != nil {
			panic(err)
		}
	}
	fmt.Println(users[0].Name, users[2].Name, users[1].Tags)
	// Output: Ada Edsger [admin]
}
