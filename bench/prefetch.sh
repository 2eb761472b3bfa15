#!/usr/bin/env bash
# bench/prefetch.sh [SECONDS] [AGENT_BINARY...]
#
# The prefetch of issue 11: one monitored node (taurus-1, 50 Hz frames)
# over a long window (default 21,600 s = 6 h, 1.08 M rows), fetched by
# `alumet-agent fetch` (csv output) from the Kwollect emulator with the
# server's work emulated (--statement-work --statement-rows-per-second
# 200000: a 250,000-row chunk costs 1.25 s before its first byte, as
# PostgreSQL builds the result first). One run per agent binary given
# (default bin/alumet-agent, built by make build): compare a build before
# and after the prefetch.
#
# Prints a Markdown table: wall time, rows, peak RSS, metrics queries, the
# most metrics GETs in flight at once (the emulator's max_in_flight), and
# the checks (every row once and in time order in the CSV, exit code 0).
#
# Needs: go, make, python3, GNU time at /usr/bin/time. Files go to
# bench/.data/prefetch/ (gitignored).
set -euo pipefail

secs=${1:-21600}
case $secs in
-h | --help) sed -n '2,18p' "$0"; exit 0 ;;
'' | *[!0-9]*) echo "prefetch.sh: want a number of seconds, not '$secs'" >&2; exit 1 ;;
esac
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/bench/.data/prefetch
mkdir -p "$out"
[ -x /usr/bin/time ] || { echo "prefetch.sh: GNU time is needed at /usr/bin/time" >&2; exit 1; }
make -C "$root" --no-print-directory build >&2
agents=("$@")
[ ${#agents[@]} -gt 0 ] || agents=("$root/bin/alumet-agent")
end=$(($(date +%s) - 600)) # a past window: no tail to wait for
start=$((end - secs))

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

printf '### prefetch.sh: %d s of taurus-1 at 50 Hz, server work 200,000 rows/s (emulator)\n\n' "$secs"
printf 'Machine: %s CPUs, %s; load average before: %s\n\n' "$(nproc)" "$(go env GOVERSION)" "$(cut -d' ' -f1-3 /proc/loadavg)"
echo '| agent | wall (s) | rows | peak RSS (MB) | metrics queries | max in flight | out of order | repeated | exit |'
echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|'
fail=0
i=0
for agent in "${agents[@]}"; do
	i=$((i + 1))
	emu_start "$out/emu-$i" --monitor taurus-1 --statement-work --statement-rows-per-second 200000
	cat >"$out/alumet-config.toml" <<EOF
[plugins.kwollect-input]
site = "lyon"
hostname = "taurus-1"
metrics = "wattmetre_power_watt"
api_url = "$url/stable"
preflight = false

[plugins.csv]
output_path = "$out/run-$i.csv"
EOF
	timed "run-$i" "$agent" --config "$out/alumet-config.toml" --no-default-config \
		--plugins csv,kwollect-input fetch --from "$start" --to "$end"
	gets=$(stat metrics_get)
	inflight=$(stat max_in_flight)
	emu_stop
	read -r rows _ disorder dups < <(python3 "$root/bench/csvorder.py" "$out/run-$i.csv")
	printf '| %s | %s | %d | %s | %d | %d | %d | %d | %d |\n' \
		"$agent" "$wall" "$rows" "$rss" "$gets" "$inflight" "$disorder" "$dups" "$code"
	want=$((secs * 50))
	if [ "$code" -ne 0 ] || [ "$disorder" -ne 0 ] || [ "$dups" -ne 0 ] ||
		[ "$rows" -lt $((want * 99 / 100)) ] || [ "$rows" -gt $((want * 101 / 100)) ]; then
		echo "FAILED: $agent (see $out/run-$i.err)" >&2
		fail=1
	fi
	rm -f "$out/run-$i.csv"
done
exit $fail
