//go:build race

package jobs

// raceEnabled reports whether the race detector is on: it slows SQLite
// (C translated to Go) by an order of magnitude.
const raceEnabled = true
