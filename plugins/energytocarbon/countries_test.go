package energytocarbon

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// The embedded table is Alumet's: 213 countries, France at 56.039 g/kWh
// (2023), every entry complete.
func TestCountries(t *testing.T) {
	table, err := Countries()
	require.NoError(t, err)
	require.Len(t, table, 213)
	require.Equal(t, Country{Code: "FRA", Name: "France", Intensity: 56.039, Year: 2023}, table["FRA"])
	for code, c := range table {
		require.Len(t, code, 3)
		require.Equal(t, code, c.Code)
		require.NotEmpty(t, c.Name, code)
		require.False(t, math.IsNaN(c.Intensity) || c.Intensity < 0 || c.Intensity > 2000, code)
		require.True(t, c.Year >= 2000 && c.Year <= 2030, code)
	}
}

func TestLookupCountry(t *testing.T) {
	tests := []struct {
		code string
		want string // the country's name, or the error
	}{
		{"FRA", "France"},
		{"DEU", "Germany"},
		{"fra", `unknown country code "fra": not in Alumet's energy mix table (213 countries, ISO 3166-1 alpha-3 codes such as "FRA"); did you mean "FRA" (France)?`},
		{" FRA", `did you mean "FRA" (France)?`},
		{"France", `did you mean "FRA" (France)?`},
		{"france", `did you mean "FRA" (France)?`},
		{"FR", `did you mean "FRA" (France) or "FRO" (Faroe Islands)?`},
		{"FRX", `did you mean "FRA" (France) or "FRO" (Faroe Islands)?`},
		{"XYZ", `unknown country code "XYZ": not in Alumet's energy mix table (213 countries, ISO 3166-1 alpha-3 codes such as "FRA")`},
		{"F", `unknown country code "F": not in Alumet's energy mix table (213 countries, ISO 3166-1 alpha-3 codes such as "FRA")`},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			c, err := lookupCountry(tt.code)
			if tt.want == "France" || tt.want == "Germany" {
				require.NoError(t, err)
				require.Equal(t, tt.want, c.Name)
				return
			}
			require.ErrorContains(t, err, tt.want)
			if tt.code == "XYZ" || tt.code == "F" {
				require.NotContains(t, err.Error(), "did you mean")
			}
		})
	}
}

// A typo offers a few codes, those with the same first letter first.
func TestNearCountriesBounded(t *testing.T) {
	table, err := Countries()
	require.NoError(t, err)
	near := nearCountries("DEX", table)
	require.NotEmpty(t, near)
	require.LessOrEqual(t, len(near), maxCountrySuggestions)
	require.Equal(t, "DEU", near[0].Code)
}
