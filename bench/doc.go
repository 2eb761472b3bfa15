// Package bench holds the end-to-end benchmarks of alumet-agent (fetch,
// decode and CSV formatting in process) and the tools of the comparison
// with what users would use instead (compare.sh): kwgen generates realistic
// Kwollect responses, kwserve serves them, to_csv.py and to_csv.jq convert
// them as users script it. See README.md.
package bench
