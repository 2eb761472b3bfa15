package config

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"1s", time.Second},
		{"500ms", 500 * time.Millisecond},
		{"1m 30s", 90 * time.Second},
		{"1m30s", 90 * time.Second},
		{"2min", 2 * time.Minute},
		{"1h", time.Hour},
		{"1d", 24 * time.Hour},
		{"1w", 7 * 24 * time.Hour},
		{"2weeks", 14 * 24 * time.Hour},
		{"3 days", 72 * time.Hour},
		{"1hr 2mins 3secs", time.Hour + 2*time.Minute + 3*time.Second},
		{"1hour 1minute 1second", time.Hour + time.Minute + time.Second},
		{"2hours 2minutes 2seconds", 2*time.Hour + 2*time.Minute + 2*time.Second},
		{"10ns", 10},
		{"10nsec", 10},
		{"7us", 7 * time.Microsecond},
		{"7usec", 7 * time.Microsecond},
		{"7µs", 7 * time.Microsecond}, // micro sign U+00B5
		{"7μs", 7 * time.Microsecond}, // Greek mu U+03BC
		{"5msec", 5 * time.Millisecond},
		{"1 s", time.Second},
		{"  1s  ", time.Second},
		{"0s", 0},
		{"1s 1s", 2 * time.Second},
		{"1M", 2_630_016 * time.Second},
		{"1y", 31_557_600 * time.Second},
		{"9223372036854775807ns", math.MaxInt64},
		{"1d 1h 1m 1s 1ms 1us 1ns", 25*time.Hour + time.Minute + time.Second + time.Millisecond + time.Microsecond + 1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseDurationErrors(t *testing.T) {
	tests := []struct {
		in      string
		message string
	}{
		{"", "empty value"},
		{"   ", "empty value"},
		{"5", "missing unit after 5"},
		{"1s 5", "missing unit after 5"},
		{"5x", `unknown unit "x"`},
		{"5S", `unknown unit "S"`},
		{"5 parsecs", `unknown unit "parsecs"`},
		{"1.5s", "fractions are not supported"},
		{"-1s", "negative durations are not allowed"},
		{"+1s", "unexpected sign"},
		{"s", "expected a number before the unit"},
		{"1s,2s", "unexpected character ','"},
		{"5%", "unexpected character '%' after 5"},
		{"9223372036854775808ns", "too large"},
		{"106752d", "too large"},
		{"99999999999999999999s", "the number 99999999999999999999 is too large"},
		{"9223372036854775807ns 1ns", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseDuration(tt.in)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.message)
			require.Contains(t, err.Error(), "invalid duration "+quote(tt.in))
			require.Contains(t, err.Error(), "valid units: ns, us")
		})
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{time.Second, "1s"},
		{60 * time.Second, "1m"},
		{1500 * time.Millisecond, "1s 500ms"},
		{90 * time.Second, "1m 30s"},
		{36 * time.Hour, "1d 12h"},
		{8 * 24 * time.Hour, "8d"},
		{time.Hour + time.Nanosecond, "1h 1ns"},
		{1234567 * time.Nanosecond, "1ms 234us 567ns"},
		{-time.Second, "-1s"},
		{math.MaxInt64, "106751d 23h 47m 16s 854ms 775us 807ns"},
		{math.MinInt64, "-106751d 23h 47m 16s 854ms 775us 808ns"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, FormatDuration(tt.in))
			require.Equal(t, tt.want, Duration(tt.in).String())
			if tt.in >= 0 {
				back, err := ParseDuration(tt.want)
				require.NoError(t, err)
				require.Equal(t, tt.in, back)
			}
		})
	}
}

func TestDurationTOML(t *testing.T) {
	type cfg struct {
		Poll    Duration `toml:"poll"`
		Timeout Duration `toml:"timeout"`
	}
	var c cfg
	_, err := toml.Decode("poll = \"1m 30s\"\ntimeout = \"2min\"\n", &c)
	require.NoError(t, err)
	require.Equal(t, 90*time.Second, c.Poll.D())
	require.Equal(t, 2*time.Minute, c.Timeout.D())

	var b strings.Builder
	require.NoError(t, toml.NewEncoder(&b).Encode(cfg{Poll: Duration(1500 * time.Millisecond), Timeout: Duration(time.Minute)}))
	require.Equal(t, "poll = \"1s 500ms\"\ntimeout = \"1m\"\n", b.String())

	_, err = toml.Decode(`poll = "1.5s"`, &c)
	require.ErrorContains(t, err, "fractions are not supported")
	_, err = toml.Decode(`poll = 5`, &c)
	require.ErrorContains(t, err, "missing unit after 5")

	_, err = Duration(-time.Second).MarshalText()
	require.ErrorContains(t, err, "negative duration")
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"1s", "500ms", "1m 30s", "2min", "1d", "1w 2d", "7µs", "1.5s", "-1s", "", "9223372036854775807ns", "1y 1M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !strings.Contains(err.Error(), "valid units") {
				t.Fatalf("error without the valid units: %v", err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("negative duration %d from %q", d, s)
		}
		text := FormatDuration(d)
		back, err := ParseDuration(text)
		if err != nil {
			t.Fatalf("FormatDuration(%d) = %q does not parse: %v", d, text, err)
		}
		if back != d {
			t.Fatalf("FormatDuration(%d) = %q parses to %d", d, text, back)
		}
	})
}
