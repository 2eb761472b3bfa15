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

emu_pid=
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

stat() { # stat URL TOKEN FIELD
	python3 - "$1" "$2" "$3" <<'EOF'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/_emulator/stats", headers={"Authorization": "Bearer " + sys.argv[2]})
print(json.load(urllib.request.urlopen(req))[sys.argv[3]])
EOF
}

# checks.py CSV ERR: rows, series in order, duplicates, progress monotonic.
cat >"$out/checks.py" <<'EOF'
import re, sys
csv, err = sys.argv[1], sys.argv[2]
last, rows, disorder, dups = {}, 0, 0, 0
with open(csv) as f:
    next(f)
    for line in f:
        c = line.split(";", 3)
        if c[0] != "wattmetre_power_watt_W":
            continue  # energy-report's totals
        key = c[0] + ";" + c[3]
        ts = c[1]  # RFC 3339 in UTC, fixed width but for the fraction: compare as times
        sec, _, frac = ts.rstrip("Z").partition(".")
        t = (sec, frac.ljust(9, "0"))
        p = last.get(key)
        if p is not None:
            if t < p:
                disorder += 1
            elif t == p:
                dups += 1
        last[key] = t
        rows += 1
pcts = [int(m) for m in re.findall(r"Kwollect: (\d+)%", open(err).read())]
back = sum(1 for a, b in zip(pcts, pcts[1:]) if b < a)
print(rows, len(last), disorder, dups, len(pcts), back)
EOF

printf '### longwindow.sh %s: %d s, 10 monitored nodes at 50 Hz (emulator)\n\n' "$size" "$secs"
printf 'Machine: %s CPUs, %s; load average before: %s\n\n' "$(nproc)" "$(go env GOVERSION)" "$(cut -d' ' -f1-3 /proc/loadavg)"
echo '| run | wall (s) | rows | rows/s | peak RSS (MB) | metrics queries | refused | series | out of order | repeated | progress lines (backwards) | exit |'
echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|'
fail=0
for run in uncapped timeout; do
	extra=()
	[ "$run" = timeout ] && extra=(--statement-timeout 5s --statement-rows-per-second 50000)
	"$root/bin/kwollect-emulator" --lag 0s --control "${monitor[@]}" "${extra[@]}" >"$out/emu-$run.out" 2>"$out/emu-$run.err" &
	emu_pid=$!
	for _ in $(seq 100); do grep -q listening "$out/emu-$run.out" 2>/dev/null && break; sleep 0.1; done
	line=$(head -1 "$out/emu-$run.out")
	url=$(sed -E 's/.*listening on (http:[^ ]*).*/\1/' <<<"$line")
	token=$(sed -E 's/.*control-token=([^ ]*).*/\1/' <<<"$line")
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
	set +e
	/usr/bin/time -v -o "$out/$run.time" "$root/bin/alumet-agent" --config "$out/alumet-config.toml" --no-default-config \
		--plugins csv,kwollect-input,energy-report fetch --from "$start" --to "$end" 2>"$out/$run.err"
	code=$?
	set -e
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s}' "$out/$run.time")
	rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$out/$run.time")
	gets=$(stat "$url" "$token" metrics_get)
	refused=$(($(stat "$url" "$token" statement_timeouts) + $(stat "$url" "$token" row_limit_errors)))
	kill "$emu_pid" 2>/dev/null; wait "$emu_pid" 2>/dev/null || true; emu_pid=
	read -r rows series disorder dups plines back < <(python3 "$out/checks.py" "$out/$run.csv" "$out/$run.err")
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
