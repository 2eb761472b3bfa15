package servertest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVictoriaMetrics(t *testing.T) {
	vm := VictoriaMetrics(t)
	vm.Post(t, "/api/v2/write", []byte("m,host=a value=1.5 1795556357000000000\n"))
	out := string(vm.VMExport(t, `{__name__="m_value"}`))
	require.Contains(t, out, `"host":"a"`)
	require.Contains(t, out, `"values":[1.5],"timestamps":[1795556357000]`)
	// An outage: the same address and data after a restart.
	vm.Stop()
	vm.Start(t)
	require.Contains(t, string(vm.VMExport(t, `{__name__="m_value"}`)), `"values":[1.5]`)
}

func TestInfluxDB1(t *testing.T) {
	db := InfluxDB1(t)
	db.InfluxCreateDatabase(t, "alumet")
	db.Post(t, "/write?db=alumet&precision=ns", []byte("m,host=a value=1.5 1795556357000000001\n"))
	out := string(db.InfluxQuery(t, "alumet", `SELECT * FROM "m"`))
	require.Contains(t, out, `[1795556357000000001,"a",1.5]`, out)
}

func TestPrometheus(t *testing.T) {
	p := Prometheus(t, PrometheusOptions{})
	out := string(p.Get(t, "/api/v1/status/config"))
	require.True(t, strings.Contains(out, "out_of_order_time_window: 30d"), out)
}

func TestBinaryMissing(t *testing.T) {
	t.Setenv(RequireEnv, "")
	ran := false
	t.Run("skip", func(t *testing.T) {
		defer func() { ran = true }()
		Binary(t, "no-such-server-binary", "no-such-package")
		t.Error("not skipped")
	})
	require.True(t, ran)
}
