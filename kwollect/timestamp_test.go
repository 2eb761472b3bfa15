package kwollect

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseTimestamp(t *testing.T) {
	paris2 := time.FixedZone("", 2*3600)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2024-10-03T08:12:41+02:00", time.Date(2024, 10, 3, 8, 12, 41, 0, paris2)},
		{"2024-10-03T08:12:41Z", time.Date(2024, 10, 3, 8, 12, 41, 0, time.UTC)},
		{"2024-10-03t08:12:41z", time.Date(2024, 10, 3, 8, 12, 41, 0, time.UTC)},
		{"2024-10-03 08:12:41+02:00", time.Date(2024, 10, 3, 8, 12, 41, 0, paris2)},
		{"2024-10-03T08:12:41+0200", time.Date(2024, 10, 3, 8, 12, 41, 0, paris2)},
		{"2024-10-03T08:12:41+02", time.Date(2024, 10, 3, 8, 12, 41, 0, paris2)},
		{"2024-01-03T08:12:41+01:00", time.Date(2024, 1, 3, 8, 12, 41, 0, time.FixedZone("", 3600))},
		{"2024-10-03T08:12:41-05:30", time.Date(2024, 10, 3, 8, 12, 41, 0, time.FixedZone("", -(5*3600+1800)))},
		{"2024-10-03T08:12:41.6+02:00", time.Date(2024, 10, 3, 8, 12, 41, 600_000_000, paris2)},
		{"2024-10-03T08:12:41.6072+02:00", time.Date(2024, 10, 3, 8, 12, 41, 607_200_000, paris2)},
		{"2024-10-03T08:12:12.250931+02:00", time.Date(2024, 10, 3, 8, 12, 12, 250_931_000, paris2)},
		{"2024-10-03T08:12:12.25093+02:00", time.Date(2024, 10, 3, 8, 12, 12, 250_930_000, paris2)},
		{"2024-10-03T08:12:12.1234567+02:00", time.Date(2024, 10, 3, 8, 12, 12, 123_456_700, paris2)},
		{"2024-10-03T08:12:12.12345678Z", time.Date(2024, 10, 3, 8, 12, 12, 123_456_780, time.UTC)},
		{"2024-10-03T08:12:12.123456789Z", time.Date(2024, 10, 3, 8, 12, 12, 123_456_789, time.UTC)},
		{"2024-10-03T08:12:12.000000001Z", time.Date(2024, 10, 3, 8, 12, 12, 1, time.UTC)},
		{"2024-02-29T00:00:00Z", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"2000-02-29T23:59:59+00:00", time.Date(2000, 2, 29, 23, 59, 59, 0, time.UTC)},
		{"2024-10-03T08:12:41-00:00", time.Date(2024, 10, 3, 8, 12, 41, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTimestamp(tt.in)
			require.NoError(t, err)
			require.True(t, tt.want.Equal(got), "got %s want %s", got, tt.want)
			_, wantOff := tt.want.Zone()
			_, gotOff := got.Zone()
			require.Equal(t, wantOff, gotOff, "offset kept")
			// Agrees with the standard library wherever it accepts the input.
			if std, err := time.Parse(time.RFC3339Nano, tt.in); err == nil {
				require.True(t, std.Equal(got))
			}
		})
	}
}

func TestParseTimestampErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", "too short"},
		{"2024-10-03T08:12:41", "missing UTC offset"},
		{"2024-10-03T08:12", "too short"},
		{"2024-10-03T08:12:41.5", "missing UTC offset"},
		{"2024-10-03T08:12:41.123", "missing UTC offset"},
		{"2024-10-03X08:12:41Z", "separator"},
		{"2024/10/03T08:12:41Z", "bad date"},
		{"2024-13-03T08:12:41Z", "date out of range"},
		{"2023-02-29T08:12:41Z", "date out of range"},
		{"2024-04-31T08:12:41Z", "date out of range"},
		{"2024-00-10T08:12:41Z", "date out of range"},
		{"2024-10-03T24:00:00Z", "time of day out of range"},
		{"2024-10-03T08:60:00Z", "time of day out of range"},
		{"2024-10-03T08:12:60Z", "time of day out of range"},
		{"2024-10-03T08-12:41Z", "bad time of day"},
		{"2024-10-03T08:12:41.Z", "empty fraction"},
		{"2024-10-03T08:12:41.1234567890Z", "more than 9"},
		{"2024-10-03T08:12:41+2:00", "bad offset"},
		{"2024-10-03T08:12:41+02:0", "bad offset"},
		{"2024-10-03T08:12:41+02:00:00", "bad offset"},
		{"2024-10-03T08:12:41+24:00", "offset out of range"},
		{"2024-10-03T08:12:41+02:60", "offset out of range"},
		{"2024-10-03T08:12:41 +02:00", "bad offset"},
		{"2024-10-03T08:12:41ZZ", "bad offset"},
		{"+024-10-03T08:12:41Z", "bad date"},
		{"2024-10-03T08:12:41.12a+02:00", "bad offset"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseTimestamp(tt.in)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.msg)
		})
	}
	_, err := ParseTimestamp(strings.Repeat("9", 500))
	require.Error(t, err)
	require.Less(t, len(err.Error()), 200, "long inputs are cut in messages")
}

func TestFormatEpoch(t *testing.T) {
	base := time.Unix(1754379876, 0)
	tests := []struct {
		name  string
		t     time.Time
		floor string
		ceil  string
	}{
		{"whole", base, "1754379876", "1754379876"},
		{"half", base.Add(500 * time.Millisecond), "1754379876.5", "1754379876.5"},
		{"millis", time.Unix(1754379886, 734_000_000), "1754379886.734", "1754379886.734"},
		{"micros", base.Add(123456 * time.Microsecond), "1754379876.123456", "1754379876.123456"},
		{"one micro", base.Add(time.Microsecond), "1754379876.000001", "1754379876.000001"},
		{"sub-micro", base.Add(1500 * time.Nanosecond), "1754379876.000001", "1754379876.000002"},
		{"one ns", base.Add(1), "1754379876", "1754379876.000001"},
		{"carry", base.Add(999_999_001), "1754379876.999999", "1754379877"},
		{"other zone", base.In(time.FixedZone("", 7200)), "1754379876", "1754379876"},
		{"epoch", time.Unix(0, 0), "0", "0"},
		{"negative", time.Unix(-2, 250_000_000), "-1.75", "-1.75"},
		{"negative small", time.Unix(-1, 500_000_000), "-0.5", "-0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.floor, FormatEpoch(tt.t))
			require.Equal(t, tt.ceil, FormatEpochCeil(tt.t))
		})
	}
}

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{
		"2024-10-03T08:12:41+02:00", "2024-10-03 08:12:41.6072+02:00", "2024-10-03T08:12:12.250931+0200",
		"2024-10-03T08:12:12.123456789Z", "0000-01-01T00:00:00-23:59", "9999-12-31T23:59:59+23", "2024-02-29T00:00:00z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTimestamp(s)
		if err != nil {
			return
		}
		out := got.Format(time.RFC3339Nano)
		back, err := time.Parse(time.RFC3339Nano, out)
		if err != nil {
			t.Fatalf("%q parsed to %s, which does not re-parse: %v", s, out, err)
		}
		if !back.Equal(got) {
			t.Fatalf("%q: round trip %s -> %s", s, got, back)
		}
		again, err := ParseTimestamp(out)
		if err != nil || !again.Equal(got) {
			t.Fatalf("%q: own output %q not accepted back: %v", s, out, err)
		}
	})
}

// Parsing a timestamp allocates nothing, whatever its offset.
func TestParseTimestampNoAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation")
	}
	for _, s := range []string{"2024-10-03T08:12:41.6072+02:00", "2025-01-15T09:59:50+01:00", "2024-10-03 08:12:41Z", "2024-10-03T08:12:41.123456789-05:30", "2024-10-03T08:12:41+0545"} {
		if _, err := ParseTimestamp(s); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = ParseTimestamp(s) }); n != 0 {
			t.Errorf("ParseTimestamp(%q): %v allocations", s, n)
		}
	}
}
