#!/usr/bin/env bash
# make compare-demo: one node's energy by every source Kwollect has for it
# (wattmetre, BMC power and watt-hour counter, node_exporter's RAPL
# counters), side by side, against the emulator: the comparison table on
# stderr, the JSON summary, the plot (one panel per node) and the CSV in
# demo-out/compare/. On a real node, add the rapl plugin to get RAPL read
# by the node itself next to Kwollect's (see the README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
. "$root/scripts/lib.sh"
out="$root/demo-out/compare"
rm -rf "$out" && mkdir -p "$out"

# orion-3 is monitored (50 Hz wattmetre frames, the BMC's counter, the
# Prometheus metrics) and its power follows this machine's CPU load.
start_emulator "$out" --lag 2s --monitor orion-3 --cpu-load-node orion-3

cat >"$out/alumet-config.toml" <<TOML
[plugins.kwollect-input]
site = "lyon"
hostname = "orion-3"
metrics = ["wattmetre_power_watt", "bmc_node_power_watt", "bmc_node_power_watthour_total",
           "prom_node_rapl_package_joules_total", "prom_node_rapl_dram_joules_total"]
api_url = "$url/stable"

[plugins.csv]
output_path = "measurements.csv"

[plugins.energy-report]
summary_file = "energy.json"
plot_file = "power.png"

[plugins.energy-to-carbon]
mode = "country"

[plugins.energy-to-carbon.country]
code = "FRA"
TOML

# The measured command: 20 s idle, 40 s with every core busy, 20 s idle
# (node_exporter's counters are read every 15 s: a window of minutes).
nproc=$(getconf _NPROCESSORS_ONLN)
cat >"$out/bench" <<SH
#!/bin/sh
sleep 20
for i in \$(seq $nproc); do timeout 40 sh -c 'while :; do :; done' & done; wait
sleep 20
SH
chmod +x "$out/bench"

cd "$out"
echo "alumet-agent --plugins csv,kwollect-input,energy-report,energy-to-carbon exec -- ./bench   (80 s)"
"$bin/alumet-agent" --plugins csv,kwollect-input,energy-report,energy-to-carbon exec -- ./bench \
  >bench.stdout 2>agent.log
sed -n '/^Energy report/,/^\[/p' agent.log | grep -v '^\[' >table.txt
cat table.txt
echo
echo "Files in $out: energy.json, power.png, measurements.csv, agent.log"
