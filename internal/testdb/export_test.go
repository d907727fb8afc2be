package testdb

import "testing"

// SetFallbackAddr sets where tests look for a server when MONGODB_URI is
// unset (127.0.0.1:27017 otherwise); a test's child process calls it before
// anything connects.
func SetFallbackAddr(addr string) { fallbackAddr = addr }

// Unavailable is unavailable: it skips the test (fails it under CI=true).
func Unavailable(tb testing.TB, msg string) { tb.Helper(); unavailable(tb, msg) }
