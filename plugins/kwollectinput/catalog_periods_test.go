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

// A Prometheus metric is not in the catalogue by name: the group that
// collects it says when it has data.
func TestAbsentPrometheusGroups(t *testing.T) {
	c := &catalog{byCluster: map[string][]kwollect.MetricInfo{
		"orion": {
			{Name: "prom_default_metrics", Source: []byte(`{"protocol":"prometheus","id":["node_load1","node_rapl_package_joules_total"],"port":9100}`)},
			{Name: "prom_all", Period: 15 * time.Second, Source: []byte(`{"protocol":"prometheus","id":["node_boot_time_seconds"]}`)},
			{Name: "wattmetre_power_watt", Period: time.Second, Source: []byte(`{"protocol":"wattmetre"}`)},
		},
	}}
	for _, tc := range []struct{ metric, want string }{
		{"prom_node_load1", "on-demand metric: the catalogue's Prometheus group prom_default_metrics collects it only during an OAR job of type monitor (oarsub -t monitor='prom_default_metrics')"},
		{"prom_node_boot_time_seconds", "the catalogue's Prometheus group prom_all collects it every 15s: the node's exporter may be down"},
		{"prom_node_nosuch", "no Prometheus group of the catalogue of cluster orion collects it: only a custom exporter would give it"},
		{"bmc_nosuch", "cluster orion has no metric bmc_nosuch in its catalogue"},
	} {
		reason, ok := c.absent("orion-4", tc.metric)
		require.True(t, ok, tc.metric)
		require.Equal(t, tc.want, reason)
	}
	_, ok := c.absent("orion-4", "wattmetre_power_watt")
	require.False(t, ok)
}
