package fairq

import (
	"errors"
	"strconv"
	"time"
)

// ErrShed is matched by every error that reports a request shed by the
// scheduler: errors.Is(err, ErrShed). Use errors.As with a *ShedError to read
// the reason and RetryAfter.
var ErrShed = errors.New("fairq: shed")

// ShedReason says why a request was shed.
type ShedReason uint8

const (
	// ShedDeadline means no slot was granted before the request's deadline
	// (or its context's deadline) passed.
	ShedDeadline ShedReason = iota + 1
	// ShedQueueFull means MaxQueue requests were already waiting and the
	// request's tenant had the longest queue relative to its weight: the
	// request was rejected on arrival or pushed out by another tenant's.
	ShedQueueFull
)

// String returns "deadline" or "queue_full", suitable as a metric label.
func (r ShedReason) String() string {
	switch r {
	case ShedDeadline:
		return "deadline"
	case ShedQueueFull:
		return "queue_full"
	default:
		return "ShedReason(" + strconv.Itoa(int(r)) + ")"
	}
}

// ShedError reports that Acquire shed a request instead of granting it a
// slot. It matches ErrShed with errors.Is. Serve it as 503 with a
// Retry-After of RetryAfterSeconds.
type ShedError struct {
	// Reason says why the request was shed.
	Reason ShedReason
	// RetryAfter is an estimate of when the tenant's queue will have drained
	// enough for a retry to be granted, and at least the rest of its
	// breaker's cool-down. It is a whole number of seconds, at least one
	// and at most a minute.
	RetryAfter time.Duration
}

// Error describes the shedding; its text is for logs, not for clients.
func (e *ShedError) Error() string {
	return "fairq: shed (" + e.Reason.String() + "), retry after " + e.RetryAfter.String()
}

// Is reports whether target is ErrShed.
func (e *ShedError) Is(target error) bool { return target == ErrShed }

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least 1: the
// value of a Retry-After header.
func (e *ShedError) RetryAfterSeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

const maxRetryAfter = time.Minute

// retryAfter rounds d up to whole seconds within [1s, maxRetryAfter].
func retryAfter(d time.Duration) time.Duration {
	if d <= time.Second {
		return time.Second
	}
	if d >= maxRetryAfter {
		return maxRetryAfter
	}
	return (d + time.Second - 1) / time.Second * time.Second
}
