package energytocarbon

import (
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/alumet-go/alumet-agent/config"
)

// energyMix is Alumet's table of yearly carbon intensities per country,
// plugins/energy-to-carbon/assets/energy_mix_per_country.json of
// alumet-dev/alumet at afb0aa12, copied unchanged: the country mode must
// give Alumet's numbers.
//
//go:embed assets/energy_mix_per_country.json
var energyMix []byte

// Country is an entry of the energy mix table.
type Country struct {
	Code      string  `json:"-"` // ISO 3166-1 alpha-3, the key
	Name      string  `json:"country_name"`
	Intensity float64 `json:"carbon_intensity"` // gCO₂e per kWh
	Year      int     `json:"year"`             // the year the intensity is the mean of
}

// Countries returns the energy mix table by code.
var Countries = sync.OnceValues(func() (map[string]Country, error) {
	var m map[string]Country
	if err := json.Unmarshal(energyMix, &m); err != nil {
		return nil, fmt.Errorf("the embedded energy mix table: %w", err)
	}
	for code, c := range m {
		c.Code = code
		m[code] = c
	}
	return m, nil
})

// maxCountrySuggestions bounds the codes an unknown code's error offers.
const maxCountrySuggestions = 4

// lookupCountry finds code in the table, case-sensitively as Alumet does;
// an unknown code's error offers the codes it may have meant.
func lookupCountry(code string) (Country, error) {
	table, err := Countries()
	if err != nil {
		return Country{}, err
	}
	if c, ok := table[code]; ok {
		return c, nil
	}
	msg := fmt.Sprintf("unknown country code %q: not in Alumet's energy mix table (%d countries, ISO 3166-1 alpha-3 codes such as \"FRA\")", code, len(table))
	if near := nearCountries(code, table); len(near) > 0 {
		parts := make([]string, len(near))
		for i, c := range near {
			parts[i] = fmt.Sprintf("%q (%s)", c.Code, c.Name)
		}
		msg += "; did you mean " + joinOr(parts) + "?"
	}
	return Country{}, fmt.Errorf("%s", msg)
}

// nearCountries returns the entries code may have meant: the same code in
// another case, else a country named so ("France"), else the codes at one
// edit from it, or starting with it (an alpha-2 code such as "FR").
func nearCountries(code string, table map[string]Country) []Country {
	up := strings.ToUpper(strings.TrimSpace(code))
	if c, ok := table[up]; ok {
		return []Country{c}
	}
	var byName, near []Country
	for _, c := range table {
		switch {
		case strings.EqualFold(c.Name, strings.TrimSpace(code)):
			byName = append(byName, c)
		case len(up) >= 2 && (config.EditDistance(up, c.Code) <= 1 || strings.HasPrefix(c.Code, up)):
			near = append(near, c)
		}
	}
	if len(byName) > 0 {
		return byName
	}
	// Same first letter first: a typo is more often further in the code.
	slices.SortFunc(near, func(a, b Country) int {
		fa, fb := a.Code[0] != up[0], b.Code[0] != up[0]
		if fa != fb {
			if fa {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Code, b.Code)
	})
	return near[:min(len(near), maxCountrySuggestions)]
}

// joinOr writes "a", "a or b", "a, b or c".
func joinOr(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
