package measure

import (
	"fmt"
	"strings"
)

// BaseUnit is a unit without prefix, with Alumet's unique (UCUM-like) and display names.
type BaseUnit struct {
	Unique  string
	Display string
}

// The base units Alumet knows.
var (
	Unity      = BaseUnit{"1", ""}
	Second     = BaseUnit{"s", "s"}
	Watt       = BaseUnit{"W", "W"}
	Joule      = BaseUnit{"J", "J"}
	Volt       = BaseUnit{"V", "V"}
	Ampere     = BaseUnit{"A", "A"}
	Hertz      = BaseUnit{"Hz", "Hz"}
	Celsius    = BaseUnit{"Cel", "°C"}
	Fahrenheit = BaseUnit{"[degF]", "°F"}
	WattHour   = BaseUnit{"W.h", "Wh"}
	Byte       = BaseUnit{"By", "B"}
	Percent    = BaseUnit{"%", "%"}
)

var baseUnits = []BaseUnit{Unity, Second, Watt, Joule, Volt, Ampere, Hertz, Celsius, Fahrenheit, WattHour, Byte, Percent}

// Prefix is an SI prefix.
type Prefix struct {
	Unique  string
	Display string
}

// SI prefixes; the zero Prefix is "none".
var (
	NoPrefix = Prefix{}
	Nano     = Prefix{"nano", "n"}
	Micro    = Prefix{"micro", "μ"}
	Milli    = Prefix{"milli", "m"}
	Kilo     = Prefix{"kilo", "k"}
	Mega     = Prefix{"mega", "M"}
	Giga     = Prefix{"giga", "G"}
)

// Alumet's parse order: full names first, then symbols, first match wins.
var prefixParseOrder = []struct {
	text   string
	prefix Prefix
}{
	{"giga", Giga}, {"mega", Mega}, {"kilo", Kilo}, {"milli", Milli}, {"micro", Micro}, {"nano", Nano},
	{"G", Giga}, {"M", Mega}, {"k", Kilo}, {"m", Milli}, {"μ", Micro}, {"n", Nano},
}

// Unit is a base unit with an optional prefix.
type Unit struct {
	Prefix Prefix
	Base   BaseUnit
}

// Plain returns the unit b without prefix.
func Plain(b BaseUnit) Unit { return Unit{Base: b} }

// Custom returns a unit that Alumet does not know, named the same in both forms.
func Custom(name string) Unit { return Unit{Base: BaseUnit{name, name}} }

// UniqueName is the unit's unique name, e.g. "milliW" or "By".
func (u Unit) UniqueName() string { return u.Prefix.Unique + u.Base.Unique }

// DisplayName is the unit's display name, e.g. "mW" or "B".
func (u Unit) DisplayName() string { return u.Prefix.Display + u.Base.Display }

func (u Unit) String() string { return u.DisplayName() }

// ParseBaseUnit parses a unit without prefix, by unique or display name.
func ParseBaseUnit(s string) (BaseUnit, bool) {
	for _, b := range baseUnits {
		if s == b.Unique || (s == b.Display && s != "") {
			return b, true
		}
	}
	return BaseUnit{}, false
}

// ParseUnit parses a possibly prefixed unit the way Alumet does: the first
// prefix that matches is taken and the rest must be a base unit, with no
// backtracking (so "min" fails instead of reading as "m"+"in").
func ParseUnit(s string) (Unit, error) {
	for _, p := range prefixParseOrder {
		if rest, ok := strings.CutPrefix(s, p.text); ok {
			b, ok := ParseBaseUnit(rest)
			if !ok {
				return Unit{}, fmt.Errorf("invalid unit %q: %q is not a unit after prefix %q", s, rest, p.text)
			}
			return Unit{Prefix: p.prefix, Base: b}, nil
		}
	}
	b, ok := ParseBaseUnit(s)
	if !ok {
		return Unit{}, fmt.Errorf("invalid unit %q", s)
	}
	return Unit{Base: b}, nil
}

// kwollectUnitWords normalises the unit word of a Kwollect metric name.
var kwollectUnitWords = map[string]string{
	"watt": "W", "kilowatt": "kW", "watthour": "W.h", "celsius": "Cel", "percent": "%",
	"amp": "A", "ampere": "A", "volt": "V", "hertz": "Hz", "bytes": "By", "packets": "1",
	"lux": "lx", "deg": "°", "VA": "V.A", "VAr": "V.A_r", "cfm": "[cft_i]/min",
}

// UnitFromKwollectMetric derives the unit of a Kwollect metric from its name,
// as Alumet's kwollect-input does: wattmetre_power_watt → W,
// bmc_node_power_watthour_total → Wh, network_ifacein_bytes_total → B.
func UnitFromKwollectMetric(name string) Unit {
	parts := strings.Split(name, "_")
	word := parts[len(parts)-1]
	if n := len(parts); n >= 3 && parts[n-1] == "total" {
		word = parts[n-2]
		if word == "discard" || word == "error" {
			word = parts[n-3]
		}
	}
	if w, ok := kwollectUnitWords[word]; ok {
		word = w
	}
	if u, err := ParseUnit(word); err == nil {
		return u
	}
	if b, ok := ParseBaseUnit(word); ok {
		return Plain(b)
	}
	return Custom(word)
}
