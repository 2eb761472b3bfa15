package kwollect

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClusterMetrics(t *testing.T) {
	doc, err := os.ReadFile("testdata/cluster_taurus_gros.json")
	require.NoError(t, err)
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path != "/stable/sites/lyon/clusters/taurus" {
			w.WriteHeader(404)
			_, _ = w.Write([]byte("Cannot find resource " + r.URL.Path))
			return
		}
		_, _ = w.Write(doc)
	}))
	defer srv.Close()
	c, err := NewClient(Options{BaseURL: srv.URL + "/stable"})
	require.NoError(t, err)

	ms, err := c.ClusterMetrics(context.Background(), "lyon", "taurus")
	require.NoError(t, err)
	require.Len(t, ms, 9)
	require.Equal(t, MetricInfo{
		Name: "wattmetre_power_watt", Description: "Power consumption of node reported by wattmetre, in watt",
		Period: time.Second, OptionalPeriod: 20 * time.Millisecond, Source: json.RawMessage(`{"protocol":"wattmetre"}`),
	}, ms[0])
	require.Equal(t, "bmc_cpu_temp_celsius", ms[3].Name)
	require.Equal(t, map[string]string{"cpu": "1"}, ms[3].Labels)
	require.Equal(t, 0.1, ms[3].ScaleFactor)
	require.Zero(t, ms[3].Period)
	require.Equal(t, 5*time.Second, ms[3].OptionalPeriod)
	require.Len(t, ms[7].OnlyFor, 36)
	require.True(t, ms[7].AppliesTo("gros-41.nancy.grid5000.fr"))
	require.False(t, ms[7].AppliesTo("gros-1"))
	require.True(t, ms[0].AppliesTo("anything"))

	require.Equal(t, map[string]time.Duration{
		"wattmetre_power_watt":          time.Second,
		"bmc_node_power_watt":           5 * time.Second,
		"bmc_node_power_watthour_total": 5 * time.Second,
		"bmc_cpu_temp_celsius":          5 * time.Second,
		"prom_default_metrics":          15 * time.Second,
		"network_ifacein_bytes_total":   10 * time.Second,
		"pdu_outlet_power_watt":         time.Second,
	}, Periods(ms, "taurus-7", false))
	require.Equal(t, 20*time.Millisecond, Periods(ms, "taurus-7", true)["wattmetre_power_watt"])
	require.Equal(t, 5*time.Second, Periods(ms, "taurus-7", true)["bmc_node_power_watt"], "no optional period: the default one")

	_, err = c.ClusterMetrics(context.Background(), "lyon", "nope")
	var ge *GatewayError
	require.ErrorAs(t, err, &ge)
	require.Equal(t, 404, ge.Status)
	require.Contains(t, ge.Body, "Cannot find resource /stable/sites/lyon/clusters/nope")
	require.Contains(t, err.Error(), "wrong site or cluster")
	require.False(t, IsRetryable(err))
}

func TestClusterMetricsBadBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"metrics": [{"name": 3}]}`))
	}))
	defer srv.Close()
	c, err := NewClient(Options{BaseURL: srv.URL})
	require.NoError(t, err)
	_, err = c.ClusterMetrics(context.Background(), "lyon", "taurus")
	require.ErrorContains(t, err, "cluster document from "+srv.URL+"/sites/lyon/clusters/taurus")
}

func TestMsDuration(t *testing.T) {
	require.Equal(t, 20*time.Millisecond, msDuration(20))
	require.Equal(t, 1500*time.Microsecond, msDuration(1.5))
	require.Zero(t, msDuration(0))
	require.Zero(t, msDuration(-5))
	require.Zero(t, msDuration(1e30))
}

func TestClusterOf(t *testing.T) {
	for node, want := range map[string]string{"taurus-7": "taurus", "gros-uva-3": "gros-uva", "taurus-7.lyon.grid5000.fr": "taurus", "nodash": "nodash", "-1": "-1", "": ""} {
		require.Equal(t, want, ClusterOf(node), node)
	}
}
