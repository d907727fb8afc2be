package otel_test

import (
	"context"
	"log"
	"os"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	dbotel "github.com/databridge-go/databridge/otel"
)

// Spans for every cached read and metrics from the cache's counters, with
// the global TracerProvider and MeterProvider (set them up first, as
// OpenTelemetry's SDK documents). Install otelmongo's monitor inside
// cache.Observer and the driver's command spans nest under the reads'.
func Example() {
	c, err := cache.New(cache.Config{Tracer: dbotel.NewTracer()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	reg, err := dbotel.RegisterMetrics(c)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()

	client, err := mongo.Connect(options.Client().
		ApplyURI(os.Getenv("MONGODB_URI")).
		SetMonitor(cache.Observer(nil /* otelmongo.NewMonitor() */)))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	// odm.New[User](client.Database("shop").Collection("users"), odm.WithCache(c))
}
