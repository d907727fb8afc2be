package query_test

import (
	"context"
	"log"
	"os"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/query"
)

// A client connected with a registry or BSON options of its own is
// declared once, with the same options: every read and odm write through
// it then decodes and stores what the driver does for that client.
func ExampleUseClientOptions() {
	uri, reg := os.Getenv("MONGODB_URI"), bson.NewRegistry()
	if err := connect(uri, reg); err != nil {
		log.Fatal(err)
	}
}

func connect(uri string, reg *bson.Registry) error {
	opts := options.Client().ApplyURI(uri).SetRegistry(reg).SetBSONOptions(&options.BSONOptions{UseLocalTimeZone: true})
	client, err := mongo.Connect(opts)
	if err != nil {
		return err
	}
	query.UseClientOptions(client, opts)
	defer client.Disconnect(context.Background())
	return nil
}
