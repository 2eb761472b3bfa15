#!/usr/bin/env bash
# bench/longwindow.sh [hour|day|SECONDS]
#
# A long window of 50 Hz wattmeter frames, as a `-t monitor` job gives: 10
# monitored taurus nodes of the Kwollect emulator, fetched by
# `alumet-agent fetch` with csv and energy-report, twice:
#
#   uncapped   the emulator answers any query
#   timeout    Kwollect's statement timeout, emulated: a query over 250,000
#              rows is refused after 5 s (--statement-timeout 5s
#              --statement-rows-per-second 50000)
#
#   hour       3,600 s, 1.8 M rows (about 30 s in all)
#   day        86,400 s, 43 M rows and a 5.4 GB CSV per run (several minutes;
#              the emulator's generation, 0.4-0.6 M rows/s, is the bottleneck)
#
# Prints a Markdown table: wall time, rows, rows/s, peak RSS, metrics
# queries, refusals, and the checks: every row once and every series in
# time order in the CSV, the progress lines (stderr is a file: an INFO line
# every 10 s) never going backwards, exit code 0.
#
# Needs: go, make, python3, GNU time at /usr/bin/time. Files go to
# bench/.data/longwindow-<size>/ (gitignored).
set -euo pipefail

size=${1:-hour}
case $size in
hour) secs=3600 ;;
day) secs=86400 ;;
'' | *[!0-9]*)
	[ "$size" = -h ] || [ "$size" = --help ] && { sed -n '2,23p' "$0"; exit 0; }
	echo "longwindow.sh: unknown size '$size': want hour, day or a number of seconds" >&2
	exit 1
	;;
*) secs=$size ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/bench/.data/longwindow-$size
mkdir -p "$out"
[ -x /usr/bin/time ] || { echo "longwindow.sh: GNU time is needed at /usr/bin/time" >&2; exit 1; }
make -C "$root" --no-print-directory build >&2

nodes=()
for i in $(seq 1 10); do nodes+=("taurus-$i"); done
monitor=()
for n in "${nodes[@]}"; do monitor+=(--monitor "$n"); done
# A past window: no tail to wait for, the emulator generates it on demand.
end=$(($(date +%s) - 600))
start=$((end - secs))

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

printf '### longwindow.sh %s: %d s, 10 monitored nodes at 50 Hz (emulator)\n\n' "$size" "$secs"
printf 'Machine: %s CPUs, %s; load average before: %s\n\n' "$(nproc)" "$(go env GOVERSION)" "$(cut -d' ' -f1-3 /proc/loadavg)"
echo '| run | wall (s) | rows | rows/s | peak RSS (MB) | metrics queries | refused | series | out of order | repeated | progress lines (backwards) | exit |'
echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|'
fail=0
for run in uncapped timeout; do
	extra=()
	[ "$run" = timeout ] && extra=(--statement-timeout 5s --statement-rows-per-second 50000)
	emu_start "$out/emu-$run" "${monitor[@]}" "${extra[@]}"
	cat >"$out/alumet-config.toml" <<EOF
[plugins.kwollect-input]
site = "lyon"
hostname = "$(IFS=,; echo "${nodes[*]}")"
metrics = "wattmetre_power_watt"
api_url = "$url/stable"
preflight = false

[plugins.csv]
output_path = "$out/$run.csv"

[plugins.energy-report]
summary_file = "$out/$run-energy.json"
plot_file = "$out/$run-power.png"
EOF
	timed "$run" "$root/bin/alumet-agent" --config "$out/alumet-config.toml" --no-default-config \
		--plugins csv,kwollect-input,energy-report fetch --from "$start" --to "$end"
	gets=$(stat metrics_get)
	refused=$(($(stat statement_timeouts) + $(stat row_limit_errors)))
	emu_stop
	read -r rows series disorder dups plines back < <(python3 "$root/bench/csvorder.py" "$out/$run.csv" "$out/$run.err")
	rate=$(python3 -c "print(round($rows / $wall))")
	printf '| %s | %s | %d | %d | %s | %d | %d | %d | %d | %d | %d (%d) | %d |\n' \
		"$run" "$wall" "$rows" "$rate" "$rss" "$gets" "$refused" "$series" "$disorder" "$dups" "$plines" "$back" "$code"
	want=$((secs * 50 * 10))
	if [ "$code" -ne 0 ] || [ "$disorder" -ne 0 ] || [ "$dups" -ne 0 ] || [ "$back" -ne 0 ] || [ "$series" -ne 10 ] ||
		[ "$rows" -lt $((want * 99 / 100)) ] || [ "$rows" -gt $((want * 101 / 100)) ]; then
		echo "FAILED: $run (see $out/$run.err)" >&2
		fail=1
	fi
	[ -n "${KEEP_CSV:-}" ] || rm -f "$out/$run.csv" # 125 bytes a row: 5.4 GB for a day
done
exit $fail
