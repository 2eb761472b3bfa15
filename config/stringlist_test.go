package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseStringList(t *testing.T) {
	tests := []struct {
		in      any
		want    []string
		wantErr bool
	}{
		{"wattmetre_power_watt", []string{"wattmetre_power_watt"}, false},
		{" a, b,,c ", []string{"a", "b", "c"}, false},
		{[]any{"a", "b,c"}, []string{"a", "b", "c"}, false},
		{[]any{}, []string{}, false},
		{"", []string{}, false},
		{int64(3), nil, true},
		{[]any{int64(1)}, nil, true},
	}
	for _, tt := range tests {
		got, err := ParseStringList(tt.in)
		if tt.wantErr {
			require.Error(t, err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tt.want, got)
	}
}
