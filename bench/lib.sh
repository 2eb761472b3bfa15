# bench/lib.sh: helpers shared by the emulator benchmarks (longwindow.sh,
# prefetch.sh). Source it after setting root; it sets an EXIT trap.

emu_pid=
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

# emu_start OUT ARGS...: starts the emulator (with --lag 0s --control and
# ARGS), its stdout and stderr in OUT.out and OUT.err; sets emu_pid, url
# (http://127.0.0.1:PORT) and token (the control token).
emu_start() {
	local out=$1
	shift
	"$root/bin/kwollect-emulator" --lag 0s --control "$@" >"$out.out" 2>"$out.err" &
	emu_pid=$!
	for _ in $(seq 100); do grep -q listening "$out.out" 2>/dev/null && break; sleep 0.1; done
	local line
	line=$(head -1 "$out.out")
	url=$(sed -E 's/.*listening on (http:[^ ]*).*/\1/' <<<"$line")
	token=$(sed -E 's/.*control-token=([^ ]*).*/\1/' <<<"$line")
}

# emu_stop: stops the emulator emu_start started.
emu_stop() { kill "$emu_pid" 2>/dev/null; wait "$emu_pid" 2>/dev/null || true; emu_pid=; }

# stat FIELD: one counter of the emulator's /_emulator/stats.
stat() {
	python3 - "$url" "$token" "$1" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/_emulator/stats", headers={"Authorization": "Bearer " + sys.argv[2]})
print(json.load(urllib.request.urlopen(req))[sys.argv[3]])
PY
}

# timed NAME CMD...: runs CMD under GNU time (TIME file $out/NAME.time,
# stderr $out/NAME.err); sets code, wall (s) and rss (MB).
timed() {
	local name=$1
	shift
	set +e
	/usr/bin/time -v -o "$out/$name.time" "$@" 2>"$out/$name.err"
	code=$?
	set -e
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s}' "$out/$name.time")
	rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$out/$name.time")
}
