// Package outcome tells, from a driver error, what a write did: whether the
// server answered, nothing was sent, or nobody can know.
//
// Every write that keeps a cache or a bulk report honest needs this: a
// write that was never sent changed nothing; one the server answered is
// over (applied, refused, or applied in part); one sent without a reply may
// have been applied, and may still be running on the server.
package outcome

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// Kind is what a write's error says about it.
type Kind int

const (
	// Done: the server answered (err is nil, or the server's own error).
	// Whatever the write did is finished.
	Done Kind = iota
	// NotSent: the error proves nothing reached the server (no server
	// could be selected, no connection checked out, the deadline had
	// passed before sending, the command could not be built).
	NotSent
	// Unknown: the write may have been sent and the reply is missing (a
	// network error, a timeout or cancellation while waiting). It may have
	// been applied, in part or whole, and may still be running.
	Unknown
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Done:
		return "done"
	case NotSent:
		return "not sent"
	}
	return "unknown"
}

// Of classifies err, the error of one driver write call.
func Of(err error) Kind {
	if err == nil || errors.Is(err, mongo.ErrNoDocuments) {
		return Done // ErrNoDocuments: the server answered that nothing matched
	}
	var (
		sse topology.ServerSelectionError
		wqe topology.WaitQueueTimeoutError
		iae mongo.InvalidArgumentError
		me  mongo.MarshalError
	)
	switch {
	case errors.As(err, &sse), errors.As(err, &wqe),
		errors.Is(err, driver.ErrDeadlineWouldBeExceeded),
		errors.Is(err, mongo.ErrClientDisconnected),
		errors.As(err, &iae), errors.As(err, &me):
		return NotSent
	}
	var se mongo.ServerError
	if errors.As(err, &se) && se.HasErrorLabel(driver.NoWritesPerformed) {
		return NotSent
	}
	if mongo.IsNetworkError(err) {
		return Unknown
	}
	// The error of a command monitor's failed event is the driver's own
	// (the mongo package converts it for callers): a server's answer
	// carries a code and no network label.
	var de driver.Error
	if errors.As(err, &de) {
		switch {
		case de.HasErrorLabel(driver.NoWritesPerformed):
			return NotSent
		case de.NetworkError():
			return Unknown
		case de.Code != 0:
			return Done
		}
	}
	var (
		we  mongo.WriteException
		bwe mongo.BulkWriteException
		ce  mongo.CommandError
	)
	switch {
	case errors.As(err, &we) && (len(we.WriteErrors) > 0 || we.WriteConcernError != nil),
		errors.As(err, &bwe) && (len(bwe.WriteErrors) > 0 || bwe.WriteConcernError != nil),
		errors.As(err, &ce) && ce.Code != 0:
		return Done // the server's reply (MaxTimeMSExpired included: it stopped)
	}
	return Unknown
}
