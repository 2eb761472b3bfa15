package prometheusexporter

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/servertest"
	"github.com/alumet-go/alumet-agent/measure"
)

// promtool check metrics lints the text format (it cannot parse
// OpenMetrics) as the exporter serves it to a scraper that asks for it.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := servertest.Binary(t, "promtool", "prometheus")
	kwollect := func(t *testing.T, reg *measure.Registry) *measure.Buffer {
		id := wattmetre(t, reg)
		return &measure.Buffer{Points: []measure.Point{pPoint(id, "taurus-7", pTime, 112.73), pPoint(id, "taurus-8", pTime, 98)}}
	}
	tests := []struct {
		name       string
		buf        func(*testing.T, *measure.Registry) *measure.Buffer
		timestamps bool
		lint       []string // the lint problems expected (exit code 3), none for exit code 0
	}{
		{"kwollect", kwollect, false, nil},
		{"kwollect with timestamps", kwollect, true, nil},
		// Alumet's unit words keep SI prefixes, which promtool's naming
		// lint frowns on; the exposition still parses.
		{"golden", func(t *testing.T, reg *measure.Registry) *measure.Buffer { return goldenBuffer(t, reg) }, false,
			[]string{`rapl_consumed_energy_alumet_millijoules use base unit "joules" instead of "millijoules"`}},
		{"golden with timestamps", func(t *testing.T, reg *measure.Registry) *measure.Buffer { return goldenBuffer(t, reg) }, true,
			[]string{`rapl_consumed_energy_alumet_millijoules use base unit "joules" instead of "millijoules"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ExposeTimestamps = tt.timestamps
			x, reg, base := startTestServer(t, cfg)
			require.NoError(t, x.Write(context.Background(), tt.buf(t, reg)))
			resp, body := get(t, "GET", base+"/metrics", map[string]string{"Accept": "text/plain;version=0.0.4"})
			require.Equal(t, ContentTypeText, resp.Header.Get("Content-Type"))
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = strings.NewReader(body)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var ee *exec.ExitError
			switch {
			case err == nil:
				require.Empty(t, tt.lint, "promtool found no problem")
			case errors.As(err, &ee) && ee.ExitCode() == 3:
				var got []string
				for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
					got = append(got, strings.TrimSpace(l))
				}
				require.Equal(t, tt.lint, dedupe(got), "promtool: %s\n%s", out.String(), body)
			default:
				t.Fatalf("promtool check metrics: %v\n%s\n%s", err, out.String(), body)
			}
		})
	}
}

func dedupe(s []string) []string {
	var out []string
	for _, x := range s {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}
