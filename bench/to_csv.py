#!/usr/bin/env python3
"""Kwollect metrics → Alumet CSV, the way users script it.

Python 3 standard library only: urllib fetches the whole response, json.load
parses it into memory, then the rows are written out. The output is the
CSV of `alumet-agent --plugins csv,kwollect-input fetch` with the seed's
config (csv defaults: `;` delimiter, unit appended to the metric name), byte
for byte, with the columns the agent writes (metric_id and the labels become
columns). Python's csv module is not used: it does not quote a lone CR, the
agent (RFC 4180) does.

    metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;metric_id;__late_attributes
    wattmetre_power_watt_W;2025-07-22T11:05:26.000468Z;88.9;device_id;taurus-3;device_origin;wattmetre1-port2;wattmetre_power_watt;

usage: to_csv.py URL OUT.csv [--user LOGIN] (password from $G5K_PASSWORD)
  URL: https://api.grid5000.fr/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=…&end_time=…
"""
import argparse
import base64
import json
import math
import os
import re
import sys
import urllib.request
from datetime import datetime, timezone
from decimal import Decimal

FIXED = ["metric", "timestamp", "value", "resource_kind", "resource_id", "consumer_kind", "consumer_id"]
LATE = "__late_attributes"
RESERVED = set(FIXED) | {LATE}  # attributes named so always go to the late cell

# Display names of the unit words of Kwollect power metrics (the agent
# derives the unit from the last word of the name, or the one before _total).
UNITS = {"watt": "W", "kilowatt": "kW", "watthour": "Wh", "celsius": "°C",
         "percent": "%", "volt": "V", "amp": "A", "ampere": "A", "bytes": "B"}


def metric_cell(metric):
    parts = metric.split("_")
    word = parts[-1]
    if len(parts) >= 3 and word == "total":
        word = parts[-2]
    unit = UNITS.get(word, word)
    return metric + "_" + unit if unit else metric


_FRACTION = re.compile(r"\.(\d+)")


def timestamp_cell(s):
    """Kwollect's Europe/Paris time → RFC 3339 UTC, trailing zeros of the
    fraction removed, no fraction when it is zero."""
    if sys.version_info < (3, 11):  # fromisoformat wants 3 or 6 digits there
        s = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], s, count=1)
    t = datetime.fromisoformat(s).astimezone(timezone.utc)
    out = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        out += (".%06d" % t.microsecond).rstrip("0")
    return out + "Z"


def value_cell(v):
    """A float64 as the agent writes it: shortest exact form, no exponent,
    no trailing .0; NaN, inf, -inf."""
    f = float(v)  # also "NaN", "Infinity", "-Infinity"
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    r = repr(f)
    if "e" in r:
        r = format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r


def text(v):
    """An attribute's text: strings as they are, other JSON values compact."""
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def attributes(row):
    """The point's attributes as the agent builds them: metric_id, then every
    label but _device_orig."""
    attrs = {"metric_id": row["metric_id"]}
    for k, v in (row.get("labels") or {}).items():
        if k != "_device_orig":
            attrs[k] = text(v)
    return attrs


def late_cell(pairs):
    return ",".join(k + "=" + v.replace(",", "\\,") for k, v in sorted(pairs.items()))


def cell(s):
    """RFC 4180: a cell holding ; " CR or LF is quoted, inner quotes doubled."""
    if ";" in s or '"' in s or "\n" in s or "\r" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def fetch(url, user):
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    if user:
        token = base64.b64encode((user + ":" + os.environ.get("G5K_PASSWORD", "")).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("out")
    ap.add_argument("--user", help="Grid'5000 login (password from $G5K_PASSWORD)")
    a = ap.parse_args()

    rows = fetch(a.url, a.user)
    kept = [r for r in rows if r["value"] is not None]  # null: as_rate only
    # The agent takes the attribute columns from its first batch of rows; the
    # keys of the whole response are the same for a homogeneous response.
    columns = sorted({k for r in kept for k in attributes(r) if k not in RESERVED})
    with open(a.out, "w", newline="", encoding="utf-8") as f:
        def writerow(cells):
            f.write(";".join(cell(c) for c in cells) + "\n")

        if kept:  # no header for an empty response, as the agent
            writerow(FIXED + columns + [LATE])
        for r in kept:
            orig = (r.get("labels") or {}).get("_device_orig")
            if orig is None:
                consumer = ["local_machine", ""]
            else:
                consumer = ["device_origin", orig if isinstance(orig, str) else ",".join(orig)]
            attrs = attributes(r)
            cells = [attrs.pop(k, "") for k in columns]
            # what is left has no column (names of fixed columns): late cell
            writerow([metric_cell(r["metric_id"]), timestamp_cell(r["timestamp"]), value_cell(r["value"]),
                      "device_id", r["device_id"], *consumer, *cells, late_cell(attrs)])
    print(f"to_csv.py: {len(rows)} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
