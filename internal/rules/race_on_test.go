//go:build race

package rules

// raceEnabled: sync.Pool drops items on purpose under the race detector.
const raceEnabled = true
