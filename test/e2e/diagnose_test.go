package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// kwollectSection is a [plugins.kwollect-input] table with the given site,
// hostname and metric, and extra lines.
func kwollectSection(site, hostname, metric, api string, extra ...string) string {
	s := fmt.Sprintf("[plugins.kwollect-input]\nsite = %q\nhostname = %q\nmetrics = %q\napi_url = %q\n", site, hostname, metric, api)
	for _, l := range extra {
		s += l + "\n"
	}
	return s
}

func markerExists(t *testing.T, dir string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(dir, "marker"))
	if err != nil {
		require.True(t, os.IsNotExist(err), "%v", err)
		return false
	}
	return true
}

// execMarker runs `exec -- touch marker` with the config in a fresh directory.
func execMarker(t *testing.T, cfg string, env ...string) (result, string) {
	t.Helper()
	dir := t.TempDir()
	writeConfig(t, dir, cfg)
	res := runAgent(t, dir, env, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "touch", "marker")
	return res, dir
}

// TestDiagnoseWrongNames: a name the Reference API proves wrong stops the
// agent before the command is spawned, with what is wrong and the near
// name; it never passes for a dead meter.
func TestDiagnoseWrongNames(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s")
	tests := []struct {
		name, site, node, metric string
		want                     []string
	}{
		{"node number", "lyon", "taurus-77", "wattmetre_power_watt",
			[]string{`no node taurus-77 in cluster taurus (lyon); did you mean taurus-7? (set hostname = "taurus-7")`}},
		{"cluster", "lyon", "tauros-7", "wattmetre_power_watt",
			[]string{"no cluster tauros on lyon; did you mean taurus-7 (cluster taurus)?"}},
		{"site of another cluster", "nancy", "taurus-7", "wattmetre_power_watt",
			[]string{"taurus is a lyon cluster, not nancy", `set site = "lyon"`}},
		{"metric", "lyon", "taurus-7", "wattmeter_power_watt",
			[]string{"cluster taurus (lyon) has no metric wattmeter_power_watt; did you mean wattmetre_power_watt? " +
				`(set metrics = "wattmetre_power_watt"; see ` + "`alumet-agent kwollect metrics --site lyon --node taurus-7`)"}},
		{"site", "lyom", "taurus-7", "wattmetre_power_watt",
			[]string{`unknown site lyom; did you mean lyon? (set site = "lyon", or write the node as taurus-7.lyon.grid5000.fr)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, dir := execMarker(t, kwollectSection(tt.site, tt.node, tt.metric, api))
			require.Equal(t, 1, res.code, res.stderr)
			// At the source's start, or at the pre-flight check.
			require.Regexp(t, `the command was not started|kwollect-input failed to start`, res.stderr)
			for _, w := range tt.want {
				require.Contains(t, res.stderr, w)
			}
			require.NotContains(t, res.stderr, "meter is down")
			require.NotContains(t, res.stderr, "taurus-1")
			require.NotContains(t, res.stderr, "preflight =", "skipping the pre-flight check does not fix a name")
			require.False(t, markerExists(t, dir), "the command must not run")
		})
	}
}

// TestDiagnoseSiteCase: site = "Lyon" works as lyon, with a warning.
func TestDiagnoseSiteCase(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s")
	res, dir := execMarker(t, kwollectSection("Lyon", "taurus-7", "wattmetre_power_watt", api))
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, `site = "Lyon": Grid'5000 site names are lower case; using "lyon"`)
	require.Contains(t, res.stderr, "/sites/lyon/metrics?nodes=taurus-7")
	require.True(t, markerExists(t, dir))
}

// TestPreflightSilentMeter: a meter silent for 20 minutes has no data in
// the 10-minute look-back (the command is not started); one silent for 5
// minutes is only a warning (Kwollect may lag), and the command runs.
func TestPreflightSilentMeter(t *testing.T) {
	t.Parallel()
	t.Run("20 min", func(t *testing.T) {
		t.Parallel()
		api := startEmulator(t, "--lag", "0s", "--gap", "nodes=taurus-7;start=-20m")
		res, dir := execMarker(t, kwollectSection("lyon", "taurus-7", "wattmetre_power_watt", api))
		require.Equal(t, 1, res.code, res.stderr)
		require.Contains(t, res.stderr, "no data in the last 10 min for:")
		require.Contains(t, res.stderr, "taurus-7/wattmetre_power_watt: the meter is down")
		require.Contains(t, res.stderr, `set preflight = "warn" (or false)`)
		require.False(t, markerExists(t, dir))
	})
	t.Run("5 min", func(t *testing.T) {
		t.Parallel()
		api := startEmulator(t, "--lag", "0s", "--gap", "nodes=taurus-7;start=-5m")
		res, dir := execMarker(t, kwollectSection("lyon", "taurus-7", "wattmetre_power_watt", api, `fetch_timeout = "1s"`))
		require.Regexp(t, `taurus-7/wattmetre_power_watt: meter silent since \d\d:\d\d:\d\d UTC \((4|5) min ago\)`, res.stderr)
		require.True(t, markerExists(t, dir), "a silent meter is a warning: %s", res.stderr)
	})
}

// TestPreflightLagging: with a 45 s ingestion lag the newest sample is 45 s
// old: the series lags, it is not silent, and the pre-flight check passes.
func TestPreflightLagging(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "45s")
	res, dir := execMarker(t, kwollectSection("lyon", "taurus-7", "wattmetre_power_watt", api, `fetch_timeout = "1s"`))
	require.Contains(t, res.stderr, "Pre-flight check passed")
	require.NotContains(t, res.stderr, "silent")
	require.True(t, markerExists(t, dir))
}

// TestPreflightBadPassword: a wrong password says which credentials were
// sent, and does not advise to skip the check.
func TestPreflightBadPassword(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s", "--user", "demo:secret")
	res, dir := execMarker(t, kwollectSection("lyon", "taurus-7", "wattmetre_power_watt", api, `login = "demo"`, `password = "${G5K_PASSWORD}"`),
		"G5K_PASSWORD=not-the-secret", "HOME="+t.TempDir())
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, `bad credentials (sent: login "demo" with the password of the config, from an environment variable)`)
	require.Contains(t, res.stderr, "401")
	require.NotContains(t, res.stderr, "preflight")
	require.NotContains(t, res.stderr, "not-the-secret")
	require.False(t, markerExists(t, dir))
}

// TestKwollectMetricsConfig: `kwollect metrics` takes the site, node,
// api_url and credentials from the config; a node its cluster does not
// list fails with the near names.
func TestKwollectMetricsConfig(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s", "--user", "demo:secret")
	dir := t.TempDir()
	writeConfig(t, dir, kwollectSection("lyon", "taurus-7", "wattmetre_power_watt", api, `login = "demo"`, `password = "${G5K_PASSWORD}"`))
	env := []string{"G5K_PASSWORD=secret", "HOME=" + t.TempDir()}

	res := runAgent(t, dir, env, "kwollect", "metrics")
	require.Equal(t, 0, res.code, res.stderr)
	require.Regexp(t, `(?m)^wattmetre_power_watt\s+1s\s+20ms\s`, res.stdout)
	require.Contains(t, res.stdout, "metrics for taurus-7 (cluster taurus, site lyon)")

	res = runAgent(t, dir, env, "kwollect", "metrics", "--node", "orion-3")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "metrics for orion-3 (cluster orion, site lyon)")

	tests := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"node typo", []string{"--node", "taurus-77"}, env,
			[]string{"no node taurus-77 in cluster taurus (lyon); did you mean taurus-7", "taurus-7? (try --node taurus-7)"}},
		{"cluster typo", []string{"--node", "tauros-7"}, env, []string{"no cluster tauros on lyon; did you mean taurus-7"}},
		{"wrong site", []string{"--site", "nancy"}, env, []string{"taurus is a lyon cluster, not nancy: try --site lyon"}},
		{"site typo", []string{"--site", "lyom"}, env, []string{"unknown site lyom; did you mean lyon? (try --site lyon)"}},
		{"site without clusters", []string{"--site", "bordeaux", "--node", "x-1"}, env,
			[]string{"Error: no cluster x on bordeaux: site bordeaux has no cluster in the Reference API\n"}},
		{"bad password", nil, []string{"G5K_PASSWORD=nope", "HOME=" + t.TempDir()},
			[]string{`bad credentials (sent: login "demo" with the password of the config, from an environment variable)`, "401"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runAgent(t, dir, tt.env, append([]string{"kwollect", "metrics"}, tt.args...)...)
			require.Equal(t, 1, res.code, res.stderr)
			for _, w := range tt.want {
				require.Contains(t, res.stderr, w)
			}
			require.Empty(t, res.stdout)
		})
	}

	// Without a config file, nothing is written and the flags are used.
	empty := t.TempDir()
	res = runAgent(t, empty, env, "kwollect", "metrics", "--site", "lyon", "--node", "taurus-77", "--api-url", api, "--login", "demo")
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "did you mean taurus-7")
	_, err := os.Stat(filepath.Join(empty, "alumet-config.toml"))
	require.True(t, os.IsNotExist(err), "a lookup writes no config file")
}
