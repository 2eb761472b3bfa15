#!/usr/bin/env bash
# make demo: start the Kwollect emulator on loopback, then measure two commands
# with the seed README's command line and summarise the CSV files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
. "$root/scripts/lib.sh"
out="$root/demo-out"
rm -rf "$out" && mkdir -p "$out"

# taurus-7's power follows this machine's CPU load, so a busy command draws more.
start_emulator "$out" --lag 2s --cpu-load-node taurus-7 --user demo:demo-secret
echo "Kwollect emulator: $url/stable (lag 2 s, taurus-7 follows this machine's CPU load)"

# The seed's configuration, word for word, plus api_url; the password comes from the environment.
cat >"$out/alumet-config.toml" <<TOML
[plugins.kwollect-input]
site = "lyon"                     # Grid'5000 site
hostname = "taurus-7"             # Target node hostname
metrics = "wattmetre_power_watt"  # Metric to collect, DO NOT CHANGE IT
login = "demo"                    # Your Grid'5000 username
password = "\${G5K_PASSWORD}"      # Your Grid'5000 password, from the environment
api_url = "$url/stable"           # the local emulator instead of https://api.grid5000.fr/stable
TOML
export G5K_PASSWORD=demo-secret

summary() { # file: rows, window, mean power, energy of the 1 Hz means (each covers one second)
  awk -F';' 'NR>1 && $1=="wattmetre_power_watt_W" {n++; s+=$3; if(!first) first=$2; last=$2}
    END {if(n==0){print "  no rows"; exit 1}; printf "  %d rows from %s to %s, mean %.1f W, energy %.0f J\n", n, first, last, s/n, s}' "$1"
}

cd "$out"
nproc=$(getconf _NPROCESSORS_ONLN)
echo
echo "== 1. idle: alumet-agent --output-file measurements-kwollect.csv --plugins csv,kwollect-input exec -- sleep 4"
"$bin/alumet-agent" --output-file "measurements-kwollect.csv" --plugins csv,kwollect-input exec -- sleep 4 2>agent-idle.log
echo "== 2. busy: the same with a CPU-bound command ($nproc busy loops for 4 s)"
"$bin/alumet-agent" --output-file "measurements-busy.csv" --plugins csv,kwollect-input exec -- \
  sh -c "for i in \$(seq $nproc); do timeout 4 sh -c 'while :; do :; done' & done; wait" 2>agent-busy.log
echo
echo "The agent's log (idle run):"
grep -E 'API request|Child process|EndConsumer|rows fetched' agent-idle.log | sed 's/^/  /'
echo
echo "CSV written: $out/measurements-kwollect.csv"
head -4 measurements-kwollect.csv | sed 's/^/  /'
echo
echo "Summary:"
echo " idle ($out/measurements-kwollect.csv):"; summary measurements-kwollect.csv
echo " busy ($out/measurements-busy.csv):";     summary measurements-busy.csv
