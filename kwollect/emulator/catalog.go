package emulator

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// referenceJSON is a verbatim excerpt of the reference API: the metric
// catalogue of lyon/taurus (first 7 entries) and nancy/gros (last 2 entries).
//
//go:embed catalog/reference_taurus_gros.json
var referenceJSON []byte

// referenceCatalogues returns the taurus and gros catalogues. The taurus one
// is the reference excerpt as is; the gros one is the excerpt's two gros
// entries (wattmetre with only_for, PDU) plus BMC, Prometheus and network
// entries in the same style.
func referenceCatalogues() (taurus, gros []MetricDesc) {
	var all []MetricDesc
	if err := json.Unmarshal(referenceJSON, &all); err != nil || len(all) != 9 {
		panic(fmt.Sprintf("emulator: bad embedded catalogue (%d entries): %v", len(all), err))
	}
	taurus = append([]MetricDesc(nil), all[:7]...)
	gros = append(gros, bmcSNMP(5000)...)
	gros = append(gros, all[7], all[8])
	gros = append(gros, promDefault(), networkIn())
	return taurus, gros
}

var wattV2 = []MetricDesc{{
	Description: "Power consumption of node reported by wattmetre, in watt", Name: "wattmetre_power_watt",
	OptionalPeriod: 20, Period: 1000, Source: MetricSource{Protocol: "wattmetre"},
}}

var wattV3 = []MetricDesc{{
	Description: "Power consumption of node reported by wattmetre, in watt", Name: "wattmetre_power_watt",
	OptionalPeriod: 10, Period: 1000, Source: MetricSource{Protocol: "wattmetre"},
}}

// bmcSNMP returns the BMC power metrics of a Dell-like node whose power
// reading has the given default period (0 = only in monitor jobs).
func bmcSNMP(period int) []MetricDesc {
	power := MetricDesc{
		Description: "Power consumption of node reported by BMC, in watt", Name: "bmc_node_power_watt",
		Period: period, Source: MetricSource{ID: "1.3.6.1.4.1.674.10892.5.4.600.30.1.6.1.{{ 1.3.6.1.4.1.674.10892.5.4.600.30.1.8.1 == System Board Pwr Consumption }}", Protocol: "snmp"},
	}
	if period == 0 {
		power.OptionalPeriod = 5000
	}
	return []MetricDesc{power, {
		Description: "Cumulated power consumption of node reported by BMC, in watt-hour", Name: "bmc_node_power_watthour_total",
		OptionalPeriod: 5000, Period: 0, Source: MetricSource{ID: "1.3.6.1.4.1.674.10892.5.4.600.60.1.7.1.1", Protocol: "snmp"},
	}, {
		Description: "Temperature of CPU 1 reported by BMC, in celsius", Labels: map[string]string{"cpu": "1"}, Name: "bmc_cpu_temp_celsius",
		OptionalPeriod: 5000, Period: 0, ScaleFactor: 0.1, Source: MetricSource{ID: "1.3.6.1.4.1.674.10892.5.4.700.20.1.6.1.3", Protocol: "snmp"},
	}, {
		Description: "Temperature of CPU 2 reported by BMC, in celsius", Labels: map[string]string{"cpu": "2"}, Name: "bmc_cpu_temp_celsius",
		OptionalPeriod: 5000, Period: 0, ScaleFactor: 0.1, Source: MetricSource{ID: "1.3.6.1.4.1.674.10892.5.4.700.20.1.6.1.4", Protocol: "snmp"},
	}}
}

// bmcRedfish returns the BMC power metric of a node read through Redfish.
func bmcRedfish() []MetricDesc {
	return []MetricDesc{{
		Description: "Power consumption of node reported by BMC, in watt", Name: "bmc_node_power_watt",
		Period: 5000, Source: MetricSource{ID: "/redfish/v1/Chassis/1/Power#/PowerControl/0/PowerConsumedWatts", Protocol: "https"},
	}}
}

// promDefault is the node_exporter default group of the clusters whose
// catalogue the emulator makes up: the reference group plus the RAPL
// counters (an emulator extension, see rapl.go).
func promDefault() MetricDesc {
	return MetricDesc{
		Description: "Default subset of metrics from Prometheus Node Exporter", Name: "prom_default_metrics",
		OptionalPeriod: 15000, Period: 0,
		Source: MetricSource{ID: []string{"node_boot_time_seconds", "node_cpu_scaling_frequency_hertz", "node_cpu_seconds_total", "node_filesystem_free_bytes", "node_filesystem_size_bytes", "node_load1", "node_load15", "node_load5", "node_memory_Buffers_bytes", "node_memory_Cached_bytes", "node_memory_MemAvailable_bytes", "node_memory_MemFree_bytes", "node_memory_MemTotal_bytes", "node_memory_Shmem_bytes", "node_memory_SwapFree_bytes", "node_memory_SwapTotal_bytes", "node_network_receive_bytes_total", "node_network_receive_packets_total", "node_network_transmit_bytes_total", "node_network_transmit_packets_total", "node_procs_blocked", "node_procs_running", "node_rapl_dram_joules_total", "node_rapl_package_joules_total", "kwollect_custom"}, Port: 9100, Protocol: "prometheus"},
	}
}

func dcgmGroup() MetricDesc {
	return MetricDesc{
		Description: "Default subset of metrics from Nvidia DCGM Exporter", Name: "prom_nvgpu_default_metrics",
		OptionalPeriod: 15000, Period: 0,
		Source: MetricSource{ID: []string{"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE"}, Port: 9400, Protocol: "prometheus"},
	}
}

func networkIn() MetricDesc {
	return MetricDesc{
		Description: "Input byte counter for the network device port", Labels: map[string]string{"interface": "eth0"},
		Name: "network_ifacein_bytes_total", Period: 10000, Source: MetricSource{Protocol: "network_equipment"},
	}
}

// stdCatalogue concatenates catalogue parts and adds the Prometheus default
// group and the network input counter every cluster has.
func stdCatalogue(parts ...[]MetricDesc) []MetricDesc {
	var out []MetricDesc
	for _, p := range parts {
		out = append(out, p...)
	}
	return append(out, promDefault(), networkIn())
}
