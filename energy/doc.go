// Package energy integrates power series (W) into energy (J) over an exact
// time window, the way the samples were measured, and says how much of the
// result rests on real data.
//
// # Reconstruction
//
// A series is turned into a power signal f(t) defined at every instant,
// then f is integrated exactly over the window [start, end] (nanosecond
// edges, so partial intervals at the edges are clipped, never dropped and
// never counted twice). Samples are sorted by time (they may be added in
// any order); NaN/±Inf values are dropped and the time they would have
// covered is missing data; of equal timestamps the last added wins. P is
// Options.Period, or the median gap between consecutive samples when 0.
//
// StepAverage (Kwollect's 1 Hz wattmetre rows: the mean of the second's raw
// frames, stamped at the start of the second). Sample i covers
// [t_i, e_i) with e_i = min(t_i + P, t_{i+1}) and f = w_i there: its energy
// in the window is w_i × |[t_i, e_i) ∩ [start, end]|. Between e_i and
// t_{i+1} (a hole: missing rows) f goes linearly from w_i to w_{i+1}.
//
// Trapezoid (raw 50/100 Hz wattmetre frames, BMC and PDU readings:
// instantaneous values). f is linear between consecutive samples; an edge
// that falls between two samples gets the interpolated value, and only the
// clipped part of that interval counts.
//
// Both methods: before the first sample (before t_0) and after the last one
// (after e_{n-1} for StepAverage, after t_{n-1} for Trapezoid), f is the
// nearest sample's value (constant extrapolation). Since f is one fixed
// function, energy is additive over adjacent windows:
// E[a, c] = E[a, b] + E[b, c].
//
// Counter and IntervalMean (energy counters: Prometheus' *_joules_total, a
// BMC's watt-hour counter, rapl_consumed_energy's per-poll joules). Each
// reading interval (t_{i-1}, t_i] holds a known energy (the difference of
// two Counter readings, wrap-corrected with Options.Wrap, or an
// IntervalMean's power times the interval), spread evenly over it: f is that energy over the interval's
// length, so a window takes the clipped share of the intervals it cuts and
// all of those inside it, however long. What is bridged: the edges (f
// extrapolated from the nearest interval), an interval over which the
// Counter went down with no wrap to explain it (a reset: its energy is the
// new reading, a lower bound), and the cut part of an interval longer than
// GapFactor × P (its energy is known only for the whole interval).
//
// # Gaps, coverage, bridged share
//
// Missing data is bridged (interpolated or extrapolated as above; its
// energy is part of Energy) and its length counts in Bridged:
//
//   - StepAverage: every hole [e_i, t_{i+1}), and the edge stretches.
//   - Trapezoid: every interval [t_i, t_{i+1}] longer than GapFactor × P
//     (a shorter one is the method itself, not missing data), and the edge
//     stretches.
//
// A bridged stretch is listed in Gaps (clipped to the window) when it is
// longer than GapFactor × P (default 2 × P): for an interior hole its whole
// length counts, even when the window cuts it; for an edge stretch only its
// part inside the window does. Shorter holes (1.5 P, timestamp jitter) are
// bridged and counted in Bridged, but not listed. Coverage = 1 − Bridged
// is the share of the window covered by real data, computed on integer
// nanoseconds (50 s missing out of 60 gives exactly 50/60).
//
// # Uncertainty
//
// Uncertainty is a bound (not a standard deviation) on the error of Energy:
//
//	U = R × D + Σ_bridged ( ½ |w_a − w_b| × L + 0.05 × |E_b| )
//
// where R is Options.Resolution (W), D the window duration (s), and for
// each bridged stretch (clipped to the window) L is its clipped length (s),
// w_a, w_b the values of the samples it bridges (equal for an edge
// extrapolation) and E_b its bridged energy (J). R × D is systematic: a
// reading off by one resolution step is off for every sample, so it does
// not average out over the window. ½ |w_a − w_b| × L is the area between
// the bridge line and a step at either end (what an unknown signal bounded
// by its two neighbours may do), and 5 % of E_b covers excursions beyond
// them. The terms are added linearly, not in quadrature: both are
// worst-case bounds rather than independent random errors with known
// standard deviations, so only the sum is still a bound. The sum is also
// additive over adjacent windows (for non-negative power), like Energy.
//
// # Other fields
//
// Mean = Energy / Duration. Peak is the maximum of f over the window: the
// sample values that count in it and the values at the two edges
// (interpolated or extrapolated). Samples counts the samples that
// contributed real data (see Result.Samples).
//
// An Integrator holds 16 bytes per sample and sorts at most once per batch
// of out-of-order additions; Result then costs O(log n + k) for a window
// holding k samples.
package energy
