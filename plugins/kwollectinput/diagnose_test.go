package kwollectinput

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/kwollect/emulator"
	"github.com/alumet-go/alumet-agent/kwollect/emulator/emutest"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

// offGrid5000 is a host that is not a Grid'5000 node.
func offGrid5000() environment {
	return environment{
		getenv:   func(string) string { return "" },
		hostname: func() (string, error) { return "laptop", nil },
		readFile: os.ReadFile,
	}
}

type testAPI struct {
	emu  emulator.Config
	wrap func(http.Handler) http.Handler // nil: the emulator as is
}

// newTestSource builds a source against an in-process emulator; cfg's
// api_url is set to it.
func newTestSource(t *testing.T, cfg *Config, mode plugin.Mode, api testAPI) (*Source, *testkit.Logs) {
	t.Helper()
	if api.emu.Seed == 0 {
		api.emu.Seed = 7
	}
	cfg.APIURL = emutest.Start(t, api.emu, emutest.Wrap(api.wrap)).URL
	require.NoError(t, cfg.Validate())
	logs := &testkit.Logs{}
	env := plugin.Env{Pipeline: pipeline.NewBuilder(measure.NewRegistry(), 8, nil), Logger: logs.Logger(), Mode: mode, StartTime: time.Now()}
	src, err := newSource(cfg, env, offGrid5000(), "")
	require.NoError(t, err)
	return src, logs
}

func TestDiagnose(t *testing.T) {
	tests := []struct {
		name     string
		site     string
		nodes    []string // hostname
		nodesKey []string // nodes
		metrics  []string
		api      testAPI
		wantErr  []string // substrings of the error; nil: no error
		notInErr []string
		wantWarn []string
		wantDbg  []string
	}{
		{name: "right names", site: "lyon", nodes: []string{"taurus-7", "gros-41.nancy.grid5000.fr"}},
		{name: "node number typo", site: "lyon", nodes: []string{"taurus-77"},
			wantErr:  []string{"no node taurus-77 in cluster taurus (lyon); did you mean taurus-7", `? (set hostname = "taurus-7")`},
			notInErr: []string{"meter", "taurus-1"}},
		{name: "node number typo in nodes", site: "lyon", nodesKey: []string{"orion-3", "taurus-77"},
			wantErr: []string{`no node taurus-77 in cluster taurus (lyon); did you mean taurus-7? (set nodes = ["orion-3", "taurus-7"])`}},
		{name: "node number typo in a FQDN", site: "nancy", nodes: []string{"taurus-77.lyon.grid5000.fr"},
			wantErr: []string{`no node taurus-77 in cluster taurus (lyon); did you mean taurus-7? (set hostname = "taurus-7.lyon.grid5000.fr")`}},
		{name: "cluster without nodes on a site without clusters", site: "bordeaux", nodes: []string{"x-1"},
			wantErr: []string{"no cluster x on bordeaux: site bordeaux has no cluster in the Reference API"}, notInErr: []string{"its clusters"}},
		{name: "node far from any", site: "lyon", nodes: []string{"orion-99"},
			wantErr: []string{"no node orion-99 in cluster orion (lyon); it has orion-1 … orion-4"}},
		{name: "cluster typo", site: "lyon", nodes: []string{"tauros-7"},
			wantErr: []string{"no cluster tauros on lyon; did you mean taurus-7 (cluster taurus)?"}},
		{name: "cluster typo on the wrong site", site: "nancy", nodes: []string{"tauros-7"},
			wantErr: []string{"no cluster tauros on nancy; did you mean taurus (a lyon cluster)?"}},
		{name: "cluster unknown", site: "lyon", nodes: []string{"zzz-1"},
			wantErr: []string{"no cluster zzz on lyon (its clusters: gemini, nova, orion, taurus)"}},
		{name: "wrong site", site: "nancy", nodes: []string{"taurus-7"},
			wantErr:  []string{"taurus is a lyon cluster, not nancy", `set site = "lyon", or write the node as taurus-7.lyon.grid5000.fr`},
			notInErr: []string{"meter"}},
		{name: "wrong site in a FQDN", site: "lyon", nodes: []string{"gros-41.lyon.grid5000.fr"},
			wantErr:  []string{`gros is a nancy cluster, not lyon: set hostname = "gros-41.nancy.grid5000.fr"`},
			notInErr: []string{"site ="}},
		{name: "wrong site and node", site: "nancy", nodes: []string{"taurus-77"},
			wantErr: []string{"taurus is a lyon cluster, not nancy, and it has no node taurus-77; did you mean taurus-7? (set site = \"lyon\" and hostname = \"taurus-7\")"}},
		{name: "site typo", site: "lyom", nodes: []string{"taurus-7"},
			wantErr: []string{`unknown site lyom; did you mean lyon? (set site = "lyon", or write the node as taurus-7.lyon.grid5000.fr)`}},
		{name: "site unknown", site: "nowhere", nodes: []string{"x-1"},
			wantErr: []string{"unknown site nowhere (HTTP 404 from the Reference API); Grid'5000 sites: bordeaux, grenoble"}},
		{name: "site case folded", site: "Lyon", nodes: []string{"taurus-7"},
			wantWarn: []string{`site = "Lyon": Grid'5000 site names are lower case; using "lyon" (write site = "lyon")`}},
		{name: "metric typo", site: "lyon", nodes: []string{"taurus-7"}, metrics: []string{"wattmeter_power_watt"},
			wantErr: []string{"cluster taurus (lyon) has no metric wattmeter_power_watt; did you mean wattmetre_power_watt? " +
				`(set metrics = "wattmetre_power_watt"; see ` + "`alumet-agent kwollect metrics --site lyon --node taurus-7`)"}},
		{name: "metric typo in a list", site: "lyon", nodes: []string{"taurus-7"}, metrics: []string{"bmc_node_power_watt", "wattmeter_power_watt"},
			wantErr: []string{`did you mean wattmetre_power_watt? (set metrics = ["bmc_node_power_watt", "wattmetre_power_watt"]; see`}},
		{name: "metric typo on a later node", site: "lyon", nodes: []string{"taurus-7", "orion-3"}, metrics: []string{"bmc_node_power_wat"},
			wantErr: []string{"did you mean bmc_node_power_watt?", "--node taurus-7", "--node orion-3"}},
		{name: "metric unknown, no near name", site: "lyon", nodes: []string{"taurus-7"}, metrics: []string{"my_custom_metric"},
			wantWarn: []string{`cluster taurus (lyon) has no metric "my_custom_metric" in its catalogue`}},
		{name: "prometheus metric", site: "lyon", nodes: []string{"taurus-7"}, metrics: []string{"prom_node_load1"},
			wantDbg: []string{"prom_node_load1 is not in the catalogue of taurus"}},
		{name: "no meter on this node: a warning outside exec", site: "nancy", nodes: []string{"gros-1"},
			wantWarn: []string{"no meter on this node: gros-1 has no wattmetre_power_watt (only gros-41 … gros-76 have it)"}},
		{name: "on-demand metric", site: "lyon", nodes: []string{"taurus-7"}, metrics: []string{"bmc_node_power_watthour_total"},
			wantWarn: []string{"on-demand metric on taurus"}},
		{name: "reference API down", site: "lyon", nodes: []string{"taurus-77"},
			api:     testAPI{wrap: failReference(http.StatusServiceUnavailable)},
			wantDbg: []string{"cannot check node taurus-77 against the Reference API"}},
		{name: "reference API 404 everywhere (wrong api_url)", site: "lyon", nodes: []string{"taurus-7"},
			api:     testAPI{wrap: failReference(http.StatusNotFound)},
			wantDbg: []string{"cannot check node taurus-7"}},
		{name: "bad credentials", site: "lyon", nodes: []string{"taurus-7"},
			api:     testAPI{emu: emulator.Config{Users: map[string]string{"demo": "secret"}}},
			wantErr: []string{"bad credentials (sent: no credentials: none in the config", "401"}, notInErr: []string{"preflight"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Site, cfg.Hostname, cfg.Nodes = tt.site, StringList(tt.nodes), StringList(tt.nodesKey)
			if tt.metrics != nil {
				cfg.Metrics = StringList(tt.metrics)
			}
			src, logs := newTestSource(t, cfg, plugin.ModeFetch, tt.api)
			err := src.Diagnose(context.Background())
			if tt.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					require.Contains(t, err.Error(), w)
				}
				for _, w := range tt.notInErr {
					require.NotContains(t, err.Error(), w)
				}
			}
			for _, w := range tt.wantWarn {
				require.Contains(t, logs.Text("WARN"), w)
			}
			for _, w := range tt.wantDbg {
				require.Contains(t, logs.Text("DEBUG"), w)
			}
			require.Equal(t, err, src.Diagnose(context.Background()), "the diagnosis runs once")
		})
	}
}

// failReference makes every Reference API route answer status.
func failReference(status int) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/metrics") {
				w.WriteHeader(status)
				_, _ = w.Write([]byte("gateway says no"))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestDiagnoseJobSite(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Site, cfg.Hostname, cfg.JobID = "lyom", StringList{}, JobRef{ID: 42}
	src, _ := newTestSource(t, cfg, plugin.ModeFetch, testAPI{})
	err := src.Diagnose(context.Background())
	require.ErrorContains(t, err, "unknown site lyom; did you mean lyon?")
}

func TestNearest(t *testing.T) {
	nodes := []string{"taurus-1", "taurus-7", "taurus-17", "taurus-16"}
	tests := []struct {
		name, in   string
		candidates []string
		node       bool
		want       []string
	}{
		{"doubled digit", "taurus-77", nodes, true, []string{"taurus-7", "taurus-17"}},
		{"exact is not suggested", "taurus-7", []string{"taurus-7"}, true, nil},
		{"too far for a node", "taurus-99", nodes, true, nil},
		{"site", "lyom", []string{"lille", "lyon", "nancy"}, false, []string{"lyon"}},
		{"case", "LYON", []string{"lyon"}, false, []string{"lyon"}},
		{"transposition", "wattmeter_power_watt", []string{"wattmetre_power_watt", "bmc_node_power_watt"}, false, []string{"wattmetre_power_watt"}},
		{"short names allow one edit", "nva", []string{"nova", "orion"}, false, []string{"nova"}},
		{"at most three", "a-1", []string{"a-2", "a-3", "a-4", "a-5"}, true, []string{"a-2", "a-3", "a-4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := nearest
			if tt.node {
				f = nearestNode
			}
			require.Empty(t, cmp.Diff(tt.want, f(tt.in, tt.candidates)))
		})
	}
}

func TestDescribeNodes(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, "no node"},
		{[]string{"gros-41"}, "gros-41"},
		{[]string{"gros-42", "gros-41", "gros-43"}, "gros-41 … gros-43"},
		{[]string{"gros-41", "gros-43"}, "gros-41, gros-43"},
		{[]string{"a-1", "b-2"}, "a-1, b-2"},
		{[]string{"a-1", "a-3", "a-5", "a-7", "a-9", "a-11", "a-13", "a-15", "a-17"}, "a-1, a-3, a-5, a-7, a-9, a-11, … (9 nodes)"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, describeNodes(tt.in), "%v", tt.in)
	}
}

// failMetrics makes the Kwollect metrics route answer status (the
// Reference API still answers).
func failMetrics(status int) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/metrics") {
				w.WriteHeader(status)
				_, _ = w.Write([]byte("<html>gateway</html>"))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestPreflight(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name      string
		site      string
		nodes     []string
		metrics   []string
		mode      PreflightMode
		login     string
		password  string
		api       testAPI
		wantErr   []string // nil: passes
		notInErr  []string
		wantWarn  []string
		wantInfo  []string
		wantPrior map[string]time.Duration // node/metric → period seen
		maxAge    time.Duration            // of the prior's newest sample
	}{
		{name: "data", site: "lyon", nodes: []string{"taurus-7"}, metrics: []string{"wattmetre_power_watt", "bmc_node_power_watt"},
			wantInfo:  []string{"Pre-flight check passed: every node and metric has data from the last 10 min."},
			wantPrior: map[string]time.Duration{"taurus-7/wattmetre_power_watt": time.Second, "taurus-7/bmc_node_power_watt": 5 * time.Second}, maxAge: 10 * time.Second},
		{name: "lagging 45 s passes", site: "lyon", nodes: []string{"taurus-7"}, api: testAPI{emu: emulator.Config{Lag: 45 * time.Second}},
			wantInfo:  []string{"Pre-flight check passed"},
			wantPrior: map[string]time.Duration{"taurus-7/wattmetre_power_watt": time.Second}, maxAge: 50 * time.Second},
		{name: "silent for 5 min: a warning", site: "lyon", nodes: []string{"taurus-7", "taurus-8"},
			api:       testAPI{emu: emulator.Config{Gaps: []emulator.Gap{{Nodes: []string{"taurus-7"}, Start: now.Add(-5 * time.Minute)}}}},
			wantWarn:  []string{"taurus-7/wattmetre_power_watt: meter silent since " + now.Add(-5*time.Minute).UTC().Format("15:04"), "(5 min ago)"},
			wantPrior: map[string]time.Duration{"taurus-7/wattmetre_power_watt": time.Second, "taurus-8/wattmetre_power_watt": time.Second}},
		{name: "silent for 20 min: no data", site: "lyon", nodes: []string{"taurus-7", "taurus-8"},
			api:      testAPI{emu: emulator.Config{Gaps: []emulator.Gap{{Nodes: []string{"taurus-7"}, Start: now.Add(-20 * time.Minute)}}}},
			wantErr:  []string{"no data in the last 10 min for:\n  taurus-7/wattmetre_power_watt: the meter is down", `set preflight = "warn" (or false)`},
			notInErr: []string{"taurus-8", "no meter on this node"}},
		{name: "silent for 20 min, warn mode", site: "lyon", nodes: []string{"taurus-7"}, mode: PreflightWarn,
			api:      testAPI{emu: emulator.Config{Gaps: []emulator.Gap{{Nodes: []string{"taurus-7"}, Start: now.Add(-20 * time.Minute)}}}},
			wantWarn: []string{"no data in the last 10 min", `(preflight = "warn": running the command anyway)`}},
		{name: "no meter on this node", site: "nancy", nodes: []string{"gros-1"},
			wantErr: []string{"gros-1/wattmetre_power_watt: no meter on this node: gros-1 has no wattmetre_power_watt meter (only gros-41 … gros-76 have it)"}},
		{name: "wrong node is not a dead meter", site: "lyon", nodes: []string{"taurus-77"},
			wantErr: []string{"no node taurus-77 in cluster taurus (lyon); did you mean taurus-7"}, notInErr: []string{"meter", "preflight"}},
		{name: "API unreachable", site: "lyon", nodes: []string{"taurus-7"}, api: testAPI{wrap: failMetrics(http.StatusBadGateway)},
			wantErr: []string{"Kwollect API unreachable", "502", `set preflight = "warn" (or false)`}},
		{name: "API unreachable, warn mode", site: "lyon", nodes: []string{"taurus-7"}, mode: PreflightWarn, api: testAPI{wrap: failMetrics(http.StatusServiceUnavailable)},
			wantWarn: []string{"Kwollect API unreachable"}},
		{name: "bad password", site: "lyon", nodes: []string{"taurus-7"}, login: "demo", password: "wrong",
			api:     testAPI{emu: emulator.Config{Users: map[string]string{"demo": "secret"}}},
			wantErr: []string{"bad credentials (sent: login \"demo\" with the password of the config)", "401"}, notInErr: []string{"preflight", "wrong"}},
		{name: "401 on the metrics route only", site: "lyon", nodes: []string{"taurus-7"}, api: testAPI{wrap: failMetrics(http.StatusUnauthorized)},
			wantErr: []string{"pre-flight query to Kwollect: bad credentials (sent: no credentials", "401"}, notInErr: []string{"preflight ="}},
		{name: "404 on the metrics route", site: "lyon", nodes: []string{"taurus-7"}, api: testAPI{wrap: failMetrics(http.StatusNotFound)},
			wantErr: []string{"404", "check site and api_url"}, notInErr: []string{"preflight ="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.Site, cfg.Hostname = tt.site, StringList(tt.nodes)
			cfg.Login, cfg.Password = tt.login, tt.password
			if tt.metrics != nil {
				cfg.Metrics = StringList(tt.metrics)
			}
			if tt.mode != "" {
				cfg.Preflight = tt.mode
			}
			src, logs := newTestSource(t, cfg, plugin.ModeExec, tt.api)
			err := src.Preflight(context.Background())
			if tt.wantErr == nil {
				require.NoError(t, err, logs.Text(""))
			} else {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					require.Contains(t, err.Error(), w)
				}
				for _, w := range tt.notInErr {
					require.NotContains(t, err.Error(), w)
				}
			}
			for _, w := range tt.wantWarn {
				require.Contains(t, logs.Text("WARN"), w)
			}
			for _, w := range tt.wantInfo {
				require.Contains(t, logs.Text("INFO"), w)
			}
			for k, period := range tt.wantPrior {
				node, metric, _ := strings.Cut(k, "/")
				sp, ok := src.prior.get(node, metric)
				require.True(t, ok, "%s noted in prior", k)
				require.Equal(t, period, sp.Period, k)
				if tt.maxAge > 0 {
					require.Less(t, time.Since(sp.Last), tt.maxAge, k)
				}
			}
		})
	}
}

func TestPreflightOffStillChecksNames(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Site, cfg.Hostname, cfg.Preflight = "lyon", StringList{"taurus-77"}, PreflightOff
	src, _ := newTestSource(t, cfg, plugin.ModeExec, testAPI{wrap: failMetrics(http.StatusBadGateway)})
	require.ErrorContains(t, src.Preflight(context.Background()), "did you mean taurus-7")

	cfg = DefaultConfig()
	cfg.Site, cfg.Hostname, cfg.Preflight = "lyon", StringList{"taurus-7"}, PreflightOff
	src, _ = newTestSource(t, cfg, plugin.ModeExec, testAPI{wrap: failMetrics(http.StatusBadGateway)})
	require.NoError(t, src.Preflight(context.Background()), "no data query with preflight = false")
}
