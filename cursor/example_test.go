package cursor_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cursor"
)

type Item struct {
	SKU   string  `bson:"sku"`
	Price float64 `bson:"price"`
}

func items(ctx context.Context) *mongo.Collection {
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")))
	if err != nil {
		log.Fatal(err)
	}
	return client.Database("shop").Collection("items")
}

// AppendAll reads the whole stream into a slice the caller owns and closes
// the cursor, error or not.
func ExampleCursor_AppendAll() {
	ctx := context.Background()
	cur, err := items(ctx).Find(ctx, bson.D{})
	if err != nil {
		log.Fatal(err)
	}
	c, err := cursor.New[Item](cur) // the Cursor owns cur from here
	if err != nil {
		log.Fatal(err)
	}
	all, err := c.AppendAll(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(all))
}

// Borrowed decodes every document into one reused value: valid only until
// the next step, so copy what you keep. Breaking out of the loop kills the
// server cursor.
func ExampleCursor_Borrowed() {
	ctx := context.Background()
	cur, err := items(ctx).Find(ctx, bson.D{}, options.Find().SetBatchSize(500))
	if err != nil {
		log.Fatal(err)
	}
	c, err := cursor.New[Item](cur)
	if err != nil {
		log.Fatal(err)
	}
	var total float64
	for it, err := range c.Borrowed(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		total += it.Price
	}
	fmt.Printf("%.2f\n", total)
}
