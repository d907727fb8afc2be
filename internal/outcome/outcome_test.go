package outcome_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/databridge-go/databridge/internal/outcome"
)

// TestOf classifies driver errors built by hand: the shapes the driver
// returns for each case (seen against the dev server, except the ones it
// cannot produce on demand, such as a lost reply), so that every branch is
// covered without faking a server.
func TestOf(t *testing.T) {
	tests := []struct {
		name string
		give error
		want outcome.Kind
	}{
		{"nil", nil, outcome.Done},
		{"server selection", topology.ServerSelectionError{Wrapped: context.DeadlineExceeded}, outcome.NotSent},
		{"checkout timeout", fmt.Errorf("x: %w", topology.WaitQueueTimeoutError{Wrapped: context.DeadlineExceeded}), outcome.NotSent},
		{"deadline would be exceeded", fmt.Errorf("calculated server-side timeout: %w", driver.ErrDeadlineWouldBeExceeded), outcome.NotSent},
		{"client disconnected", mongo.ErrClientDisconnected, outcome.NotSent},
		{"nil document", mongo.ErrNilDocument, outcome.NotSent},
		{"no writes performed", mongo.CommandError{Code: 91, Labels: []string{driver.NoWritesPerformed, driver.NetworkError}}, outcome.NotSent},
		{"network error", mongo.CommandError{Labels: []string{driver.NetworkError}, Wrapped: errors.New("connection reset")}, outcome.Unknown},
		{"context cancelled", context.Canceled, outcome.Unknown},
		{"deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), outcome.Unknown},
		{"duplicate key", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000}}}, outcome.Done},
		// The failure of a CommandFailedEvent is the driver's own error,
		// not the mongo package's (the write observer classifies those):
		// Unknown for each on a785bb8.
		{"monitor: server refusal", driver.Error{Code: 11000, Message: "E11000 duplicate key error"}, outcome.Done},
		{"monitor: validation failure", driver.Error{Code: 121, Name: "DocumentValidationFailure"}, outcome.Done},
		{"monitor: network error", driver.Error{Labels: []string{driver.NetworkError}, Wrapped: errors.New("connection reset")}, outcome.Unknown},
		{"monitor: no writes performed", driver.Error{Code: 91, Labels: []string{driver.NoWritesPerformed}}, outcome.NotSent},
		{"write concern", mongo.WriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64}}, outcome.Done},
		{"bulk rejection", mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: mongo.WriteError{Code: 11000}}}}, outcome.Done},
		{"command error", mongo.CommandError{Code: 2, Message: "bad value"}, outcome.Done},
		{"max time expired", mongo.CommandError{Code: 50, Name: "MaxTimeMSExpired"}, outcome.Done},
		{"anything else", errors.New("?"), outcome.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, outcome.Of(tt.give), "%v", tt.give)
		})
	}
}
