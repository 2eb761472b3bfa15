"""csvorder.py CSV [ERR]: checks an alumet-agent CSV of wattmetre rows.

Prints: rows, series, rows out of time order within their series, repeated
rows; with ERR (the agent's stderr), also the number of progress lines and
how many went backwards. Used by longwindow.sh and prefetch.sh.
"""
import re
import sys

csv = sys.argv[1]
last, rows, disorder, dups = {}, 0, 0, 0
with open(csv) as f:
    next(f)
    for line in f:
        c = line.split(";", 3)
        if c[0] != "wattmetre_power_watt_W":
            continue  # energy-report's totals
        key = c[0] + ";" + c[3]
        # RFC 3339 in UTC, fixed width but for the fraction: compare as times
        sec, _, frac = c[1].rstrip("Z").partition(".")
        t = (sec, frac.ljust(9, "0"))
        p = last.get(key)
        if p is not None:
            if t < p:
                disorder += 1
            elif t == p:
                dups += 1
        last[key] = t
        rows += 1
out = [rows, len(last), disorder, dups]
if len(sys.argv) > 2:
    pcts = [int(m) for m in re.findall(r"Kwollect: (\d+)%", open(sys.argv[2]).read())]
    out += [len(pcts), sum(1 for a, b in zip(pcts, pcts[1:]) if b < a)]
print(*out)
