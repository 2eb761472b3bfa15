package kwollectinput

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect"
)

// Chunk sizing: the catalogue period, and the fastest one (optional_period,
// a monitor job) for series no query has answered yet.
func TestCatalogPeriods(t *testing.T) {
	watt, bmc, ondemand := "wattmetre_power_watt", "bmc_node_power_watt", "prom_node_load1"
	full := &catalog{byCluster: map[string][]kwollect.MetricInfo{
		"taurus": {{Name: watt, Period: time.Second, OptionalPeriod: 20 * time.Millisecond}, {Name: bmc, Period: 5 * time.Second}, {Name: ondemand, OptionalPeriod: time.Second}},
		"gros":   {{Name: watt, Period: time.Second, OptionalPeriod: 10 * time.Millisecond}},
	}}
	metrics := []string{watt, bmc, ondemand}
	tests := []struct {
		name        string
		c           *catalog
		periods     map[string]time.Duration
		fastPeriods map[string]time.Duration
	}{
		{"catalogue", full,
			map[string]time.Duration{watt: time.Second, bmc: 5 * time.Second, ondemand: time.Second},
			map[string]time.Duration{watt: 10 * time.Millisecond, bmc: 5 * time.Second, ondemand: time.Second}},
		{"no catalogue", nil, map[string]time.Duration{}, map[string]time.Duration{watt: 20 * time.Millisecond}},
		{"catalogue unreadable", &catalog{byCluster: map[string][]kwollect.MetricInfo{}}, map[string]time.Duration{}, map[string]time.Duration{watt: 20 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.periods, tt.c.periods(metrics))
			require.Equal(t, tt.fastPeriods, tt.c.fastPeriods(metrics))
		})
	}
}
