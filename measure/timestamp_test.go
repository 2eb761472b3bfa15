package measure

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTimestamps(t *testing.T) {
	var f Timestamps
	for _, tc := range []struct {
		ns   int64
		want string
	}{
		{1753182326000468000, "2025-07-22T11:05:26.000468Z"},
		{1753182326000468001, "2025-07-22T11:05:26.000468001Z"}, // same second: the cached prefix
		{1753182326100000000, "2025-07-22T11:05:26.1Z"},
		{1753182327000000000, "2025-07-22T11:05:27Z"},
		{0, "1970-01-01T00:00:00Z"},
		{-1, "1969-12-31T23:59:59.999999999Z"},
		{-1e9, "1969-12-31T23:59:59Z"},
	} {
		got := string(f.AppendNanos(nil, tc.ns))
		require.Equal(t, tc.want, got, "ns %d", tc.ns)
		require.Equal(t, time.Unix(0, tc.ns).UTC().Format(time.RFC3339Nano), got)
	}
	// Past year 9999 (only with AppendUnix): time's own format.
	require.Equal(t, "10000-01-01T00:00:00.5Z", string(f.AppendUnix(nil, 253402300800, 5e8)))
	require.Equal(t, "9999-12-31T23:59:59.5Z", string(f.AppendUnix(nil, 253402300799, 5e8)))
}

// FuzzTimestamps checks Timestamps against time.RFC3339Nano, with the
// cached second of the previous call.
func FuzzTimestamps(f *testing.F) {
	f.Add(int64(1753182326000468000), int64(1753182326999999999))
	f.Add(int64(-1), int64(0))
	f.Add(int64(math.MaxInt64), int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, a, b int64) {
		var ts Timestamps
		for _, ns := range []int64{a, b, a} {
			want := time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
			if got := string(ts.AppendNanos([]byte("x"), ns)); got != "x"+want {
				t.Fatalf("AppendNanos(%d) = %q, want %q", ns, got, "x"+want)
			}
		}
	})
}

func TestAppendNineDigits(t *testing.T) {
	for _, u := range []uint64{0, 1, 9, 10, 99, 100, 12345, 1e8 - 1, 1e8, 123456789, 999999999} {
		t.Run(fmt.Sprint(u), func(t *testing.T) {
			require.Equal(t, "x"+fmt.Sprintf("%09d", u), string(AppendNineDigits([]byte("x"), u)))
		})
	}
}
