#!/usr/bin/env bash
# bench/compare.sh [small|reference|1GB|edge]
#
# Compares `alumet-agent fetch` with what users would write instead (Python's
# json.load, a jq one-liner) on the same Kwollect response, served from disk
# by bench/cmd/kwserve on 127.0.0.1:
#
#   small      100,000 rows, 10 nodes at 50 Hz (about 17 MB, a few seconds)
#   reference  1,000,000 rows, 10 nodes at 50 Hz (about 173 MB)
#   1GB        about 1 GB (5.8 M rows); Python and jq are skipped unless
#              ALL_TOOLS=1: they hold the whole response in memory
#   edge       bench/testdata/edge.json (NaN, labels, odd numbers): no timing,
#              only the differences of the three CSV files
#
# Prints a Markdown table on stdout: wall time, rows/s, peak RSS and the
# ratios to alumet-agent (the agent's median of AGENT_RUNS runs, default 5),
# then the checks: the agent made exactly one metrics
# query, every CSV has as many data rows as the file, the CSV files are equal.
# Each tool runs alone, pinned to CPU 0 (taskset) when possible, the agent with
# GOMAXPROCS=1; the server runs on CPU 1.
#
# Needs: go, make, python3, GNU time (/usr/bin/time -v), jq (else its row is
# skipped), curl (else the jq row reads the response through python3's urllib),
# taskset (optional). Generated files are cached in bench/.data/.
set -euo pipefail

mode=${1:-small}
root=$(cd "$(dirname "$0")/.." && pwd)
bench=$root/bench
data=$bench/.data
seed=1
nodes_n=10
hz=50

die() { echo "compare.sh: $*" >&2; exit 1; }

case $mode in
small) gen=(-rows 100000) ;;
reference) gen=(-rows 1000000) ;;
1GB) gen=(-size 1GB) ;;
edge) ;;
-h | --help) sed -n '2,25p' "$0"; exit 0 ;;
*) die "unknown size '$mode': want small, reference, 1GB or edge" ;;
esac

# --- tools -------------------------------------------------------------
missing=()
command -v go >/dev/null || missing+=("go (https://go.dev/dl/)")
command -v make >/dev/null || missing+=("make")
command -v python3 >/dev/null || missing+=("python3")
if ! [ -x /usr/bin/time ] || ! /usr/bin/time -v true >/dev/null 2>&1; then
	missing+=("GNU time at /usr/bin/time with -v, for the peak RSS (Debian/Ubuntu: apt-get install time)")
fi
if [ ${#missing[@]} -gt 0 ]; then
	printf 'compare.sh: missing: %s\n' "${missing[@]}" >&2
	exit 1
fi
have_jq=1
if ! command -v jq >/dev/null; then
	have_jq=0
	echo "compare.sh: jq not found: the jq row is skipped (Debian/Ubuntu: apt-get install jq)" >&2
fi
have_curl=1
command -v curl >/dev/null || have_curl=0
pin=()
srvpin=()
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then
	pin=(taskset -c 0)
	if [ "$(nproc)" -ge 2 ]; then srvpin=(taskset -c 1); fi
else
	echo "compare.sh: taskset not available: the tools are not pinned to one CPU" >&2
fi

mkdir -p "$data/bin"
if ! [ -x "$root/bin/alumet-agent" ]; then
	echo "compare.sh: building bin/ (make build)" >&2
	make -C "$root" --no-print-directory build >&2
fi
(cd "$root" && go build -o "$data/bin/" ./bench/cmd/kwgen ./bench/cmd/kwserve)

# --- the response ------------------------------------------------------
if [ "$mode" = edge ]; then
	file=$bench/testdata/edge.json
	rows=7 # 8 rows, one null value (skipped by every tool)
	from=1736931600 to=1736931606 site=lyon nodes=taurus-7 metric=wattmetre_power_watt,bmc_node_power_watt
	bytes=$(wc -c <"$file")
else
	file=$data/$mode.json
	meta=$data/$mode.meta
	if ! [ -s "$file" ] || ! [ -s "$meta" ]; then
		echo "compare.sh: generating $file" >&2
		"$data/bin/kwgen" "${gen[@]}" -nodes "$nodes_n" -hz "$hz" -seed "$seed" -o "$file" -meta "$meta"
	fi
	# shellcheck disable=SC1090
	. "$meta"
	metric=wattmetre_power_watt
fi

# --- the server --------------------------------------------------------
run=$data/run-$mode
rm -rf "$run"
mkdir -p "$run"
qlog=$run/queries.log
srv_pid=
cleanup() {
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
period=$(awk -v hz="$hz" 'BEGIN { printf "%dms", 1000 / hz }')
"${srvpin[@]}" "$data/bin/kwserve" -file "$file" -site "$site" -period "$period" -log "$qlog" >"$run/kwserve.out" 2>"$run/kwserve.err" &
srv_pid=$!
url=
for _ in $(seq 100); do
	url=$(sed -n 's/^kwserve listening on //p' "$run/kwserve.out")
	[ -n "$url" ] && break
	kill -0 "$srv_pid" 2>/dev/null || die "kwserve failed: $(cat "$run/kwserve.err")"
	sleep 0.05
done
[ -n "$url" ] || die "kwserve did not start"
query="$url/sites/$site/metrics?nodes=$nodes&metrics=$metric&start_time=$from&end_time=$to"

cat >"$run/alumet-config.toml" <<EOF
[plugins.kwollect-input]
site = "$site"
hostname = "$nodes"
metrics = "$metric"
api_url = "$url"
# enough for the whole file in one response: one query, as the other tools
row_budget = $((rows * 2 + 1000))
preflight = false

[plugins.csv]
output_path = "$run/alumet-agent.csv"
EOF

load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

# --- measurements ------------------------------------------------------
# measure NAME CMD...: runs CMD under GNU time; sets wall (s) and rss (MB).
measure() {
	local name=$1
	shift
	local t0 t1
	t0=$(date +%s%N)
	if ! /usr/bin/time -v -o "$run/$name.time" "$@" 2>"$run/$name.err"; then
		cat "$run/$name.err" >&2
		die "$name failed (log: $run/$name.err)"
	fi
	t1=$(date +%s%N)
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$run/$name.time")
}

tools=(alumet-agent python)
[ $have_jq = 1 ] && tools+=(jq)
if [ "$mode" = 1GB ] && [ "${ALL_TOOLS:-0}" != 1 ]; then
	tools=(alumet-agent)
	echo "compare.sh: 1GB: Python and jq skipped (json.load and jq hold the whole response: several GB of RAM, minutes); ALL_TOOLS=1 runs them" >&2
fi

declare -A W R Q
for tool in "${tools[@]}"; do
	: >"$qlog"
	out=$run/$tool.csv
	echo "compare.sh: running $tool" >&2
	case $tool in
	alumet-agent)
		# Under a second: run it AGENT_RUNS times (default 5) and report the
		# median, the spread on an info line (a shared machine varies by 2x).
		walls=()
		maxrss=0
		for _ in $(seq "${AGENT_RUNS:-5}"); do
			: >"$qlog"
			measure "$tool" env GOMAXPROCS=1 "${pin[@]}" "$root/bin/alumet-agent" --config "$run/alumet-config.toml" --no-default-config \
				--plugins csv,kwollect-input fetch --from "$from" --to "$to"
			walls+=("$wall")
			maxrss=$(awk -v a="$maxrss" -v b="$rss" 'BEGIN { print (b > a ? b : a) }')
		done
		wall=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')
		rss=$maxrss
		agent_walls=$(printf '%s\n' "${walls[@]}" | sort -n | paste -sd' ')
		;;
	python)
		measure "$tool" "${pin[@]}" python3 "$bench/to_csv.py" "$query" "$out"
		;;
	jq)
		if [ $have_curl = 1 ]; then
			measure "$tool" "${pin[@]}" sh -c 'curl -sS --fail "$1" | jq -r -f "$2" >"$3"' sh "$query" "$bench/to_csv.jq" "$out"
		else
			measure "$tool" "${pin[@]}" sh -c 'python3 -c "import shutil,sys,urllib.request as u; shutil.copyfileobj(u.urlopen(sys.argv[1]), sys.stdout.buffer)" "$1" | jq -r -f "$2" >"$3"' \
				sh "$query" "$bench/to_csv.jq" "$out"
		fi
		;;
	esac
	W[$tool]=$wall
	R[$tool]=$rss
	cp "$qlog" "$run/$tool.queries"
	Q[$tool]=$(grep -c ' metrics ' "$run/$tool.queries" || true)
done

# --- report ------------------------------------------------------------
fail=0
checks=()
data_rows() { if [ -s "$1" ]; then echo $(($(wc -l <"$1") - 1)); else echo 0; fi; }
for tool in "${tools[@]}"; do
	n=$(data_rows "$run/$tool.csv")
	if [ "$n" != "$rows" ]; then
		checks+=("FAIL $tool: $n data rows, the file has $rows")
		fail=1
	else
		checks+=("ok   $tool: $n data rows, as in the file")
	fi
	if [ "${Q[$tool]}" != 1 ]; then
		checks+=("FAIL $tool: ${Q[$tool]} metrics queries, want 1 (see $qlog)")
		fail=1
	fi
done
checks+=("info alumet-agent: ${AGENT_RUNS:-5} runs, wall (s) $agent_walls: the table has the median, the largest peak RSS")
checks+=("info alumet-agent queries: $(awk '{ print $2 }' "$run/alumet-agent.queries" | sort | uniq -c | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }') (log: $run/alumet-agent.queries)")
declare -A SAME
for tool in "${tools[@]}"; do
	[ "$tool" = alumet-agent ] && continue
	if cmp -s "$run/alumet-agent.csv" "$run/$tool.csv"; then
		SAME[$tool]="identical"
		checks+=("ok   $tool: CSV identical to alumet-agent's")
	else
		d=$(diff "$run/alumet-agent.csv" "$run/$tool.csv" | grep -c '^>' || true)
		SAME[$tool]="$d lines differ"
		checks+=("DIFF $tool: $d lines differ from alumet-agent's (diff $run/alumet-agent.csv $run/$tool.csv)")
		[ "$mode" = edge ] || fail=1
	fi
done
SAME[alumet-agent]="(reference)"

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
shape="$nodes_n nodes at $hz Hz"
[ "$mode" = edge ] && shape="$file"
echo "### compare.sh $mode: $rows rows, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB, $shape"
echo
echo "Machine: $(nproc) CPUs ($cpu), $(go version | awk '{ print $3 }'), $(python3 --version 2>&1)$([ $have_jq = 1 ] && echo ", $(jq --version)"); tools pinned to CPU 0: $([ ${#pin[@]} -gt 0 ] && echo yes || echo no); load average before: $load"
echo
echo "| tool | wall (s) | rows/s | peak RSS (MB) | wall vs agent | RSS vs agent | CSV |"
echo "|---|---:|---:|---:|---:|---:|---|"
for tool in "${tools[@]}"; do
	awk -v t="$tool" -v w="${W[$tool]}" -v r="${R[$tool]}" -v n="$rows" -v aw="${W[alumet-agent]}" -v ar="${R[alumet-agent]}" -v s="${SAME[$tool]}" \
		'BEGIN { printf "| %s | %.2f | %.0f | %.1f | %.1f× | %.1f× | %s |\n", t, w, n / w, r, w / aw, r / ar, s }'
done
echo
printf '%s\n' "${checks[@]}"
if [ "$mode" = edge ]; then
	for tool in "${tools[@]}"; do
		[ "$tool" = alumet-agent ] && continue
		echo
		echo "diff alumet-agent $tool:"
		diff "$run/alumet-agent.csv" "$run/$tool.csv" || true
	done
fi
exit $fail
