package fleet

import (
	"time"

	"github.com/databridge-go/databridge/bench/internal/precision"
	"github.com/databridge-go/databridge/cache"
)

// The parent and a worker talk in JSON lines: the parent writes requests
// to the worker's stdin, the worker writes one reply per request to its
// stdout, with the request's ID, in the order they finish. The first
// request is Setup; the worker exits after Quit or at the end of its
// stdin, so that it dies with its parent.

// request is one line to a worker: exactly one of its operations is set.
type request struct {
	ID    uint64           `json:"id"`
	Setup *setup           `json:"setup,omitempty"`
	Read  *readOp          `json:"read,omitempty"`
	Write *precision.Write `json:"write,omitempty"`
	Warm  *probeOp         `json:"warm,omitempty"`
	Poll  *probeOp         `json:"poll,omitempty"`
	Stats bool             `json:"stats,omitempty"`
	Quit  bool             `json:"quit,omitempty"`
}

// setup opens the worker's client, cache and handle; the reply comes once
// the cache follows the log (cache.Stats.Synced).
type setup struct {
	URI        string `json:"uri"`
	DB         string `json:"db"`
	Collection string `json:"collection"`
	// Log names the log's capped collection (coherence.LogCollection).
	Log string `json:"log"`
	// NamespaceEvents: coherence.NamespaceEvents.
	NamespaceEvents bool `json:"namespaceEvents,omitempty"`
	// What precision.PickRead reads of the config.
	Tenants int           `json:"tenants"`
	TTL     time.Duration `json:"ttl"`
}

// readOp makes precision.PickRead(cfg, Seed, MaxID); the reply says its
// result's fingerprint and whether it was a hit.
type readOp struct {
	Seed  int64 `json:"seed"`
	MaxID int   `json:"maxID"`
}

// probeOp reads precision.ProbeRead(cfg, ID): once (Warm), or until its
// result's fingerprint differs from Old (Poll), for at most PollTimeout.
type probeOp struct {
	ID  int    `json:"id"`
	Old uint64 `json:"old,omitempty"`
}

// reply answers one request.
type reply struct {
	ID  uint64 `json:"id"`
	Err string `json:"err,omitempty"`
	// Read and Warm: the result's fingerprint, and whether it was a hit.
	FP  uint64 `json:"fp,omitempty"`
	Hit bool   `json:"hit,omitempty"`
	// Write: when it returned; Poll: when the changed result returned
	// (Unix nanoseconds), or TimedOut.
	At       int64 `json:"at,omitempty"`
	TimedOut bool  `json:"timedOut,omitempty"`
	// Stats: the cache's counters, and the errors its log recovered
	// from (coherence.OnError), with the first.
	Stats     *cache.Stats `json:"stats,omitempty"`
	LogErrors int64        `json:"logErrors,omitempty"`
	LogError  string       `json:"logError,omitempty"`
}
