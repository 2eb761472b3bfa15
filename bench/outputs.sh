#!/usr/bin/env bash
# bench/outputs.sh [RUNS]: what each output adds to `alumet-agent fetch` of the
# reference workload (bench/compare.sh's 1,000,000 rows, served by kwserve),
# against csv alone: wall time and CPU (user+sys) medians of RUNS rounds
# (default 5; each output once a round), peak RSS. Push outputs send to
# bench/cmd/discard, a receiver that reads and drops every body, so the
# figures are the agent's own cost, not a server's ingestion; the
# prometheus-exporter listens on 127.0.0.1 port 0, unscraped (its cost is
# keeping each series' last value). The agent runs
# with GOMAXPROCS=1 on CPU 0, the servers on CPU 1 (AGENT_PROCS=2: the agent
# on both CPUs, unpinned). The output files are removed before each run
# (OVERWRITE=1: kept, and replaced). kwollect-output is left out: it refuses
# kwollect-input's rows by design (it sends energy-report's totals, a few
# points).
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
data=$root/bench/.data
out=$data/outputs
mkdir -p "$out" "$data/bin"
[ -x /usr/bin/time ] || { echo "outputs.sh: GNU time is needed at /usr/bin/time" >&2; exit 1; }
make -C "$root" --no-print-directory build >&2
(cd "$root" && go build -o "$data/bin/" ./bench/cmd/kwgen ./bench/cmd/kwserve ./bench/cmd/discard)
file=$data/reference.json
[ -s "$file" ] || "$data/bin/kwgen" -rows 1000000 -nodes 10 -hz 50 -seed 1 -o "$file" -meta "$data/reference.meta" >&2
pin=() srvpin=()
if [ "${AGENT_PROCS:-1}" = 1 ] && command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null && [ "$(nproc)" -ge 2 ]; then pin=(taskset -c 0) srvpin=(taskset -c 1); fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
start() { # start NAME CMD...: sets started_url
	local name=$1
	shift
	"${srvpin[@]}" "$@" >"$out/$name.out" 2>"$out/$name.err" &
	pids+=($!)
	for _ in $(seq 100); do
		started_url=$(sed -n 's/^.* listening on \(http[^ ]*\).*/\1/p' "$out/$name.out")
		[ -n "$started_url" ] && return
		sleep 0.05
	done
	echo "outputs.sh: $name did not start: $(cat "$out/$name.err")" >&2
	exit 1
}
start kwserve "$data/bin/kwserve" -file "$file" -site lyon -period 20ms
kw=$started_url
start discard "$data/bin/discard"
sink=$started_url

base="[plugins.kwollect-input]
site = \"lyon\"
hostname = \"taurus-1,taurus-2,taurus-3,taurus-4,taurus-5,taurus-6,taurus-7,taurus-8,taurus-9,taurus-10\"
metrics = \"wattmetre_power_watt\"
api_url = \"$kw\"
row_budget = 2001000
preflight = false

[plugins.csv]
output_path = \"$out/out.csv\"
"
declare -A extra=(
	[csv]=""
	[jsonl]="[plugins.jsonl]
output_path = \"$out/out.jsonl\"
force_flush = false"
	[parquet]="[plugins.parquet]
output_path = \"$out/out.parquet\""
	[prometheus-remote-write]="[plugins.prometheus-remote-write]
url = \"$sink/api/v1/write\""
	[opentelemetry]="[plugins.opentelemetry]
collector_host = \"$sink\"
protocol = \"http/protobuf\""
	[opentelemetry+none]="[plugins.opentelemetry]
collector_host = \"$sink\"
protocol = \"http/protobuf\"
compression = \"none\""
	[prometheus-exporter]="[plugins.prometheus-exporter]
host = \"127.0.0.1\"
port = 0"
	[influxdb]="[plugins.influxdb]
host = \"$sink\"
token = \"t\"
org = \"o\"
bucket = \"b\""
)
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
outputs=(csv jsonl parquet prometheus-exporter prometheus-remote-write opentelemetry opentelemetry+none influxdb)
printf '### outputs.sh: fetch of 1,000,000 rows (173 MB), csv plus one output, median of %d interleaved runs, GOMAXPROCS=%s\n\n' "$runs" "${AGENT_PROCS:-1}"
printf 'Machine: %s CPUs, %s; load average before: %s\n\n' "$(nproc)" "$(go env GOVERSION)" "$(cut -d' ' -f1-3 /proc/loadavg)"
# A name with "+" is a variant of the output before it (its config differs).
for o in "${outputs[@]}"; do printf '%s\n\n%s\n' "$base" "${extra[$o]}" >"$out/$o.toml"; done
declare -A walls cpus rss
# Round after round, each output once: a drift of the machine (another
# process, the page cache) weighs on every output alike instead of on the
# ones measured while it lasted.
for _ in $(seq "$runs"); do
	for o in "${outputs[@]}"; do
		plugins=csv,kwollect-input
		[ "$o" = csv ] || plugins=csv,${o%%+*},kwollect-input
		# A fresh output path per run, as a new experiment has (OVERWRITE=1 keeps
		# the previous run's files: the kernel then frees their page cache when the
		# outputs truncate them, ~0.3 ms per MB on this machine, in the timing).
		[ "${OVERWRITE:-0}" = 1 ] || rm -f "$out"/out.*
		t0=$(date +%s%N)
		if ! /usr/bin/time -f '%U %S %M' -o "$out/$o.time" env GOMAXPROCS="${AGENT_PROCS:-1}" "${pin[@]}" "$root/bin/alumet-agent" --config "$out/$o.toml" \
			--no-default-config --plugins "$plugins" fetch --from 1753182326 --to 1753184326 2>"$out/$o.err"; then
			echo "outputs.sh: $o failed: $(tail -5 "$out/$o.err")" >&2
			exit 1
		fi
		t1=$(date +%s%N)
		walls[$o]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') "
		read -r u s m <"$out/$o.time"
		cpus[$o]+="$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') "
		rss[$o]=$(awk -v a="${rss[$o]:-0}" -v b="$m" 'BEGIN { print (b > a ? b : a) }')
	done
done
echo '| outputs | wall (s) | CPU (s) | peak RSS (MB) | wall vs csv | CPU vs csv |'
echo '|---|---:|---:|---:|---:|---:|'
csv_wall= csv_cpu=
for o in "${outputs[@]}"; do
	wall=$(printf '%s\n' ${walls[$o]} | median)
	cpu=$(printf '%s\n' ${cpus[$o]} | median)
	[ "$o" = csv ] && csv_wall=$wall csv_cpu=$cpu
	printf '| %s | %s | %s | %.1f | %+.0f %% | %+.0f %% |\n' "$([ "$o" = csv ] && echo csv || echo "csv + $o")" "$wall" "$cpu" \
		"$(awk -v m="${rss[$o]}" 'BEGIN { print m / 1024 }')" \
		"$(awk -v a="$wall" -v b="$csv_wall" 'BEGIN { print (a / b - 1) * 100 }')" "$(awk -v a="$cpu" -v b="$csv_cpu" 'BEGIN { print (a / b - 1) * 100 }')"
done
