//go:build race

package odm_test

// raceDetector: built with -race, whose instrumentation allocates too
// (allocation counts are checked in make test's run without it).
const raceDetector = true
