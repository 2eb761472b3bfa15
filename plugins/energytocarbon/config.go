package energytocarbon

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/plugin"
)

// The values of mode, Alumet's.
const (
	ModeWorldAvg          = "world_avg"
	ModeCountry           = "country"
	ModeIntensityOverride = "intensity_override"
)

var modes = []string{ModeWorldAvg, ModeCountry, ModeIntensityOverride}

// WorldAverage is Alumet's world_avg intensity, in gCO₂e/kWh (IEA, Global
// Energy & CO₂ Status Report).
const WorldAverage = 475.0

// Config is the [plugins.energy-to-carbon] table. Alumet's keys only; unlike
// Alumet, which ignores unknown keys, the loader rejects them.
type Config struct {
	// Mode picks the intensity: "world_avg", "country" or
	// "intensity_override".
	Mode string `toml:"mode"`
	// Country is the [plugins.energy-to-carbon.country] table, read by the
	// country mode; nil when absent (and left out of generated files, as
	// Alumet does).
	Country *CountryConfig `toml:"country,omitempty"`
	// IntensityOverride is the [plugins.energy-to-carbon.intensity_override]
	// table, read by the intensity_override mode.
	IntensityOverride *OverrideConfig `toml:"intensity_override,omitempty"`
}

// CountryConfig is the country table. It decodes itself so that a key
// other than code is reported by Validate at its own line, with a hint for
// `country = "FRA"`, which Alumet's README writes where its code reads code.
type CountryConfig struct {
	// Code is an ISO 3166-1 alpha-3 code of Alumet's energy mix table,
	// e.g. "FRA".
	Code string `toml:"code"`

	hasCode bool
	codeErr string   // code is not a string: what it is
	unknown []string // the other keys, sorted
}

// UnmarshalTOML reads the table; only a value that is not a table fails
// here, the rest is left to Validate, whose errors point at the keys.
func (c *CountryConfig) UnmarshalTOML(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("expected a table, [plugins.%s.country] with code = \"FRA\" (an ISO 3166-1 alpha-3 code), got %s", Name, describe(v))
	}
	*c = CountryConfig{}
	for k, val := range m {
		if k != "code" {
			c.unknown = append(c.unknown, k)
			continue
		}
		c.hasCode = true
		if s, ok := val.(string); ok {
			c.Code = s
		} else {
			c.codeErr = describe(val)
		}
	}
	slices.Sort(c.unknown)
	return nil
}

// describe names a decoded TOML value in an error.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("the boolean %t", x)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

// OverrideConfig is the intensity_override table.
type OverrideConfig struct {
	// Intensity is in gCO₂e per kWh; nil when the key is missing.
	Intensity *float64 `toml:"intensity"`
}

// DefaultConfig returns Alumet's default: the world average, no table.
func DefaultConfig() *Config { return &Config{Mode: ModeWorldAvg} }

// SampleConfig is the commented default section (sample.toml).
//
//go:embed sample.toml
var SampleConfig string

// Validate checks the decoded values; every problem is a plugin.FieldError.
// A table is checked even when the mode does not read it (Alumet, too,
// fails on a country table without code whatever the mode): a mistake in
// it is one the day the mode changes.
func (c *Config) Validate() error {
	var errs []error
	if !slices.Contains(modes, c.Mode) {
		msg := fmt.Sprintf("%q is not a mode: expected %s", c.Mode, orList(modes))
		if near := suggest(c.Mode, modes); len(near) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", near[0])
		}
		errs = append(errs, &plugin.FieldError{Key: "mode", Err: errors.New(msg)})
	}
	if cc := c.Country; cc != nil {
		for _, k := range cc.unknown {
			errs = append(errs, &plugin.FieldError{Key: "country." + k, Err: unknownCountryKey(k)})
		}
		switch {
		case cc.codeErr != "":
			errs = append(errs, plugin.FieldErrorf("country.code", "expected a string, an ISO 3166-1 alpha-3 code such as \"FRA\", got %s", cc.codeErr))
		case cc.Code != "":
			if _, err := lookupCountry(cc.Code); err != nil {
				errs = append(errs, &plugin.FieldError{Key: "country.code", Err: err})
			}
		case !cc.hasCode && len(cc.unknown) > 0:
			// The unknown key is the misspelt code: one error is enough.
		default:
			errs = append(errs, plugin.FieldErrorf("country.code", "missing: the country's ISO 3166-1 alpha-3 code, such as \"FRA\""))
		}
	} else if c.Mode == ModeCountry {
		errs = append(errs, plugin.FieldErrorf("mode", "mode = %q needs a [plugins.%s.country] table with code = \"FRA\" (an ISO 3166-1 alpha-3 code; Alumet's README writes [plugin.%s.country], which is not read)", ModeCountry, Name, Name))
	}
	if o := c.IntensityOverride; o != nil {
		switch {
		case o.Intensity == nil:
			errs = append(errs, plugin.FieldErrorf("intensity_override.intensity", "missing: the intensity in gCO₂e per kWh, such as 100"))
		case math.IsNaN(*o.Intensity) || math.IsInf(*o.Intensity, 0) || *o.Intensity < 0:
			errs = append(errs, plugin.FieldErrorf("intensity_override.intensity", "%v: expected a finite number of gCO₂e per kWh, at least 0", *o.Intensity))
		}
	} else if c.Mode == ModeIntensityOverride {
		errs = append(errs, plugin.FieldErrorf("mode", "mode = %q needs a [plugins.%s.intensity_override] table with intensity = <gCO₂e per kWh> (Alumet's README writes [plugin.%s.override], which is not read)", ModeIntensityOverride, Name, Name))
	}
	return errors.Join(errs...)
}

// unknownCountryKey is the loader's unknown key message for the country
// table (the FieldError names the key), with the hint for Alumet's README.
func unknownCountryKey(k string) error {
	msg := "unknown key (valid keys: country.code"
	switch {
	case k == "country":
		msg += `; did you mean "country.code"? Alumet's README writes country = "FRA", its code reads code = "FRA"`
	case len(suggest(k, []string{"code"})) > 0:
		msg += `; did you mean "country.code"?`
	}
	return errors.New(msg + ")")
}

// Intensity is the intensity the configuration gives, with its origin;
// the configuration must be valid.
func (c *Config) Intensity() (plugin.CarbonIntensity, error) {
	switch c.Mode {
	case ModeWorldAvg:
		return plugin.CarbonIntensity{GramsPerKWh: WorldAverage, Mode: c.Mode, Source: "world average, IEA (Alumet's world_avg)"}, nil
	case ModeCountry:
		if c.Country == nil {
			return plugin.CarbonIntensity{}, fmt.Errorf("mode = %q without a country table", c.Mode)
		}
		ct, err := lookupCountry(c.Country.Code)
		if err != nil {
			return plugin.CarbonIntensity{}, fmt.Errorf("country.code: %w", err)
		}
		return plugin.CarbonIntensity{GramsPerKWh: ct.Intensity, Mode: c.Mode,
			Source: fmt.Sprintf("%s %s %d (Alumet's energy mix table)", ct.Code, ct.Name, ct.Year)}, nil
	case ModeIntensityOverride:
		if c.IntensityOverride == nil || c.IntensityOverride.Intensity == nil {
			return plugin.CarbonIntensity{}, fmt.Errorf("mode = %q without intensity_override.intensity", c.Mode)
		}
		return plugin.CarbonIntensity{GramsPerKWh: *c.IntensityOverride.Intensity, Mode: c.Mode, Source: "intensity_override in the configuration"}, nil
	}
	return plugin.CarbonIntensity{}, fmt.Errorf("mode %q is not one of %s", c.Mode, orList(modes))
}

// unusedTables names the tables the mode does not read, for a warning:
// Alumet ignores them silently.
func (c *Config) unusedTables() []string {
	var out []string
	if c.Country != nil && c.Mode != ModeCountry {
		out = append(out, "country")
	}
	if c.IntensityOverride != nil && c.Mode != ModeIntensityOverride {
		out = append(out, "intensity_override")
	}
	return out
}

// suggest returns the candidates near name: at edit distance at most 2
// (1 for names of up to 5 characters), else those containing it or
// contained in it ("override" → "intensity_override"), best first.
func suggest(name string, candidates []string) []string {
	maxDist := min(2, max(1, len([]rune(name))/3))
	best := maxDist + 1
	var near, parts []string
	for _, c := range candidates {
		if c == name {
			continue
		}
		if d := config.EditDistance(name, c); d <= maxDist && d <= best {
			if d < best {
				best, near = d, nil
			}
			near = append(near, c)
		}
		if len(name) >= 3 && (strings.Contains(c, name) || strings.Contains(name, c)) {
			parts = append(parts, c)
		}
	}
	if len(near) > 0 {
		return near
	}
	return parts
}

// orList writes "a", "a or b", "a, b or c", each quoted.
func orList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return joinOr(q)
}
