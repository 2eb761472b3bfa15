# Kwollect metrics response -> Alumet CSV, as `alumet-agent --plugins
# csv,kwollect-input fetch` writes it with the seed's config (see
# bench/README.md for the few cases where jq cannot match the agent).
#
#   curl -sS --fail "$URL" | jq -r -f bench/to_csv.jq > out.csv
#   # without curl:
#   python3 -c 'import shutil,sys,urllib.request as u; shutil.copyfileobj(u.urlopen(sys.argv[1]), sys.stdout.buffer)' "$URL" | jq -r -f bench/to_csv.jq > out.csv
#
# jq reads the whole array into memory, like json.load.

# The unit's display name from the metric name (last word, or the one
# before _total): wattmetre_power_watt -> W.
def unit:
  split("_") as $p
  | (if ($p | length) >= 3 and $p[-1] == "total" then $p[-2] else $p[-1] end) as $w
  | {"watt": "W", "kilowatt": "kW", "watthour": "Wh", "celsius": "°C", "percent": "%",
     "volt": "V", "amp": "A", "ampere": "A", "bytes": "B"}[$w] // $w;

# "2025-07-22T13:05:26.0412+02:00" -> "2025-07-22T11:05:26.0412Z": the
# offset is whole minutes, so the fraction is copied; trailing zeros go.
def utc:
  length as $n
  | .[$n-6:] as $off
  | (.[19:$n-6] | until(. == "" or (endswith("0") | not); .[:-1]) | if . == "." then "" else . end) as $frac
  | ((.[0:19] + "Z") | fromdateiso8601)
    - ({"+01:00": 3600, "+02:00": 7200}[$off]  # Paris; any other offset the long way
       // (($off[1:3] | tonumber) * 3600 + ($off[4:6] | tonumber) * 60) * (if $off[0:1] == "-" then -1 else 1 end))
  | todateiso8601
  | .[0:19] + $frac + "Z";

# jq prints numbers in shortest round-trip form, like the agent, except
# below 1e-5 and from 1e17 on, where it uses an exponent (1e-05, 1e+17).
def value:
  if type == "number" then tostring
  elif . == "Infinity" then "inf"
  elif . == "-Infinity" then "-inf"
  else tostring end;

# RFC 4180 quoting of a cell holding ; " CR or LF (contains is much faster
# than index or test in jq 1.6).
def esc:
  if contains(";") or contains("\"") or contains("\n") or contains("\r")
  then "\"" + (split("\"") | join("\"\"")) + "\""
  else . end;

def late:
  to_entries | sort_by(.key)
  | map(.key + "=" + (.value | split(",") | join("\\,")))
  | join(",");

# Attributes named like a fixed column always go to the late cell.
def reserved:
  . as $k | ["metric", "timestamp", "value", "resource_kind", "resource_id", "consumer_kind", "consumer_id", "__late_attributes"] | index([$k]) != null;

# A row's attributes as the agent builds them: metric_id, then every label
# but _device_orig (non-string values as compact JSON).
def attributes:
  {"metric_id": .metric_id} + ((.labels // {}) | del(._device_orig) | map_values(if type == "string" then . else tojson end));

# The agent takes the attribute columns from its first batch of rows; the
# keys of the whole response are the same for a homogeneous response.
map(select(.value != null))
| if length == 0 then empty else
  ([.[] | .labels // {} | keys[] | select(. != "_device_orig" and (reserved | not))] + ["metric_id"] | unique) as $cols
  | ("metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;" + ($cols | map(esc) | join(";")) + ";__late_attributes"),
    (.[]
     | (.labels // {}) as $l
     | (if $l._device_orig == null then "local_machine;"
        else "device_origin;" + ($l._device_orig | if type == "array" then join(",") else . end | esc) end) as $consumer
     | (if $cols == ["metric_id"] then (.metric_id | esc) + ";"  # the usual case, fast
        else attributes as $a | ($cols | map($a[.] // "" | esc) | join(";")) + ";"
             + ($a | with_entries(select(.key | reserved)) | late | esc)
        end) as $attrs
     | "\(.metric_id | unit as $u | if $u == "" then . else . + "_" + $u end | esc);\(.timestamp | utc);\(.value | value);device_id;\(.device_id | esc);\($consumer);\($attrs)")
  end
