package config

import "strings"

// EditDistance is the optimal string alignment distance between a and b
// (Levenshtein plus transpositions of adjacent characters), on runes.
func EditDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// minPartLen is the shortest name that is suggested by inclusion.
const minPartLen = 3

// suggest returns the candidates near name: those at the smallest edit
// distance if it is small enough (1 for short names, 2 from 6 characters),
// else those that
// contain name or that name contains (e.g. "kwollect" → "kwollect-input",
// "kwollect-output"; "flush" → "force_flush"), in the candidates' order.
func suggest(name string, candidates []string) []string {
	// The allowed distance grows with the length of the last dotted part:
	// 1 up to 5 characters ("csb" → "csv", not "port" → "host"), then 2.
	leaf := name[strings.LastIndex(name, ".")+1:]
	maxDist := min(2, max(1, len([]rune(leaf))/3))
	best := maxDist + 1
	var near, parts []string
	for _, c := range candidates {
		if c == name {
			continue
		}
		if d := EditDistance(name, c); d <= maxDist && d <= best {
			if d < best {
				best, near = d, nil
			}
			near = append(near, c)
		}
		if len(name) >= minPartLen && len(c) >= minPartLen && (strings.Contains(c, name) || strings.Contains(name, c)) {
			parts = append(parts, c)
		}
	}
	if len(near) > 0 {
		return near
	}
	return parts
}

// orList writes "'a'", "'a' or 'b'", "'a', 'b' or 'c'".
func orList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = "'" + s + "'"
	}
	if len(quoted) <= 1 {
		return strings.Join(quoted, "")
	}
	return strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
}
