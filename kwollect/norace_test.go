//go:build !race

package kwollect

const raceEnabled = false
