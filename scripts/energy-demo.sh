#!/usr/bin/env bash
# make energy-demo: the energy report of a command with phases, run three
# times, against the emulator: the table on stderr, the JSON summary, the
# plot and the CSV in demo-out/energy/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
. "$root/scripts/lib.sh"
out="$root/demo-out/energy"
rm -rf "$out" && mkdir -p "$out"

# taurus-7's power follows this machine's CPU load; taurus-8 is another node of the job.
start_emulator "$out" --lag 2s --cpu-load-node taurus-7

cat >"$out/alumet-config.toml" <<TOML
[plugins.kwollect-input]
site = "lyon"
nodes = ["taurus-7", "taurus-8"]
metrics = "wattmetre_power_watt"
api_url = "$url/stable"

[plugins.csv]
output_path = "measurements.csv"

[plugins.energy-report]
summary_file = "energy.json"
plot_file = "power.png"
baseline = "before:30s"
phases = true
TOML

# The measured command: idle, then every core busy, then a lighter phase,
# each announced on stdout.
nproc=$(getconf _NPROCESSORS_ONLN)
cat >"$out/bench" <<SH
#!/bin/sh
echo "ALUMET_PHASE setup"; sleep 3
echo "ALUMET_PHASE compute"
for i in \$(seq $nproc); do timeout 6 sh -c 'while :; do :; done' & done; wait
echo "ALUMET_PHASE write"
timeout 3 sh -c 'while :; do :; done' || true
SH
chmod +x "$out/bench"

cd "$out"
echo "alumet-agent --plugins csv,kwollect-input,energy-report exec --repeat 3 --cooldown-max 60s -- ./bench"
"$bin/alumet-agent" --plugins csv,kwollect-input,energy-report exec --repeat 3 --cooldown-max 60s -- ./bench \
  >bench.stdout 2>agent.log
sed -n '/^Energy report/,/^\[/p' agent.log | grep -v '^\[' >table.txt
cat table.txt
echo
echo "Files in $out: energy.json, power.png, measurements.csv, agent.log"
