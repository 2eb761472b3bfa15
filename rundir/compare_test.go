package rundir

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompare(t *testing.T) {
	k := SeriesKey{"taurus-7", "wattmetre_power_watt"}
	only := SeriesKey{"taurus-8", "wattmetre_power_watt"}
	a := Energies{k: {1, 2, 3, 4, 5, 6}, only: {5}}
	b := Energies{k: {2, 3, 4, 5, 6, 7}, {"taurus-9", "m"}: {1}}
	cs := Compare(a, b)
	require.Len(t, cs, 1, "the series both have")
	c := cs[0]
	require.Equal(t, 6, c.A.Runs)
	require.InDelta(t, 3.5, c.A.MeanJ, 1e-12)
	require.InDelta(t, math.Sqrt(3.5), *c.A.SDJ, 1e-12)
	require.InDelta(t, 1, c.DiffJ, 1e-12)
	require.InDelta(t, 100.0/3.5, *c.DiffPct, 1e-9)
	// Equal sizes and variances: Welch's df is 2(n-1) = 10, t = 1/sqrt(7/6).
	require.InDelta(t, 10, *c.DF, 1e-9)
	require.InDelta(t, 0.9258200997725514, *c.T, 1e-12)
	// The two-sided p of t(10) at 0.92582, by numerical integration of the density.
	require.InDelta(t, 0.37634173801897575, *c.P, 1e-6)
	// 95 % CI: diff ± t975(10) × se, t975(10) = 2.228139 (tables: 2.228).
	se := math.Sqrt(7.0 / 6)
	require.InDelta(t, 1-2.228139*se, *c.CI95[0], 1e-5)
	require.InDelta(t, 1+2.228139*se, *c.CI95[1], 1e-5)

	one := Compare(Energies{k: {10}}, Energies{k: {12, 13}})
	require.Equal(t, "fewer than two runs on a side: no interval, no test", one[0].Note)
	require.Nil(t, one[0].P)
	flat := Compare(Energies{k: {10, 10}}, Energies{k: {12, 12}})
	require.Equal(t, "no spread on either side: no test", flat[0].Note)

	text := FormatComparisons("a", "b", cs)
	require.Contains(t, text, "Comparison: B = b against A = a")
	require.Contains(t, text, "[-1.41, 3.41]")
	require.Contains(t, FormatComparisons("a", "b", nil), "no series in common")
}

func TestEnergiesOf(t *testing.T) {
	repeat := []byte(`{"runs":[
		{"run":1,"exit_code":0,"series":[{"node":"n","metric":"m","energy_j":10},{"node":"o","metric":"m","energy_j":null}],
		 "phases":[{"name":"load","series":[{"node":"n","metric":"m","energy_j":4}]},{"name":"store","series":[{"node":"n","metric":"m","energy_j":6}]}]},
		{"run":2,"exit_code":1,"series":[{"node":"n","metric":"m","energy_j":99}]},
		{"run":3,"exit_code":null,"series":[{"node":"n","metric":"m","energy_j":12}],
		 "phases":[{"name":"load","series":[{"node":"n","metric":"m","energy_j":5}]}]}]}`)
	e, err := EnergiesOf(repeat, "")
	require.NoError(t, err)
	require.Equal(t, Energies{{"n", "m"}: {10, 12}}, e, "failed runs and empty series left out")
	e, err = EnergiesOf(repeat, "load")
	require.NoError(t, err)
	require.Equal(t, Energies{{"n", "m"}: {4, 5}}, e, "the phase of each run")
	e, err = EnergiesOf(repeat, "nope")
	require.NoError(t, err)
	require.Empty(t, e)
	e, err = EnergiesOf([]byte(`{"exit_code":0,"series":[{"node":"n","metric":"m","energy_j":10}]}`), "")
	require.NoError(t, err)
	require.Equal(t, Energies{{"n", "m"}: {10}}, e)
}
