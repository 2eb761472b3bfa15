package energy

import (
	"math"
	"strconv"
)

// Joules is an amount of energy in J.
type Joules float64

// Watts is a power in W.
type Watts float64

// String gives the energy with an SI prefix and 4 significant digits,
// e.g. "41.3 kJ", "1.04 kJ", "812 J", "2.5 MJ".
func (j Joules) String() string { return formatSI(float64(j), "J") }

// String gives the power with an SI prefix and 4 significant digits,
// e.g. "129.7 W", "12.3 mW", "1.2 kW".
func (w Watts) String() string { return formatSI(float64(w), "W") }

var siPrefixes = []struct {
	scale  float64
	prefix string
}{
	{1e-3, "m"}, {1, ""}, {1e3, "k"}, {1e6, "M"}, {1e9, "G"}, {1e12, "T"},
}

// formatSI writes v scaled into [1, 1000) (m below 1, T at most) with 4
// significant digits and trailing zeros dropped.
func formatSI(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "NaN " + unit
	case math.IsInf(v, 1):
		return "+Inf " + unit
	case math.IsInf(v, -1):
		return "-Inf " + unit
	case v == 0:
		return "0 " + unit
	}
	a := math.Abs(v)
	k := 1 // no prefix
	for k+1 < len(siPrefixes) && a >= siPrefixes[k+1].scale {
		k++
	}
	if a < 1 {
		k = 0
	}
	s := strconv.FormatFloat(v/siPrefixes[k].scale, 'g', 4, 64)
	// Rounding may carry into the next prefix: 999.96 W prints as 1 kW.
	if r, _ := strconv.ParseFloat(s, 64); math.Abs(r) >= 1000 && k+1 < len(siPrefixes) {
		k++
		s = strconv.FormatFloat(v/siPrefixes[k].scale, 'g', 4, 64)
	}
	return s + " " + siPrefixes[k].prefix + unit
}
