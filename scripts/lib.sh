# Sourced by the demo scripts.

# start_emulator OUT ARG...: starts "$bin/kwollect-emulator" with ARG... on
# loopback, its stdout and log in OUT, stops it when the script exits, and
# sets url to its base URL (fails when it does not start).
start_emulator() {
	local out=$1
	shift
	"$bin/kwollect-emulator" --listen 127.0.0.1:0 "$@" >"$out/emulator.stdout" 2>"$out/emulator.log" &
	emu=$!
	trap 'kill $emu 2>/dev/null || true' EXIT
	url=
	for _ in $(seq 100); do
		url=$(sed -n 's/^kwollect-emulator listening on \([^ ]*\).*/\1/p' "$out/emulator.stdout")
		[ -n "$url" ] && break
		sleep 0.1
	done
	[ -n "$url" ] || { echo "the emulator did not start:"; cat "$out/emulator.log"; exit 1; }
}
