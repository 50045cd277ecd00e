//go:build race

package boltstore_test

// raceDetector is set when the tests run under the race detector.
const raceDetector = true
