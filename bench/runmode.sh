#!/usr/bin/env bash
# bench/runmode.sh [NODES] [SECONDS]: alumet-agent in run mode polling NODES
# synthetic nodes (1 Hz wattmetres, bench/cmd/bigemu) for SECONDS, with the
# csv output and energy-report; reports the agent's CPU (user+sys from
# /proc, over the steady state after the first poll) as a share of one core,
# its peak RSS, and checks the CSV has every node. Target (issue 5): less
# than one core for 1,000 nodes.
set -euo pipefail
nodes=${1:-1000}
secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/bench/.data/runmode
mkdir -p "$work" && rm -f "$work"/*
cd "$root"
go build -o "$work/bigemu" ./bench/cmd/bigemu
go build -o "$work/alumet-agent" ./cmd/alumet-agent

"$work/bigemu" -nodes "$nodes" >"$work/emu.out" 2>"$work/emu.err" &
emu=$!
agent=
cleanup() { kill "$emu" 2>/dev/null || true; [ -n "$agent" ] && kill "$agent" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do
	url=$(sed -n 's/^bigemu listening on //p' "$work/emu.out")
	[ -n "$url" ] && break
	sleep 0.1
done
[ -n "${url:-}" ] || { echo "bigemu did not start"; cat "$work/emu.err"; exit 1; }

list=$(seq 1 "$nodes" | sed 's/^/"big-/; s/$/"/' | paste -sd, -)
cat >"$work/alumet-config.toml" <<TOML
[plugins.kwollect-input]
site = "lyon"
nodes = [$list]
metrics = "wattmetre_power_watt"
api_url = "$url/stable"
poll_interval = "10s"

[plugins.csv]
output_path = "$work/run.csv"

[plugins.energy-report]
summary_file = "$work/energy.json"
plot_file = ""
table = false
TOML

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
"$work/alumet-agent" --config "$work/alumet-config.toml" run >"$work/agent.out" 2>"$work/agent.err" &
agent=$!
sleep 12 # the first poll (the agent's start to now) is not the steady state
c0=$(cpu "$agent"); t0=$(date +%s.%N)
sleep "$secs"
c1=$(cpu "$agent"); t1=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$agent/status")
kill -TERM "$agent"
wait "$agent" || true
agent=
rows=$(($(wc -l <"$work/run.csv") - 1))
seen=$(awk -F';' 'NR>1 && $1=="wattmetre_power_watt_W" {print $5}' "$work/run.csv" | sort -u | wc -l)
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v rss="$rss" -v n="$nodes" -v rows="$rows" -v seen="$seen" 'BEGIN {
	cpu = (c1 - c0) / hz; wall = t1 - t0
	printf "run mode, %d nodes at 1 Hz, poll every 10 s, csv + energy-report\n", n
	printf "agent CPU %.2f s over %.0f s of steady state: %.2f %% of one core; peak RSS %.1f MB\n", cpu, wall, 100 * cpu / wall, rss / 1024
	printf "CSV: %d rows, %d of %d nodes\n", rows, seen, n
	exit (seen == n ? 0 : 1)
}'
