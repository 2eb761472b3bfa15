package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseInstant(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "now", want: now},
		{in: "2025-07-22T13:05:26+02:00", want: time.Date(2025, 7, 22, 11, 5, 26, 0, time.UTC)},
		{in: "2025-07-22T11:05:26.25Z", want: time.Date(2025, 7, 22, 11, 5, 26, 250e6, time.UTC)},
		{in: "1753182326", want: time.Unix(1753182326, 0)},
		{in: "1753182326.123456789", want: time.Unix(1753182326, 123456789)},
		{in: "2025-07-22T13:05:26", wantErr: true}, // no offset: ambiguous
		{in: "1e9", wantErr: true},
		{in: "1/2", wantErr: true},
		{in: "yesterday", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseInstant(tt.in, now)
			if tt.wantErr {
				require.ErrorContains(t, err, "invalid time")
				return
			}
			require.NoError(t, err)
			require.True(t, tt.want.Equal(got), "got %v", got)
		})
	}
}

func TestMainUsageAndVersion(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{[]string{"-V"}, 0, "alumet-agent " + Version, ""},
		{[]string{"--bogus"}, 2, "", "unknown flag: --bogus"},
		{[]string{"fetch"}, 2, "", "fetch needs --from and --to, or --job-id"},
		{[]string{"fetch", "--from", "now", "--to", "now"}, 2, "", "must be after"},
		{[]string{"kwollect", "metrics"}, 2, "", "needs --site and --node"},
		{[]string{"config"}, 2, "", "config needs a subcommand"},
		{[]string{"config", "foo"}, 2, "", "unknown command"},
		{[]string{"run", "extra"}, 2, "", "unknown command"},
		{[]string{"kwollect", "foo"}, 2, "", "unknown command"},
		{[]string{"help", "nope"}, 2, "", "unknown help topic"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := Main(tt.args, &out, &errOut)
		require.Equal(t, tt.wantCode, code, "%v: %s", tt.args, errOut.String())
		require.Contains(t, out.String(), tt.wantOut)
		require.Contains(t, errOut.String(), tt.wantErr)
	}
}
