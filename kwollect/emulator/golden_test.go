package emulator

import (
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGoldenResponses checks the exact bytes of a few small responses:
// field order, Paris offsets in winter and summer, trimmed fractions,
// integers without ".0", "NaN", jsonb labels, json_agg separators.
func TestGoldenResponses(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 42, Lag: 3 * time.Second}, winterNow)
	post := do(t, e, "POST", "/stable/sites/lyon/metrics", `[
	  {"metric_id":"app_phase","device_id":"taurus-7","timestamp":"2025-01-15T09:59:55.5","value":1.5,"labels":{"step":"a \"quoted\" é","n":3}},
	  {"metric_id":"app_note","device_id":"taurus-7","timestamp":1736931596}]`, nil)
	require.Equal(t, http.StatusOK, post.status, post.body)
	queries := []string{
		"/stable/sites/lyon/metrics?nodes=taurus-7,gemini-1&start_time=" + epoch(winterNow.Add(-10*time.Second)) + "&end_time=" + epoch(winterNow.Add(-4*time.Second)),
		"/stable/sites/lyon/metrics?devices=wattmetrev3-1-port30&metrics=wattmetre_power_watt&start_time=2024-07-01T12:00:00&end_time=2024-07-01T12:00:02",
		"/stable/sites/nancy/metrics?nodes=gros-41&metrics=pdu_outlet_power_watt,wattmetre_power_watt&start_time=2025-01-15T09:59:50&end_time=2025-01-15T09:59:52",
		"/stable/sites/lyon/metrics?nodes=nobody",
	}
	var got strings.Builder
	for _, q := range queries {
		res := get(t, e, q)
		require.Equal(t, http.StatusOK, res.status, res.body)
		got.WriteString("GET " + q + "\n" + res.body + "\n\n")
	}
	path := filepath.Join("testdata", "metrics_small.golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got.String()), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(string(want), got.String()))
}

// TestReferenceCatalogue checks that the served taurus/gros catalogues are
// the real reference-API excerpt.
func TestReferenceCatalogue(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "08_reference_cluster_metrics_taurus_gros.json"))
	require.NoError(t, err)
	var fixture []any
	require.NoError(t, json.Unmarshal(raw, &fixture))
	require.Len(t, fixture, 9)
	e, _ := newEmu(t, Config{}, winterNow)
	metrics := func(site, cluster string) []any {
		res := get(t, e, "/stable/sites/"+site+"/clusters/"+cluster)
		require.Equal(t, http.StatusOK, res.status)
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(res.body), &doc))
		require.Equal(t, cluster, doc["uid"])
		return doc["metrics"].([]any)
	}
	require.Empty(t, cmp.Diff(fixture[:7], metrics("lyon", "taurus")))
	gros := metrics("nancy", "gros")
	for _, want := range fixture[7:] {
		found := false
		for _, m := range gros {
			found = found || cmp.Equal(want, m)
		}
		require.True(t, found, "%v", want)
	}
	// The Go structs re-encode the fixture with the same keys in the same order.
	var typed []MetricDesc
	require.NoError(t, json.Unmarshal(raw, &typed))
	for i, md := range typed {
		b, err := json.Marshal(md)
		require.NoError(t, err)
		var back any
		require.NoError(t, json.Unmarshal(b, &back))
		require.Empty(t, cmp.Diff(fixture[i], back))
	}
}

func TestDefaultTopology(t *testing.T) {
	topo := DefaultTopology()
	idx, err := topo.index()
	require.NoError(t, err)
	require.Len(t, topo.Sites, 12)
	for _, s := range SiteUIDs {
		require.NotNil(t, topo.Site(s), s)
	}
	require.Len(t, idx["nancy"].nodes, 76)
	require.Equal(t, "taurus-7", topo.Site("lyon").PDU("wattmetre1").Ports[6])
	require.Equal(t, "orion-3", topo.Site("lyon").PDU("wattmetre1").Ports[40])
	// Unknown nodes in the configuration are errors.
	for _, cfg := range []Config{
		{Monitored: []string{"taurus-99"}},
		{CPULoadNodes: []string{"nope"}},
		{Jobs: []Job{{ID: 1, Nodes: []string{"x"}}}},
		{Jobs: []Job{{ID: 1, Site: "atlantis", Nodes: []string{"taurus-1"}}}},
		{Load: []LoadPhase{{Nodes: []string{"x"}}}},
		{Lag: -time.Second},
	} {
		_, err := New(cfg)
		require.Error(t, err)
	}
	// A broken topology is rejected.
	bad := DefaultTopology()
	bad.Site("nancy").Clusters[0].Nodes[0].UID = "taurus-1"
	_, err = New(Config{Topology: bad})
	require.Error(t, err)
}
