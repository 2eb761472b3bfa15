package prometheusexporter

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"abc", "abc"},
		{"123avc", "_23avc"}, // Alumet's own cases
		{"cpu_percent_%", "cpu_percent__"},
		{"wattmetre_power_watt_alumet", "wattmetre_power_watt_alumet"},
		{"a.b-c:d", "a_b_c_d"}, // ':' is valid in Prometheus but not kept by Alumet
		{"_x", "_x"},
		{"9", "_"},
		{"énergie", "_nergie"}, // one '_' per code point, not per byte
		{"température°C", "temp_rature_C"},
		{"a\xffb", "a_b"}, // an invalid byte is one character
		{"A Z", "A_Z"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, Sanitize(tt.in))
		})
	}
}

func TestUnitWord(t *testing.T) {
	tests := []struct {
		unit measure.Unit
		want string
	}{
		{measure.Plain(measure.Watt), "watts"},
		{measure.Plain(measure.Joule), "joules"},
		{measure.Unit{Prefix: measure.Micro, Base: measure.Joule}, "microjoules"},
		{measure.Unit{Prefix: measure.Milli, Base: measure.Second}, "milliseconds"},
		{measure.Unit{Prefix: measure.Kilo, Base: measure.Byte}, "kilobytes"},
		{measure.Unit{Prefix: measure.Nano, Base: measure.WattHour}, "nanowatt_hours"},
		{measure.Plain(measure.WattHour), "watt_hours"},
		{measure.Plain(measure.Percent), "ratio"},
		{measure.Plain(measure.Celsius), "celsius"},
		{measure.Plain(measure.Fahrenheit), "fahrenheit"},
		{measure.Plain(measure.Volt), "volts"},
		{measure.Plain(measure.Ampere), "amperes"},
		{measure.Plain(measure.Hertz), "hertz"},
		{measure.Plain(measure.Unity), ""},
		{measure.Custom("g_CO2"), "g_CO2"},
		{measure.Custom("V.A"), "V_A"},
		{measure.UnitFromKwollectMetric("wattmetre_power_watt"), "watts"},
		{measure.UnitFromKwollectMetric("bmc_node_power_watthour_total"), "watt_hours"},
		{measure.UnitFromKwollectMetric("network_ifacein_packets_total"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.unit.UniqueName(), func(t *testing.T) {
			require.Equal(t, tt.want, UnitWord(tt.unit))
		})
	}
}

func TestMetricName(t *testing.T) {
	tests := []struct {
		prefix, name, suffix string
		unit                 measure.Unit
		want                 string
	}{
		{"", "wattmetre_power_watt", "_alumet", measure.Plain(measure.Watt), "wattmetre_power_watt_alumet_watts"},
		{"", "carbon_emission", "_alumet", measure.Custom("g_CO2"), "carbon_emission_alumet_g_CO2"},
		{"g5k.", "rapl_consumed_energy", "", measure.Plain(measure.Joule), "g5k_rapl_consumed_energy_joules"},
		{"", "network_ifacein_packets_total", "_alumet", measure.Plain(measure.Unity), "network_ifacein_packets_total_alumet"},
		{"", "1st-metric", "", measure.Plain(measure.Percent), "_st_metric_ratio"},
		{"", "prom_node_load1", "_alumet", measure.UnitFromKwollectMetric("prom_node_load1"), "prom_node_load1_alumet_load1"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, MetricName(tt.prefix, tt.name, tt.suffix, tt.unit))
		})
	}
}

func TestAttributeLabel(t *testing.T) {
	tests := []struct{ key, want string }{
		{"metric_id", "metric_id"},
		{"domain", "domain"},
		{"cpu.state", "cpu_state"},
		{"resource_kind", "alumet_attribute__resource_kind"},
		{"resource-id", "alumet_attribute__resource_id"},
		{"resource_consumer_kind", "alumet_attribute__resource_consumer_kind"},
		{"resource_consumer_id", "alumet_attribute__resource_consumer_id"},
		{"__name__", "alumet_attribute__name__"},
		{"__late", "alumet_attribute__late"},
		{"_x", "_x"},
		{"", "alumet_attribute__"},
		{"1", "_"},
		{"__", "alumet_attribute__"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			require.Equal(t, tt.want, AttributeLabel(tt.key))
		})
	}
}

func TestEscaping(t *testing.T) {
	tests := []struct{ in, label, helpOM, helpText string }{
		{"plain", "plain", "plain", "plain"},
		{`a"b`, `a\"b`, `a\"b`, `a"b`},
		{`a\b`, `a\\b`, `a\\b`, `a\\b`},
		{"a\nb", `a\nb`, `a\nb`, `a\nb`},
		{"tab\tcr\r", "tab\tcr\r", "tab\tcr\r", "tab\tcr\r"},
		{"bad\xffutf8", "bad\uFFFDutf8", "bad\uFFFDutf8", "bad\uFFFDutf8"},
		{"°C", "°C", "°C", "°C"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.label, string(appendLabelValue(nil, tt.in)))
			require.Equal(t, tt.helpOM, string(appendHelp(nil, tt.in, true)))
			require.Equal(t, tt.helpText, string(appendHelp(nil, tt.in, false)))
		})
	}
}

func TestNegotiateOpenMetrics(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"", true},
		{"*/*", true},
		// Prometheus 2.42's scrape Accept header.
		{"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", true},
		{"text/plain", false},
		{"text/plain;version=0.0.4", false},
		{"text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5", false},
		{"text/plain;q=0.5,application/openmetrics-text;q=0.9", true},
		{"text/plain, application/openmetrics-text", true}, // a tie: Alumet's format
		{"text/*", true},
		{"application/json", true},
		{"garbage;;", true},
		{"application/openmetrics-text;q=0, text/plain;q=0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			require.Equal(t, tt.want, NegotiateOpenMetrics(tt.accept))
		})
	}
}

func TestAppendTimestamp(t *testing.T) {
	tests := []struct {
		ns       int64
		om, text string
	}{
		{1795556357000000000, "1795556357", "1795556357000"},
		{1795556357020000000, "1795556357.02", "1795556357020"},
		{1795556357123456789, "1795556357.123456789", "1795556357123"},
		{0, "0", "0"},
		{-1, "-0.000000001", "-1"},
		{-1500000000, "-1.5", "-1500"},
		{-1 << 63, "-9223372036.854775808", "-9223372036855"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.om, string(appendTimestamp(nil, tt.ns, true)))
		require.Equal(t, tt.text, string(appendTimestamp(nil, tt.ns, false)))
	}
}
