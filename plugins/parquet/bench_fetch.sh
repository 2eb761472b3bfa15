#!/usr/bin/env bash
# The agent binary's fetch of the reference workload (bench/compare.sh's
# 1,000,000 rows, 10 nodes at 50 Hz) with csv alone, then with csv and
# parquet: wall time, CPU time, peak RSS and file sizes, RUNS times each,
# alternating. Needs GNU time and the files bench/compare.sh reference
# generates (bench/.data/reference.json and .meta; DATA=dir to read them
# elsewhere).
#
#   plugins/parquet/bench_fetch.sh            # GOMAXPROCS=1, as compare.sh
#   PROCS=2 RUNS=5 plugins/parquet/bench_fetch.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${DATA:-$root/bench/.data}
runs=${RUNS:-3}
procs=${PROCS:-1}
meta=$data/reference.meta
[ -f "$meta" ] || { echo "no $meta: run bench/compare.sh reference first (or set DATA)" >&2; exit 1; }
. "$meta"
work=$(mktemp -d)
trap 'kill "$srv" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/" ./cmd/alumet-agent ./bench/cmd/kwserve)
"$work/kwserve" -file "$data/reference.json" -site "$site" -period "$((1000 / hz))ms" -log "$work/q.log" >"$work/kwserve.out" 2>"$work/kwserve.err" &
srv=$!
for _ in $(seq 100); do url=$(sed -n 's/^kwserve listening on //p' "$work/kwserve.out"); [ -n "$url" ] && break; sleep 0.05; done
[ -n "$url" ] || { echo "kwserve did not start: $(cat "$work/kwserve.err")" >&2; exit 1; }
cat >"$work/alumet-config.toml" <<TOML
[plugins.kwollect-input]
site = "$site"
hostname = "$nodes"
metrics = "$metric"
api_url = "$url"
row_budget = $((2 * rows))
preflight = false

[plugins.csv]
output_path = "$work/out.csv"

[plugins.parquet]
output_path = "$work/out.parquet"
TOML
echo "| outputs | wall s | CPU s | peak RSS MB | rows/s (wall) |"
echo "|---|---|---|---|---|"
for i in $(seq "$runs"); do
	for plugins in csv parquet csv,parquet; do
		rm -f "$work/out.csv" "$work/out.parquet"
		GOMAXPROCS=$procs /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$work/alumet-agent" --config "$work/alumet-config.toml" \
			--no-default-config --plugins "$plugins,kwollect-input" fetch --from "$from" --to "$to" 2>"$work/agent.err" ||
			{ cat "$work/agent.err" >&2; exit 1; }
		read -r wall user sys rss <"$work/time"
		awk -v p="$plugins" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v n="$rows" \
			'BEGIN { printf "| %s | %.2f | %.2f | %.1f | %.2f M |\n", p, w, u + s, r / 1024, n / w / 1e6 }'
	done
done
ls -l "$work/out.csv" "$work/out.parquet" | awk '{ printf "%s: %.1f MB\n", $NF, $5 / 1e6 }'
