package kwollect

import (
	"sort"
	"time"
)

// Times inside the fetch engine are Unix microseconds (int64): Kwollect
// stores microseconds, and integer bounds make the inclusive chunk
// arithmetic ([a, b-1µs]) exact.

func usOf(t time.Time) int64 { return t.UnixMicro() } // floor: Nanosecond() >= 0

// ceilUS is the first microsecond at or after t.
func ceilUS(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

func timeOf(us int64) time.Time { return time.UnixMicro(us).UTC() }

// span is an inclusive interval of microseconds.
type span struct{ lo, hi int64 }

func (s span) dur() time.Duration { return time.Duration(s.hi-s.lo+1) * time.Microsecond }

// spanSet is a sorted list of disjoint, non-adjacent spans.
type spanSet []span

// add inserts [lo, hi], merging with overlapping or adjacent spans.
func (s *spanSet) add(lo, hi int64) { s.addNear(lo, hi, 1) }

// addNear inserts [lo, hi], merging with the spans at most gap away (1:
// adjacent ones). The spans of samples (pair.data) merge across gaps too
// short to be missing data, so that successive polls of run mode extend
// one span instead of adding one each.
func (s *spanSet) addNear(lo, hi, gap int64) {
	if hi < lo {
		return
	}
	ss := *s
	// First span that could touch [lo, hi]: hi+gap >= lo.
	i := sort.Search(len(ss), func(i int) bool { return ss[i].hi+gap >= lo })
	j := i
	for j < len(ss) && ss[j].lo <= hi+gap {
		lo = min(lo, ss[j].lo)
		hi = max(hi, ss[j].hi)
		j++
	}
	if i == j {
		ss = append(ss, span{})
		copy(ss[i+1:], ss[i:])
		ss[i] = span{lo, hi}
	} else {
		ss[i] = span{lo, hi}
		ss = append(ss[:i+1], ss[j:]...)
	}
	*s = ss
}

// contains reports whether t is covered.
func (s spanSet) contains(t int64) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i].hi >= t })
	return i < len(s) && s[i].lo <= t
}

// clip returns a copy of the parts of s inside [lo, hi].
func (s spanSet) clip(lo, hi int64) []span {
	var out []span
	for _, sp := range s {
		if sp.hi < lo || sp.lo > hi {
			continue
		}
		out = append(out, span{max(sp.lo, lo), min(sp.hi, hi)})
	}
	return out
}

// missing returns the parts of [lo, hi] that s does not cover.
func (s spanSet) missing(lo, hi int64) []span {
	var out []span
	cur := lo
	for _, sp := range s {
		if sp.hi < cur {
			continue
		}
		if sp.lo > hi {
			break
		}
		if sp.lo > cur {
			out = append(out, span{cur, sp.lo - 1})
		}
		cur = sp.hi + 1
		if cur > hi {
			return out
		}
	}
	if cur <= hi {
		out = append(out, span{cur, hi})
	}
	return out
}

// firstGap returns the first microsecond at or after lo that s does not
// cover.
func (s spanSet) firstGap(lo int64) int64 {
	i := sort.Search(len(s), func(i int) bool { return s[i].hi >= lo })
	if i < len(s) && s[i].lo <= lo {
		return s[i].hi + 1
	}
	return lo
}
