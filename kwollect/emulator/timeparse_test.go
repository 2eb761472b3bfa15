package emulator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func utc(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func TestParseBound(t *testing.T) {
	now := winterNow.UnixMicro()
	tests := []struct {
		in   string
		want int64
		code string // error code, "" = ok
	}{
		// float() branch: epoch seconds, µs precision, half to even beyond.
		{"1736931600", utc("2025-01-15T09:00:00Z"), ""},
		{"  1736931600.5  ", utc("2025-01-15T09:00:00.5Z"), ""},
		{"1736931600.123456", utc("2025-01-15T09:00:00.123456Z"), ""},
		{"1736931600.0000005", utc("2025-01-15T09:00:00Z"), ""},
		{"1736931600.0000015", utc("2025-01-15T09:00:00.000002Z"), ""},
		{"1736931600.00000051", utc("2025-01-15T09:00:00.000001Z"), ""},
		{"+1736931600.", utc("2025-01-15T09:00:00Z"), ""},
		{".5", 500000, ""},
		{"-1.5", -1500000, ""},
		{"1_736_931_600", utc("2025-01-15T09:00:00Z"), ""},
		{"1.7369316e9", utc("2025-01-15T09:00:00Z"), ""},
		{"0", 0, ""},
		{"inf", posInf, ""},
		{"-Infinity", negInf, ""},
		{"nan", 0, "22008"},
		{"1e300", 0, "22008"},
		{"99999999999999999999", 0, "22008"},
		{"0x10", 0, "22007"},
		{"1__0", 0, "22007"},
		// timestamptz branch, naive = Europe/Paris.
		{"2025-01-15T10:00", utc("2025-01-15T09:00:00Z"), ""},
		{"2025-01-15 10:00:00.5", utc("2025-01-15T09:00:00.5Z"), ""},
		{"2025-01-15t10:00:00", utc("2025-01-15T09:00:00Z"), ""},
		{"2025-01-15   10:00:00", utc("2025-01-15T09:00:00Z"), ""},
		{"2025-1-5 9:05", utc("2025-01-05T08:05:00Z"), ""},
		{"2025-01-15", utc("2025-01-14T23:00:00Z"), ""},
		{"2025-07-15", utc("2025-07-14T22:00:00Z"), ""},
		{"2025-07-15T10:00:00", utc("2025-07-15T08:00:00Z"), ""},
		{"2025-01-15T10:00:00.1234565", utc("2025-01-15T09:00:00.123456Z"), ""},
		{"2025-01-15T10:00:00.1234575", utc("2025-01-15T09:00:00.123458Z"), ""},
		{"2025-01-15T10:00:00.9999996", utc("2025-01-15T09:00:01Z"), ""},
		{"2025-01-15T10:00:00Z", utc("2025-01-15T10:00:00Z"), ""},
		{"2025-01-15T10:00:00z", utc("2025-01-15T10:00:00Z"), ""},
		{"2025-01-15T10:00:00+01:00", utc("2025-01-15T09:00:00Z"), ""},
		{"2025-01-15T10:00:00+0130", utc("2025-01-15T08:30:00Z"), ""},
		{"2025-01-15T10:00:00-05", utc("2025-01-15T15:00:00Z"), ""},
		{"2025-01-15T10:00:00 +01:00", utc("2025-01-15T09:00:00Z"), ""},
		{"2025-01-15T10:00:00 01:00", utc("2025-01-15T09:00:00Z"), ""}, // '+' decoded as a space
		{"2025-01-15T10:00:00 02", utc("2025-01-15T08:00:00Z"), ""},
		{"2025-07-15 10:00:00 00:00", utc("2025-07-15T10:00:00Z"), ""},
		{"2025-01-15 10:00 UTC", utc("2025-01-15T10:00:00Z"), ""},
		{"2025-01-15 10:00 CEST", utc("2025-01-15T08:00:00Z"), ""},
		{"2025-01-15 10:00 Europe/London", utc("2025-01-15T10:00:00Z"), ""},
		{"2025-07-15 10:00 America/New_York", utc("2025-07-15T14:00:00Z"), ""},
		{"2025-01-15T24:00:00", utc("2025-01-15T23:00:00Z"), ""},
		{"2016-12-31 23:59:60", utc("2016-12-31T23:00:00Z"), ""},
		// DST: a nonexistent time uses the offset before the jump, an
		// ambiguous one the offset after it.
		{"2025-03-30 02:30", utc("2025-03-30T01:30:00Z"), ""},
		{"2025-03-30 01:59:59", utc("2025-03-30T00:59:59Z"), ""},
		{"2025-03-30 03:00", utc("2025-03-30T01:00:00Z"), ""},
		{"2025-10-26 02:30", utc("2025-10-26T01:30:00Z"), ""},
		{"2025-10-26 01:30", utc("2025-10-25T23:30:00Z"), ""},
		// Special values.
		{"now", now, ""},
		{" NOW ", now, ""},
		{"today", utc("2025-01-14T23:00:00Z"), ""},
		{"tomorrow", utc("2025-01-15T23:00:00Z"), ""},
		{"yesterday", utc("2025-01-13T23:00:00Z"), ""},
		{"epoch", 0, ""},
		{"infinity", posInf, ""},
		{"-infinity", negInf, ""},
		// Errors.
		{"", 0, "22007"},
		{"garbage", 0, "22007"},
		{"15/01/2025", 0, "22007"},
		{"2025-01-15T", 0, "22007"},
		{"2025-01-15T10", 0, "22007"},
		{"2025-01-15T10:0", 0, "22007"},
		{"2025-01-15T10:00:00+", 0, "22007"},
		{"2025-01-15T10:00:00 Mars/Olympus", 0, "22007"},
		{"2025-01-15T10:00:00 XYZ", 0, "22007"},
		{"2025-01-15 10:00:00 01:00 x", 0, "22007"},
		{"2025-13-01", 0, "22008"},
		{"2025-02-29", 0, "22008"},
		{"0000-01-01", 0, "22008"},
		{"2025-01-15 25:00", 0, "22008"},
		{"2025-01-15 10:60", 0, "22008"},
		{"2025-01-15 24:00:01", 0, "22008"},
		{"2025-01-15T10:00:00+16:00", 0, "22009"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, perr := parseBound(tc.in, now)
			if tc.code != "" {
				require.NotNil(t, perr, "got %d", got)
				require.Equal(t, tc.code, perr.code)
				require.Equal(t, 400, perr.status)
				return
			}
			require.Nil(t, perr)
			require.Equal(t, tc.want, got, "got %s", time.UnixMicro(got).UTC())
		})
	}
	// The exported wrapper.
	tm, inf, err := ParseBound("2025-07-15T10:00", winterNow)
	require.NoError(t, err)
	require.Equal(t, 0, inf)
	require.Equal(t, "2025-07-15T10:00:00+02:00", tm.Format(time.RFC3339))
	_, inf, err = ParseBound("-inf", winterNow)
	require.NoError(t, err)
	require.Equal(t, -1, inf)
	_, _, err = ParseBound("x", winterNow)
	require.Error(t, err)
}

func FuzzParseBound(f *testing.F) {
	for _, s := range []string{"1736931600.5", "2025-01-15T10:00:00.5+01:00", "2025-03-30 02:30", "now", "2025-01-15 10:00 01:00",
		"1e9", "-inf", "2025-01-15T10:00:00 Europe/Paris", "9999999-12-31", "1_0.5e3", ""} {
		f.Add(s)
	}
	now := winterNow.UnixMicro()
	f.Fuzz(func(t *testing.T, s string) {
		us, perr := parseBound(s, now)
		if perr != nil {
			if perr.status != 400 || perr.code == "" || len(perr.body()) == 0 {
				t.Fatalf("bad error for %q: %+v", s, perr)
			}
			return
		}
		if us == posInf || us == negInf {
			return
		}
		if us < minTimestampUs || us > maxTimestampUs {
			t.Fatalf("%q parsed out of range: %d", s, us)
		}
		// Round trip through the output format for ordinary dates.
		tm := time.UnixMicro(us)
		if tm.Year() >= 1970 && tm.Year() <= 9999 {
			out := FormatTimestamp(tm)
			back, perr := parseBound(out, now)
			if perr != nil || back != us {
				t.Fatalf("%q -> %s -> %d (%v), want %d", s, out, back, perr, us)
			}
		}
	})
}
