//go:build race

package kwollect

const raceEnabled = true
