//go:build !race

package powerplot

const raceEnabled = false
