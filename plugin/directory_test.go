package plugin

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDirectory(t *testing.T) {
	var d Directory
	require.Equal(t, "", d.Site("taurus-7"))
	d.SetSite("taurus-7.lyon.grid5000.fr", "lyon")
	d.SetSite(" gros-1 ", "nancy")
	d.SetDefaultSite("rennes")
	d.SetDefaultSite("lille")
	for node, want := range map[string]string{"taurus-7": "lyon", "taurus-7.lyon.grid5000.fr": "lyon", "gros-1": "nancy", "paravance-3": "rennes"} {
		require.Equal(t, want, d.Site(node), node)
	}
}

func TestDirectoryCarbonIntensity(t *testing.T) {
	var d Directory
	_, ok := d.CarbonIntensity()
	require.False(t, ok)
	want := CarbonIntensity{GramsPerKWh: 475, Mode: "world_avg", Source: "world average (IEA)"}
	d.SetCarbonIntensity(want)
	got, ok := d.CarbonIntensity()
	require.True(t, ok)
	require.Equal(t, want, got)
}
