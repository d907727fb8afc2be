//go:build !race

package odm_test

const raceDetector = false
