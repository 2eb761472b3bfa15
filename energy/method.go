package energy

import (
	"fmt"
	"strconv"
	"time"
)

// Method says what a sample is, hence how a series is integrated.
type Method int

const (
	// StepAverage: each sample is the mean power over [t, t+period)
	// (Kwollect's 1 Hz wattmetre rows, stamped at the start of their second).
	// The power is constant over each sample's interval.
	StepAverage Method = iota
	// Trapezoid: each sample is an instantaneous reading (raw 50/100 Hz
	// wattmetre frames, BMC, PDU): the power is linear between samples.
	Trapezoid
	// Counter: each sample is the reading of a cumulative energy counter,
	// in joules (Prometheus' *_joules_total, a BMC's watt-hour counter
	// converted to J). The energy between two readings is their
	// difference, spread evenly between them; a decrease is a wrap when
	// Options.Wrap says where the counter wraps (and the last reading is
	// below it), otherwise a reset to zero (the energy is the new reading,
	// as Prometheus' increase() counts it), which is bridged.
	Counter
	// IntervalMean: each sample is the mean power (W) over the interval
	// that ends at its timestamp, since the previous sample: what the
	// differences of an energy counter give (energy-report derives them
	// from Prometheus' *_joules_total, a BMC's watt-hour counter and
	// rapl_consumed_energy's per-poll joules). The first sample's interval
	// is one period long.
	IntervalMean
)

// WattmetreMetric is the Kwollect metric of the OmegaWatt wattmetres.
const WattmetreMetric = "wattmetre_power_watt"

// MethodFor picks the method from what a series' samples are:
// wattmetre_power_watt with a period of 1 s or more is Kwollect's per-second
// mean (StepAverage); raw wattmetre frames (10/20 ms), BMC, PDU and
// everything else are instantaneous readings (Trapezoid).
func MethodFor(metric string, period time.Duration) Method {
	if metric == WattmetreMetric && period >= time.Second {
		return StepAverage
	}
	return Trapezoid
}

// ResolutionFor is a default meter resolution for a metric, for
// Options.Resolution: 0.1 W for the wattmetres (values with one or two
// decimals), 1 W for the rest (BMC and PDU readings are integer watts).
func ResolutionFor(metric string) Watts {
	if metric == WattmetreMetric {
		return 0.1
	}
	return 1
}

// OptionsFor is the default Options of a (metric, period) series: the
// method from MethodFor, the resolution from ResolutionFor, gaps at 2 periods.
func OptionsFor(metric string, period time.Duration) Options {
	return Options{
		Method:     MethodFor(metric, period),
		Period:     period,
		GapFactor:  DefaultGapFactor,
		Resolution: ResolutionFor(metric),
	}
}

// String is a short name: "step-average", "trapezoid".
func (m Method) String() string {
	switch m {
	case StepAverage:
		return "step-average"
	case Trapezoid:
		return "trapezoid"
	case Counter:
		return "counter"
	case IntervalMean:
		return "interval-mean"
	}
	return "Method(" + strconv.Itoa(int(m)) + ")"
}

// Describe is the human text of the method for reports, e.g.
// "step integration of 1 s averages (each sample covers [t, t+1s))" or
// "trapezoidal integration of instantaneous samples".
func (m Method) Describe(period time.Duration) string {
	switch m {
	case StepAverage:
		if period <= 0 {
			return "step integration of per-period averages (each sample covers [t, t+period))"
		}
		return fmt.Sprintf("step integration of %s averages (each sample covers [t, t+%s))",
			periodText(period), period)
	case Trapezoid:
		return "trapezoidal integration of instantaneous samples"
	case Counter:
		return fmt.Sprintf("differences of an energy counter read every %s (wraps and resets corrected)", periodText(period))
	case IntervalMean:
		return fmt.Sprintf("step integration of the mean power between energy counter readings every %s (each covers the interval that ends at its timestamp)", periodText(period))
	}
	return m.String()
}

// periodText writes a period with a space before its unit: "1 s", "20 ms", "1.5 s".
func periodText(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + " s"
	case d < time.Second && d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + " ms"
	case d < time.Millisecond && d%time.Microsecond == 0:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + " µs"
	case d < time.Second:
		return strconv.FormatFloat(d.Seconds()*1e3, 'g', -1, 64) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'g', -1, 64) + " s"
}
