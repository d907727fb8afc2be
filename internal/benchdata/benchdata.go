// Package benchdata holds the document shapes and generators shared by the
// benchmarks of this module and of the bench module, so every comparison
// reads the same data into the same types.
package benchdata

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Small is the small shape: four fields.
type Small struct {
	ID    bson.ObjectID `bson:"_id"`
	Name  string        `bson:"name"`
	Email string        `bson:"email"`
	Age   int           `bson:"age"`
}

// Address is part of Medium.
type Address struct {
	Street  string `bson:"street"`
	City    string `bson:"city"`
	Zip     string `bson:"zip"`
	Country string `bson:"country"`
}

// Item is part of Medium.
type Item struct {
	SKU   string  `bson:"sku"`
	Qty   int     `bson:"qty"`
	Price float64 `bson:"price"`
}

// Medium is the medium shape (~1 KB as BSON).
type Medium struct {
	ID       bson.ObjectID `bson:"_id"`
	Customer string        `bson:"customer"`
	Email    string        `bson:"email"`
	Status   string        `bson:"status"`
	Total    float64       `bson:"total"`
	Paid     bool          `bson:"paid"`
	Created  time.Time     `bson:"created"`
	Updated  time.Time     `bson:"updated"`
	Tags     []string      `bson:"tags"`
	Address  Address       `bson:"address"`
	Items    []Item        `bson:"items"`
	Notes    string        `bson:"notes"`
	Version  int64         `bson:"version"`
}

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewSmall returns the i-th small document.
func NewSmall(i int) Small {
	return Small{ID: bson.NewObjectID(), Name: fmt.Sprintf("user %d", i), Email: fmt.Sprintf("user%d@example.com", i), Age: 20 + i%50}
}

// NewSmalls returns n small documents, numbered from first.
func NewSmalls(first, n int) []Small {
	docs := make([]Small, n)
	for k := range docs {
		docs[k] = NewSmall(first + k)
	}
	return docs
}

// NewMedium returns the i-th medium document.
func NewMedium(i int) Medium {
	m := Medium{
		ID: bson.NewObjectID(), Customer: fmt.Sprintf("customer %d", i), Email: fmt.Sprintf("c%d@example.com", i),
		Status: []string{"new", "paid", "shipped", "done"}[i%4], Total: float64(i%1000) + 0.99, Paid: i%2 == 0,
		Created: base.Add(time.Duration(i) * time.Minute), Updated: base.Add(time.Duration(i) * time.Hour),
		Tags:    []string{"a", "b", fmt.Sprint("t", i%10), "z"},
		Address: Address{Street: fmt.Sprintf("%d Main Street", i), City: "London", Zip: "N1 9GU", Country: "UK"},
		Notes:   strings.Repeat("note ", 40), Version: int64(i),
	}
	for k := range 5 {
		m.Items = append(m.Items, Item{SKU: fmt.Sprintf("SKU-%d-%d", i%100, k), Qty: 1 + k, Price: 9.99 * float64(k+1)})
	}
	return m
}

// Seed inserts n documents of the shape ("small" or "medium") into coll, in
// chunks, with the driver.
func Seed(ctx context.Context, coll *mongo.Collection, shape string, n int) error {
	const chunk = 1000
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		docs := make([]any, 0, end-start)
		for i := start; i < end; i++ {
			switch shape {
			case "small":
				docs = append(docs, NewSmall(i))
			case "medium":
				docs = append(docs, NewMedium(i))
			default:
				return fmt.Errorf("benchdata: unknown shape %q", shape)
			}
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			return err
		}
	}
	return nil
}

// CPUTime returns the user+system CPU time this process has used. The
// server under test runs in another process, so differences of CPUTime
// measure the client alone.
func CPUTime() time.Duration { return rusageCPU(syscall.RUSAGE_SELF) }

// rusageCPU is the user+system time getrusage reports for who, or 0.
func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Measure runs fn in the benchmark loop and reports client CPU per op
// (cpu-ns/op: this process's user+system time; the server under test is
// another process) beside wall time, with allocations.
//
// One op runs first, unmeasured: whichever library runs first after the
// fixtures are loaded would otherwise pay for the connection pool's first
// checkout, its plan's compilation and the setup's garbage.
func Measure(b *testing.B, fn func() error) {
	if err := fn(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := CPUTime()
	for b.Loop() {
		if err := fn(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(CPUTime()-start)/float64(b.N), "cpu-ns/op")
}

// rusageThread is Linux's RUSAGE_THREAD: the calling thread's usage.
const rusageThread = 1

// ThreadCPUTime returns the calling OS thread's user+system CPU time, or 0
// where the system does not report it (it is Linux's RUSAGE_THREAD). Lock
// the goroutine to its thread (runtime.LockOSThread) for differences of it
// to measure that goroutine's work.
func ThreadCPUTime() time.Duration { return rusageCPU(rusageThread) }

// MeasureCaller is Measure with the benchmark goroutine locked to its OS
// thread, reporting also that thread's CPU time alone (caller-cpu-ns/op,
// Linux only): the work done in the calling goroutine (encoding, building
// the command, reading and decoding the reply) without the process's
// background (garbage collection workers, the runtime's monitor thread,
// other goroutines), which grows with wall time and swamps the client's
// work in server-bound benchmarks whose ops take seconds. Locking costs a
// thread handoff at every network wait (about 90 µs of process CPU per find
// here): use it only where ops take far longer, and compare only libraries
// measured the same way.
func MeasureCaller(b *testing.B, fn func() error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := ThreadCPUTime()
	Measure(b, fn)
	if used := ThreadCPUTime() - start; used > 0 {
		b.ReportMetric(float64(used)/float64(b.N), "caller-cpu-ns/op")
	}
}

// MeasureOp is Measure for an Op, numbered from 0.
func MeasureOp(b *testing.B, op Op) { Measure(b, numbered(op)) }

// MeasureCallerOp is MeasureCaller for an Op, numbered from 0.
func MeasureCallerOp(b *testing.B, op Op) { MeasureCaller(b, numbered(op)) }

func numbered(op Op) func() error {
	ctx := context.Background()
	i := 0
	return func() error {
		err := op(ctx, i)
		i++
		return err
	}
}
