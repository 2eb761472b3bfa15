package config

import (
	"fmt"
	"strings"
)

// ParseStringList reads a TOML value that may be a string (possibly
// comma-separated) or a list of strings, as Alumet users write both
// (`metrics = "wattmetre_power_watt"` in the seed README, a list in Alumet's
// parser). Items are trimmed; empty ones are dropped. Plugins call it from
// their UnmarshalTOML methods.
func ParseStringList(v any) ([]string, error) {
	var items []string
	switch v := v.(type) {
	case string:
		items = strings.Split(v, ",")
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("expected a string or a list of strings, got a list holding %T", e)
			}
			items = append(items, strings.Split(s, ",")...)
		}
	default:
		return nil, fmt.Errorf("expected a string or a list of strings, got %T", v)
	}
	out := []string{}
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}
