package emulator

import (
	"bytes"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func sameTime(t *testing.T, want, got time.Time) {
	t.Helper()
	require.True(t, want.Equal(got), "want %s, got %s", want, got)
}

func lastOf(t *testing.T, rows []jsonRow, metric string) time.Time {
	t.Helper()
	f := filter(rows, metric, "")
	require.NotEmpty(t, f, metric)
	return f[len(f)-1].time(t)
}

func TestIngestionLag(t *testing.T) {
	now := winterNow
	e, clk := newEmu(t, Config{Seed: 1, Lag: 3 * time.Second, Monitored: []string{"orion-3"}}, now)
	q := func() []jsonRow {
		return rowsOf(t, e, "lyon", vals("nodes", "taurus-7,orion-3", "start_time", epoch(now.Add(-30*time.Second)), "end_time", epoch(now.Add(time.Minute))))
	}
	rows := q()
	// 1 Hz mean of second S: visible at S + 1 s + lag.
	sameTime(t, now.Add(-4*time.Second), lastOf(t, filter(rows, wpw, "taurus-7"), wpw))
	// Raw frames and other rows: visible at ts + lag.
	rawLast := lastOf(t, filter(rows, wpw, "orion-3"), wpw)
	require.True(t, !rawLast.After(now.Add(-3*time.Second)) && rawLast.After(now.Add(-3*time.Second-20*time.Millisecond)), rawLast)
	bmc := lastOf(t, filter(rows, "bmc_node_power_watt", "taurus-7"), "bmc_node_power_watt")
	require.True(t, !bmc.After(now.Add(-3*time.Second)) && bmc.After(now.Add(-8*time.Second)), bmc)

	clk.Add(999 * time.Millisecond)
	sameTime(t, now.Add(-4*time.Second), lastOf(t, filter(q(), wpw, "taurus-7"), wpw))
	clk.Add(time.Millisecond)
	sameTime(t, now.Add(-3*time.Second), lastOf(t, filter(q(), wpw, "taurus-7"), wpw))
	clk.Set(now.Add(time.Hour))
	// Once the lag has passed, the whole window is there.
	sameTime(t, now.Add(time.Minute), lastOf(t, filter(q(), wpw, "taurus-7"), wpw))
}

// sameRows compares HTTP rows with Expected rows.
func sameRows(t *testing.T, got []jsonRow, want []Row) {
	t.Helper()
	require.Equal(t, len(want), len(got))
	for i, w := range want {
		g := got[i]
		require.Equal(t, FormatTimestamp(w.Timestamp), g.Timestamp, i)
		require.Equal(t, w.DeviceID, g.DeviceID, i)
		require.Equal(t, w.MetricID, g.MetricID, i)
		if w.Null {
			require.Equal(t, "null", string(g.Value))
		} else {
			require.Equal(t, string(appendFloat8(nil, w.Value)), string(g.Value), i)
		}
		labels := map[string]any{}
		for k, v := range w.Labels {
			if ss, ok := v.([]string); ok {
				l := make([]any, len(ss))
				for j, s := range ss {
					l[j] = s
				}
				v = l
			}
			labels[k] = v
		}
		require.Empty(t, cmp.Diff(labels, g.Labels), i)
	}
}

func TestExpectedMatchesHTTPOnceLagPassed(t *testing.T) {
	now := winterNow
	cfg := Config{Seed: 21, Lag: 3 * time.Second, Monitored: []string{"gemini-1"},
		Jobs: []Job{{ID: 5, Site: "lyon", Nodes: []string{"taurus-7"}, Start: now.Add(-50 * time.Second), Stop: now.Add(-40 * time.Second), Types: []string{"monitor"}}}}
	e, clk := newEmu(t, cfg, now)
	a, b := now.Add(-60*time.Second), now.Add(-2*time.Second)
	post := do(t, e, "POST", "/stable/sites/lyon/metrics", `{"metric_id":"app","device_id":"taurus-7","timestamp":`+epoch(now.Add(-30*time.Second))+`,"value":1,"labels":{"x":[1,"y"],"_device_orig":["a"]}}`, nil)
	require.Equal(t, http.StatusOK, post.status, post.body)

	want, err := e.Expected("lyon", []string{"taurus-7.lyon.grid5000.fr", "gemini-1"}, nil, a, b)
	require.NoError(t, err)
	require.Greater(t, len(want), 5000)
	require.Equal(t, []string{"a"}, filter2(want, "app")[0].Labels["_device_orig"])
	// Before the lag has passed the endpoint returns fewer rows.
	early := rowsOf(t, e, "lyon", vals("nodes", "taurus-7,gemini-1", "start_time", epoch(a), "end_time", epoch(b)))
	require.Less(t, len(early), len(want))
	clk.Add(5 * time.Second)
	got := rowsOf(t, e, "lyon", vals("nodes", "taurus-7,gemini-1", "start_time", epoch(a), "end_time", epoch(b)))
	sameRows(t, got, want)
	// Metrics filter and FQDN cut as in GET.
	w2, err := e.Expected("lyon", []string{"taurus-7"}, []string{wpw, "app"}, a, b)
	require.NoError(t, err)
	sameRows(t, rowsOf(t, e, "lyon", vals("nodes", "taurus-7", "metrics", wpw+",app", "start_time", epoch(a), "end_time", epoch(b))), w2)
	// ExpectedQuery supports every parameter.
	w3, err := e.ExpectedQuery("lyon", vals("job_id", "5", "metrics", wpw, "as_rate", "true"))
	require.NoError(t, err)
	sameRows(t, rowsOf(t, e, "lyon", vals("job_id", "5", "metrics", wpw, "as_rate", "true")), w3)
	_, err = e.Expected("atlantis", []string{"x"}, nil, a, b)
	require.Error(t, err)
	_, err = e.Expected("lyon", nil, nil, a, b)
	require.Error(t, err)
}

func filter2(rows []Row, metric string) []Row {
	var out []Row
	for _, r := range rows {
		if r.MetricID == metric {
			out = append(out, r)
		}
	}
	return out
}

func TestSummary(t *testing.T) {
	now := winterNow // a bucket boundary
	e, _ := newEmu(t, Config{Seed: 13, Lag: 3 * time.Second, Monitored: []string{"taurus-4"}}, now)
	sum := func(kv ...string) []jsonRow {
		return rowsOf(t, e, "lyon", vals(append(kv, "summary", "true")...))
	}
	rows := sum("nodes", "taurus-7", "metrics", wpw, "start_time", epoch(now.Add(-time.Hour)), "end_time", epoch(now))
	// Buckets older than now - 10 min only: -60 ... -15 min.
	require.Len(t, rows, 10)
	require.Equal(t, "2025-01-15T09:00:00+01:00", rows[0].Timestamp)
	require.Equal(t, "2025-01-15T09:45:00+01:00", rows[9].Timestamp)
	for _, r := range rows {
		b := r.time(t)
		raw, err := e.Expected("lyon", []string{"taurus-7"}, []string{wpw}, b, b.Add(5*time.Minute-time.Microsecond))
		require.NoError(t, err)
		require.Len(t, raw, 300)
		s := 0.0
		for _, x := range raw {
			s += x.Value
		}
		require.InDelta(t, s/300, r.float(t), 1e-9)
		require.Equal(t, map[string]any{"_device_orig": []any{"wattmetre1-port6"}}, r.Labels)
	}
	// The window applies to bucket timestamps.
	require.Equal(t, "2025-01-15T09:05:00+01:00", sum("nodes", "taurus-7", "metrics", wpw, "start_time", epoch(now.Add(-58*time.Minute)), "end_time", epoch(now))[0].Timestamp)
	require.Len(t, sum("nodes", "taurus-7", "metrics", wpw, "start_time", epoch(now.Add(-58*time.Minute)), "end_time", epoch(now.Add(-50*time.Minute))), 2)
	// Counters: MAX per bucket.
	wh := sum("nodes", "taurus-4", "metrics", "bmc_node_power_watthour_total", "start_time", epoch(now.Add(-time.Hour)), "end_time", epoch(now))
	require.Len(t, wh, 10)
	for _, r := range wh {
		b := r.time(t)
		raw, err := e.Expected("lyon", []string{"taurus-4"}, []string{"bmc_node_power_watthour_total"}, b, b.Add(5*time.Minute-time.Microsecond))
		require.NoError(t, err)
		require.Len(t, raw, 60)
		require.Equal(t, raw[len(raw)-1].Value, r.float(t))
	}
	// Multi-PSU: the sum of the ports' aggregates.
	g := sum("nodes", "gemini-1", "metrics", wpw, "start_time", epoch(now.Add(-time.Hour)), "end_time", epoch(now))
	p30 := sum("devices", "wattmetrev3-1-port30", "metrics", wpw, "start_time", epoch(now.Add(-time.Hour)), "end_time", epoch(now))
	p31 := sum("devices", "wattmetrev3-1-port31", "metrics", wpw, "start_time", epoch(now.Add(-time.Hour)), "end_time", epoch(now))
	require.Len(t, g, 10)
	for i := range g {
		require.Equal(t, p30[i].float(t)+p31[i].float(t), g[i].float(t))
		require.Equal(t, []any{"wattmetrev3-1-port30", "wattmetrev3-1-port31"}, g[i].Labels["_device_orig"])
	}
	// Default window (last 5 min) has no complete-enough bucket.
	require.Empty(t, sum("nodes", "taurus-7"))
	// Configurable summary lag.
	e2, _ := newEmu(t, Config{Seed: 13, SummaryLag: time.Minute}, now)
	require.Len(t, rowsOf(t, e2, "lyon", vals("nodes", "taurus-7", "metrics", wpw, "summary", "t", "start_time", epoch(now.Add(-time.Hour)), "end_time", epoch(now))), 11)
}

func TestAsRate(t *testing.T) {
	now := winterNow
	e, _ := newEmu(t, Config{Seed: 1, Monitored: []string{"taurus-4"}}, now)
	t0 := now.Add(-time.Minute)
	at := func(d time.Duration) string { return epoch(t0.Add(d)) }
	body := `[
	 {"metric_id":"c_total","device_id":"app","timestamp":` + at(0) + `,"value":100},
	 {"metric_id":"c_total","device_id":"app","timestamp":` + at(time.Second) + `,"value":300},
	 {"metric_id":"c_total","device_id":"app","timestamp":` + at(time.Second) + `,"value":310},
	 {"metric_id":"c_total","device_id":"app","timestamp":` + at(3*time.Second) + `,"value":250},
	 {"metric_id":"c_total","device_id":"app","timestamp":` + at(4*time.Second) + `,"value":200},
	 {"metric_id":"c_total","device_id":"app","timestamp":` + at(5*time.Second) + `,"value":260},
	 {"metric_id":"c_total","device_id":"app","timestamp":` + at(2*time.Second) + `,"value":5,"labels":{"k":"b"}},
	 {"metric_id":"c_total","device_id":"app","timestamp":` + at(4*time.Second) + `,"value":9,"labels":{"k":"b"}}]`
	res := do(t, e, "POST", "/stable/sites/lyon/metrics", body, map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusOK, res.status, res.body)
	rate := func(start time.Duration) []string {
		rows := rowsOf(t, e, "lyon", vals("devices", "app", "as_rate", "true", "start_time", at(start), "end_time", at(10*time.Second)))
		var out []string
		for _, r := range rows {
			out = append(out, r.Timestamp[17:19]+" "+sprint(r.Labels["k"])+" "+string(r.Value))
		}
		return out
	}
	require.Equal(t, []string{
		"00 <nil> null",
		"01 <nil> 200",  // (300-100)/1
		"01 <nil> null", // same timestamp as the previous row
		"02 b null",     // first row of its series
		"03 <nil> 125",  // wrap: (runmax 310 - 310 + 250)/2
		"04 b 2",        // (9-5)/2; ties ordered by labels
		"04 <nil> 260",  // wrap: (runmax 310 - 250 + 200)/1
		"05 <nil> 60",   // (260-200)/1
	}, rate(0))
	// The first row in the window is null even if older data exists.
	require.Equal(t, []string{"03 <nil> null", "04 b null", "04 <nil> 200", "05 <nil> 60"}, rate(3*time.Second))
	// Real counters give non-negative rates.
	rows := rowsOf(t, e, "lyon", vals("nodes", "taurus-4", "metrics", "bmc_node_power_watthour_total", "as_rate", "yes", "start_time", epoch(now.Add(-10*time.Minute)), "end_time", epoch(now)))
	require.Len(t, rows, 120)
	require.Equal(t, "null", string(rows[0].Value))
	for _, r := range rows[1:] {
		v := r.float(t)
		require.True(t, v >= 0 && v <= 0.2, v)
	}
	// as_rate combines with summary.
	sr := rowsOf(t, e, "lyon", vals("nodes", "taurus-4", "metrics", "bmc_node_power_watthour_total", "as_rate", "1", "summary", "1", "start_time", epoch(now.Add(-time.Hour)), "end_time", epoch(now)))
	require.Len(t, sr, 10)
	require.Equal(t, "null", string(sr[0].Value))
	require.NotEqual(t, "null", string(sr[1].Value))
}

func TestPostThenGet(t *testing.T) {
	now := winterNow
	e, _ := newEmu(t, Config{Seed: 1, Lag: 3 * time.Second}, now)
	post := func(body string) response {
		return do(t, e, "POST", "/stable/sites/lyon/metrics", body, map[string]string{"Content-Type": "application/json"})
	}
	res := post(`{"timestamp": 1736931590.25, "metric_id": "app_phase", "device_id": "taurus-7", "value": 2, "labels": {"step": "init"}}`)
	require.Equal(t, http.StatusOK, res.status)
	require.Equal(t, `[{"timestamp":"2025-01-15T09:59:50.25+01:00","device_id":"taurus-7","metric_id":"app_phase","value":2,"labels":{"step": "init"}}]`, res.body)
	res = post(`[{"metric_id":"m1"},{"metric_id":"m2","timestamp":"2025-01-15T09:59:51","value":"1.5","device_id":"taurus-8","labels":{"n":1.50,"b":true,"l":[1,"x"],"long_key":null}}]`)
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Equal(t, `[{"timestamp":"2025-01-15T10:00:00+01:00","device_id":"emulator-caller","metric_id":"m1","value":"NaN","labels":{}}, `+"\n "+
		`{"timestamp":"2025-01-15T09:59:51+01:00","device_id":"taurus-8","metric_id":"m2","value":1.5,"labels":{"b": true, "l": [1, "x"], "n": 1.50, "long_key": null}}]`, res.body)
	// Pushed rows are visible at once, with the other rows of the node.
	rows := rowsOf(t, e, "lyon", vals("nodes", "taurus-7.lyon.grid5000.fr", "metrics", "app_phase", "start_time", epoch(now.Add(-time.Minute)), "end_time", epoch(now.Add(time.Minute))))
	require.Len(t, rows, 1)
	require.Equal(t, "2", string(rows[0].Value))
	rows = rowsOf(t, e, "lyon", vals("nodes", "emulator-caller", "start_time", epoch(now.Add(-time.Second)), "end_time", epoch(now)))
	require.Len(t, rows, 1)
	require.Equal(t, `"NaN"`, string(rows[0].Value))
	// Other sites do not see them.
	require.Empty(t, rowsOf(t, e, "nancy", vals("nodes", "taurus-7", "metrics", "app_phase", "start_time", epoch(now.Add(-time.Minute)))))

	errs := []struct {
		name, body string
		status     int
		want       string
	}{
		{"invalid json", `[{"metric_id":`, 400, `{"hint":null,"details":null,"code":"PGRST102","message":"Empty or invalid json"}`},
		{"empty body", ``, 400, `{"hint":null,"details":null,"code":"PGRST102","message":"Empty or invalid json"}`},
		{"not an object", `[1]`, 400, `{"hint":null,"details":null,"code":"PGRST102","message":"Empty or invalid json"}`},
		{"no metric_id", `{"value":1}`, 400, `{"hint":null,"details":null,"code":"23502","message":"null value in column \"metric_id\" of relation \"metrics\" violates not-null constraint"}`},
		{"unknown column", `{"metric_id":"x","unit":"W"}`, 400, `{"hint":null,"details":null,"code":"PGRST204","message":"Could not find the 'unit' column of 'metrics' in the schema cache"}`},
		{"bad value", `{"metric_id":"x","value":"abc"}`, 400, `{"hint":null,"details":null,"code":"22P02","message":"invalid input syntax for type double precision: \"abc\""}`},
		{"bad timestamp", `{"metric_id":"x","timestamp":"soon"}`, 400, `{"hint":null,"details":null,"code":"22007","message":"spiexceptions.InvalidDatetimeFormat: invalid input syntax for type timestamp with time zone: \"soon\""}`},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			res := post(tc.body)
			require.Equal(t, tc.status, res.status)
			require.Equal(t, tc.want, res.body)
		})
	}
	// A failed batch inserts nothing.
	require.Empty(t, rowsOf(t, e, "lyon", vals("nodes", "emulator-caller", "metrics", "x")))
	require.Equal(t, "[]", post(`[]`).body)
}

func TestBasicAuth(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	e, _ := newEmu(t, Config{Seed: 1, Users: map[string]string{"alice": "s3cret"}, Logger: logger}, winterNow)
	target := "/stable/sites/lyon/metrics?nodes=taurus-1&metrics=" + wpw
	basic := func(u, p string) map[string]string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(u, p)
		return map[string]string{"Authorization": req.Header.Get("Authorization")}
	}
	for _, tc := range []struct {
		name   string
		method string
		hdr    map[string]string
		status int
	}{
		{"no credentials", "GET", nil, 401},
		{"wrong password", "GET", basic("alice", "wrong"), 401},
		{"unknown user", "GET", basic("bob", "s3cret"), 401},
		{"empty password", "GET", basic("alice", ""), 401},
		{"not basic", "GET", map[string]string{"Authorization": "Bearer s3cret"}, 401},
		{"good", "GET", basic("alice", "s3cret"), 200},
		{"post needs auth too", "POST", nil, 401},
		{"good post", "POST", basic("alice", "s3cret"), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method == "POST" {
				body = `{"metric_id":"x"}`
			}
			res := do(t, e, tc.method, target, body, tc.hdr)
			require.Equal(t, tc.status, res.status, res.body)
			if tc.status == 401 {
				require.Equal(t, `Basic realm="Grid5000"`, res.header.Get("WWW-Authenticate"))
				require.Equal(t, "text/plain; charset=utf-8", res.header.Get("Content-Type"))
				require.False(t, strings.HasPrefix(res.body, "{"))
			}
		})
	}
	require.Equal(t, 200, get(t, e, "/healthz").status)
	require.Equal(t, 401, get(t, e, "/stable/sites/lyon/clusters/taurus").status)
	require.NotContains(t, logs.String(), "s3cret")
	require.NotContains(t, logs.String(), "Authorization")
	require.NotContains(t, logs.String(), "YWxpY2U6czNjcmV0") // base64 of alice:s3cret
	require.Contains(t, logs.String(), "user=alice")
	require.Contains(t, logs.String(), "status=401")
}

func TestReferenceDocuments(t *testing.T) {
	e, _ := newEmu(t, Config{}, winterNow)
	js := func(path string) any {
		res := get(t, e, path)
		require.Equal(t, http.StatusOK, res.status, path)
		require.Equal(t, "application/json", res.header.Get("Content-Type"))
		var v any
		require.NoError(t, jsonUnmarshal(res.body, &v))
		return v
	}
	sites := js("/stable/sites").(map[string]any)
	require.EqualValues(t, 12, sites["total"])
	pdu := js("/stable/sites/lyon/pdus/wattmetre1").(map[string]any)
	require.Equal(t, "OmegaWatt", pdu["vendor"])
	require.Equal(t, "v2", pdu["model"])
	ports := pdu["ports"].(map[string]any)
	require.Equal(t, "orion-3", ports["40"])
	require.Equal(t, "taurus-7", ports["6"])
	require.Equal(t, "v3", js("/stable/sites/lyon/pdus/wattmetrev3-1").(map[string]any)["model"])
	require.Equal(t, "gros-41", js("/stable/sites/nancy/pdus/gros-pdu3").(map[string]any)["ports"].(map[string]any)["1"])
	node := js("/sid/sites/nancy/clusters/gros/nodes/gros-41").(map[string]any)
	require.Equal(t, []any{
		map[string]any{"uid": "gros-pdu3", "port": float64(1)},
		map[string]any{"uid": "gros-wattmetre2", "port": float64(30), "kind": "wattmetre-only"},
	}, node["pdu"])
	require.Equal(t, "gros-41.nancy.grid5000.fr", node["network_address"])
	require.Len(t, js("/stable/sites/nancy/clusters/gros/nodes").(map[string]any)["items"], 76)
	require.Len(t, js("/stable/sites/lyon/clusters").(map[string]any)["items"], 4)
	require.Len(t, js("/stable/sites/bordeaux/clusters").(map[string]any)["items"], 0)
	require.Len(t, js("/stable/sites/lyon/pdus").(map[string]any)["items"], 2)
	// Every wattmetre catalogue entry matches the model's raw period.
	for _, s := range e.topo.Sites {
		for _, c := range s.Clusters {
			doc := js("/stable/sites/" + s.UID + "/clusters/" + c.UID).(map[string]any)
			for _, m := range doc["metrics"].([]any) {
				md := m.(map[string]any)
				if md["name"] != wpw {
					continue
				}
				for _, n := range c.Nodes {
					for _, np := range n.PDU {
						if p := s.PDU(np.UID); p.IsWattmetre() {
							require.EqualValues(t, p.RawPeriodMs(), md["optional_period"], c.UID)
						}
					}
				}
			}
		}
	}
	require.Equal(t, http.StatusOK, get(t, e, "/stable/sites/lyon/metrics/dashboard").status)
}

func TestEmptyAndNaNFormatting(t *testing.T) {
	e, _ := newEmu(t, Config{}, winterNow)
	require.Equal(t, "[]", get(t, e, "/stable/sites/lyon/metrics?nodes=nobody").body)
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{196, "196"}, {187.43, "187.43"}, {-0.5, "-0.5"}, {1e15, "1e+15"}, {123456789012, "123456789012"},
		{0.00001, "1e-05"}, {0.0001, "0.0001"}, {math.NaN(), `"NaN"`}, {math.Inf(1), `"Infinity"`}, {math.Inf(-1), `"-Infinity"`}, {0, "0"},
	} {
		require.Equal(t, tc.want, string(appendFloat8(nil, tc.v)))
	}
	require.Equal(t, `{"a": "x", "bb": ["p", "q"], "_device_orig": ["z"]}`, string(appendJSONB(nil, map[string]any{"_device_orig": []string{"z"}, "bb": []string{"p", "q"}, "a": "x"})))
	require.Equal(t, `"a\"b\\c\n\u0001é<>&"`, string(appendJSONString(nil, "a\"b\\c\n\x01é<>&")))
	require.Equal(t, "2025-01-15T10:00:00+01:00", FormatTimestamp(winterNow))
	require.Equal(t, "2025-07-15T10:00:00.000001+02:00", FormatTimestamp(summerNow.Add(time.Microsecond)))
	require.Equal(t, "2025-07-15T10:00:00.25+02:00", FormatTimestamp(summerNow.Add(250*time.Millisecond+400*time.Nanosecond)))
}
