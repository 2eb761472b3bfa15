package emulator

import (
	"net/http"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

const wpw = "wattmetre_power_watt"

func TestNodeVersusDeviceIDs(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	a, b := winterNow.Add(-20*time.Second), winterNow.Add(-10*time.Second)
	node := rowsOf(t, e, "lyon", vals("nodes", "taurus-7", "metrics", wpw, "start_time", epoch(a), "end_time", epoch(b)))
	dev := rowsOf(t, e, "lyon", vals("devices", "wattmetre1-port6", "metrics", wpw, "start_time", epoch(a), "end_time", epoch(b)))
	require.Len(t, node, 11)
	require.Len(t, dev, 11)
	for i := range node {
		require.Equal(t, "taurus-7", node[i].DeviceID)
		require.Equal(t, map[string]any{"_device_orig": []any{"wattmetre1-port6"}}, node[i].Labels)
		require.Equal(t, "wattmetre1-port6", dev[i].DeviceID)
		require.Equal(t, map[string]any{}, dev[i].Labels)
		require.Equal(t, node[i].Timestamp, dev[i].Timestamp)
		require.Equal(t, string(node[i].Value), string(dev[i].Value))
	}
	// nodes and devices are merged.
	both := rowsOf(t, e, "lyon", vals("nodes", "taurus-7", "devices", "wattmetre1-port6", "metrics", wpw, "start_time", epoch(a), "end_time", epoch(b)))
	require.Len(t, both, 22)
	// Duplicates count once.
	dup := rowsOf(t, e, "lyon", vals("nodes", "taurus-7,taurus-7", "devices", "taurus-7", "metrics", wpw, "start_time", epoch(a), "end_time", epoch(b)))
	require.Len(t, dup, 11)
	// A node of another site is unknown here.
	require.Empty(t, rowsOf(t, e, "nancy", vals("nodes", "taurus-7", "start_time", epoch(a), "end_time", epoch(b))))
}

func TestIDListSemantics(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	a, b := epoch(winterNow.Add(-20*time.Second)), epoch(winterNow.Add(-10*time.Second))
	q := func(kv ...string) []jsonRow {
		return rowsOf(t, e, "lyon", vals(append(kv, "start_time", a, "end_time", b)...))
	}
	short := q("nodes", "taurus-7", "metrics", wpw)
	require.NotEmpty(t, short)
	tests := []struct {
		name    string
		kv      []string
		devices []string // distinct device ids expected
	}{
		{"fqdn cut at first dot", []string{"nodes", "taurus-7.lyon.grid5000.fr", "metrics", wpw}, []string{"taurus-7"}},
		{"cut applies to devices too", []string{"devices", "taurus-7.whatever", "metrics", wpw}, []string{"taurus-7"}},
		{"items not trimmed", []string{"nodes", "taurus-7, taurus-8", "metrics", wpw}, []string{"taurus-7"}},
		{"leading space matches nothing", []string{"nodes", " taurus-7", "metrics", wpw}, nil},
		{"unknown node", []string{"nodes", "taurus-99", "metrics", wpw}, nil},
		{"empty items", []string{"nodes", ",,", "metrics", wpw}, nil},
		{"two nodes", []string{"nodes", "taurus-8,taurus-7", "metrics", wpw}, []string{"taurus-7", "taurus-8"}},
		{"metric not trimmed", []string{"nodes", "taurus-7", "metrics", "bmc_node_power_watt, wattmetre_power_watt"}, []string{"taurus-7"}},
		{"metric prefix is no match", []string{"nodes", "taurus-7", "metrics", "wattmetre"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows := q(tc.kv...)
			var devs []string
			for d := range countBy(rows, func(r jsonRow) string { return r.DeviceID }) {
				devs = append(devs, d)
			}
			sort.Strings(devs)
			require.Equal(t, tc.devices, devs)
		})
	}
	require.Empty(t, cmp.Diff(short, q("nodes", "taurus-7.lyon.grid5000.fr", "metrics", wpw)))
	// "metric not trimmed": only bmc_node_power_watt matched.
	for _, r := range q("nodes", "taurus-7", "metrics", "bmc_node_power_watt, wattmetre_power_watt") {
		require.Equal(t, "bmc_node_power_watt", r.MetricID)
	}
}

func TestMetricsFilter(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	a, b := epoch(winterNow.Add(-30*time.Second)), epoch(winterNow.Add(-10*time.Second))
	all := rowsOf(t, e, "lyon", vals("nodes", "taurus-7", "start_time", a, "end_time", b))
	got := countBy(all, func(r jsonRow) string { return r.MetricID })
	// Period-0 metrics (watthour, temperatures, prom) need a monitor job.
	require.Equal(t, map[string]int{"wattmetre_power_watt": 21, "bmc_node_power_watt": 4, "network_ifacein_bytes_total": 2}, got)
	two := rowsOf(t, e, "lyon", vals("nodes", "taurus-7", "metrics", "network_ifacein_bytes_total,bmc_node_power_watt", "start_time", a, "end_time", b))
	require.Equal(t, map[string]int{"bmc_node_power_watt": 4, "network_ifacein_bytes_total": 2}, countBy(two, func(r jsonRow) string { return r.MetricID }))
	// Empty metrics = all.
	require.Len(t, rowsOf(t, e, "lyon", vals("nodes", "taurus-7", "metrics", "", "start_time", a, "end_time", b)), len(all))
	// Rows are ordered by timestamp.
	for i := 1; i < len(all); i++ {
		require.False(t, all[i].time(t).Before(all[i-1].time(t)))
	}
}

func TestTimeBounds(t *testing.T) {
	S := winterNow.Add(-time.Minute) // 09:59:00+01:00, a whole second
	tests := []struct {
		name       string
		now        time.Time
		start, end string
		first      string // first row timestamp
		n          int
	}{
		{"epoch inclusive", winterNow, epoch(S), epoch(S.Add(2 * time.Second)), "2025-01-15T09:59:00+01:00", 3},
		{"epoch start +1µs", winterNow, epoch(S.Add(time.Microsecond)), epoch(S.Add(2 * time.Second)), "2025-01-15T09:59:01+01:00", 2},
		{"epoch end -1µs", winterNow, epoch(S), epoch(S.Add(2*time.Second - time.Microsecond)), "2025-01-15T09:59:00+01:00", 2},
		{"integer epoch", winterNow, "1736931540", "1736931542", "2025-01-15T09:59:00+01:00", 3},
		{"exponent epoch", winterNow, "1.73693154e9", "1736931542.0", "2025-01-15T09:59:00+01:00", 3},
		{"naive winter = Paris", winterNow, "2025-01-15T09:59:00", "2025-01-15 09:59:02", "2025-01-15T09:59:00+01:00", 3},
		{"naive without seconds", winterNow, "2025-01-15T09:59", "2025-01-15 09:59:02.000", "2025-01-15T09:59:00+01:00", 3},
		{"Z", winterNow, "2025-01-15T08:59:00Z", "2025-01-15T08:59:02Z", "2025-01-15T09:59:00+01:00", 3},
		{"offset", winterNow, "2025-01-15T10:59:00+02:00", "2025-01-15T07:59:02-01", "2025-01-15T09:59:00+01:00", 3},
		{"plus decoded as space", winterNow, "2025-01-15T09:59:00 01:00", "2025-01-15T09:59:02 0100", "2025-01-15T09:59:00+01:00", 3},
		{"now", winterNow, "2025-01-15T09:59:57", "now", "2025-01-15T09:59:57+01:00", 3},
		{"naive summer = Paris", summerNow, "2025-07-15T09:59:00", "2025-07-15T09:59:02", "2025-07-15T09:59:00+02:00", 3},
		{"summer plus as space", summerNow, "2025-07-15T09:59:00 02:00", "2025-07-15T07:59:02Z", "2025-07-15T09:59:00+02:00", 3},
		{"start after end", winterNow, epoch(S.Add(time.Second)), epoch(S), "", 0},
		{"start equals end", winterNow, epoch(S), epoch(S), "2025-01-15T09:59:00+01:00", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEmu(t, Config{Seed: 3}, tc.now)
			rows := rowsOf(t, e, "lyon", vals("nodes", "taurus-7", "metrics", wpw, "start_time", tc.start, "end_time", tc.end))
			require.Len(t, rows, tc.n)
			if tc.n > 0 {
				require.Equal(t, tc.first, rows[0].Timestamp)
			}
		})
	}
}

func TestPlusAsSpaceInRawQuery(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 3}, winterNow)
	// A raw '+' in the query string decodes to a space.
	raw := get(t, e, "/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=2025-01-15T09:59:00+01:00&end_time=2025-01-15T09:59:02+01:00")
	enc := get(t, e, "/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=2025-01-15T09:59:00%2B01:00&end_time=2025-01-15T09:59:02%2B01:00")
	require.Equal(t, http.StatusOK, raw.status, raw.body)
	require.Equal(t, enc.body, raw.body)
	require.Len(t, decodeRows(t, raw.body), 3)
}

func TestDefaultWindows(t *testing.T) {
	now := winterNow
	tests := []struct {
		name       string
		legacy     bool
		kv         []string
		n          int
		first      time.Time
		last       time.Time
		lastExists bool
	}{
		{"both", false, []string{"start_time", epoch(now.Add(-100 * time.Second)), "end_time", epoch(now.Add(-90 * time.Second))}, 11, now.Add(-100 * time.Second), now.Add(-90 * time.Second), true},
		{"only start: +5 min", false, []string{"start_time", epoch(now.Add(-600 * time.Second))}, 301, now.Add(-600 * time.Second), now.Add(-300 * time.Second), true},
		{"only end: -5 min", false, []string{"end_time", epoch(now.Add(-60 * time.Second))}, 301, now.Add(-360 * time.Second), now.Add(-60 * time.Second), true},
		// The 1 Hz mean of the current second is not written yet.
		{"neither: last 5 min", false, []string{}, 300, now.Add(-300 * time.Second), now.Add(-time.Second), true},
		{"empty values are absent", false, []string{"start_time", "", "end_time", ""}, 300, now.Add(-300 * time.Second), now.Add(-time.Second), true},
		{"legacy: only start runs until now", true, []string{"start_time", epoch(now.Add(-600 * time.Second))}, 600, now.Add(-600 * time.Second), now.Add(-time.Second), true},
		{"legacy: only end unchanged", true, []string{"end_time", epoch(now.Add(-60 * time.Second))}, 301, now.Add(-360 * time.Second), now.Add(-60 * time.Second), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEmu(t, Config{Seed: 2, LegacyUntilNow: tc.legacy}, now)
			rows := rowsOf(t, e, "lyon", vals(append(tc.kv, "nodes", "taurus-2", "metrics", wpw)...))
			require.Len(t, rows, tc.n)
			require.True(t, tc.first.Equal(rows[0].time(t)), rows[0].Timestamp)
			require.True(t, tc.last.Equal(rows[len(rows)-1].time(t)), rows[len(rows)-1].Timestamp)
		})
	}
}

func TestJobID(t *testing.T) {
	now := winterNow
	jobs := []Job{
		{ID: 42, Site: "lyon", Nodes: []string{"taurus-1", "taurus-2.lyon.grid5000.fr"}, Start: now.Add(-10 * time.Minute), Stop: now.Add(-5 * time.Minute)},
		{ID: 43, Site: "lyon", Nodes: []string{"taurus-3"}, Start: now.Add(-2 * time.Minute)},
		{ID: 44, Site: "nancy", Nodes: []string{"gros-41"}, Start: now.Add(-2 * time.Minute)},
		{ID: 45, Nodes: []string{"orion-3"}, Start: now.Add(-time.Minute), Stop: now.Add(-50 * time.Second)},
	}
	e, _ := newEmu(t, Config{Seed: 4, Jobs: jobs}, now)
	count := func(kv ...string) map[string]int {
		return countBy(rowsOf(t, e, "lyon", vals(append(kv, "metrics", wpw)...)), func(r jsonRow) string { return r.DeviceID })
	}
	require.Equal(t, map[string]int{"taurus-1": 301, "taurus-2": 301}, count("job_id", "42"))
	require.Equal(t, map[string]int{"taurus-5": 301}, count("job_id", "42", "nodes", "taurus-5"))
	require.Equal(t, map[string]int{"taurus-5": 301}, count("job_id", "42", "devices", "taurus-5"))
	require.Equal(t, map[string]int{"taurus-1": 101, "taurus-2": 101}, count("job_id", "42", "start_time", epoch(now.Add(-400*time.Second))))
	require.Equal(t, map[string]int{"taurus-1": 11, "taurus-2": 11}, count("job_id", "42", "end_time", epoch(now.Add(-590*time.Second))))
	require.Equal(t, map[string]int{"taurus-1": 3, "taurus-2": 3}, count("job_id", "42", "start_time", epoch(now.Add(-30*time.Second)), "end_time", epoch(now.Add(-28*time.Second))))
	// Running job: until now (the current second's mean is not written yet).
	require.Equal(t, map[string]int{"taurus-3": 120}, count("job_id", "43"))
	// A job without site is known everywhere.
	require.Equal(t, map[string]int{"orion-3": 11}, count("job_id", "45"))
	// A job of another site is unknown here.
	for _, id := range []string{"44", "999", " 999 "} {
		res := get(t, e, "/stable/sites/lyon/metrics?job_id="+url.QueryEscape(id))
		require.Equal(t, http.StatusInternalServerError, res.status)
		require.Equal(t, `{"hint":null,"details":null,"code":"XX000","message":"IndexError: list index out of range"}`, res.body)
	}
}

func TestErrors(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1, Jobs: []Job{{ID: 7, Nodes: []string{"taurus-1"}, Start: winterNow.Add(-time.Hour)}}}, winterNow)
	missing := `{"hint":null,"details":null,"code":"XX000","message":"plpy.Error: Missing 'devices', 'nodes' or 'job_id' argument"}`
	tests := []struct {
		name   string
		query  string
		status int
		body   string
	}{
		{"no device", "", 500, missing},
		{"empty nodes and devices", "nodes=&devices=", 500, missing},
		{"metrics only", "metrics=wattmetre_power_watt&start_time=0", 500, missing},
		{"bad start", "nodes=taurus-1&start_time=garbage", 400, `{"hint":null,"details":null,"code":"22007","message":"spiexceptions.InvalidDatetimeFormat: invalid input syntax for type timestamp with time zone: \"garbage\""}`},
		{"bad end keeps input", "nodes=taurus-1&end_time=2025-01-15T10:00:00%20%2B1:00x", 400, `{"hint":null,"details":null,"code":"22007","message":"spiexceptions.InvalidDatetimeFormat: invalid input syntax for type timestamp with time zone: \"2025-01-15T10:00:00 +1:00x\""}`},
		{"field overflow", "nodes=taurus-1&start_time=2025-02-30", 400, `{"hint":null,"details":null,"code":"22008","message":"spiexceptions.DatetimeFieldOverflow: date/time field value out of range: \"2025-02-30\""}`},
		{"bad job id", "job_id=abc", 400, `{"hint":null,"details":null,"code":"22P02","message":"invalid input syntax for type integer: \"abc\""}`},
		{"float job id", "job_id=1.5&nodes=taurus-1", 400, `{"hint":null,"details":null,"code":"22P02","message":"invalid input syntax for type integer: \"1.5\""}`},
		{"empty job id", "job_id=", 400, `{"hint":null,"details":null,"code":"22P02","message":"invalid input syntax for type integer: \"\""}`},
		{"job id out of range", "job_id=99999999999", 400, `{"hint":null,"details":null,"code":"22003","message":"value \"99999999999\" is out of range for type integer"}`},
		{"bad boolean", "nodes=taurus-1&summary=maybe", 400, `{"hint":null,"details":null,"code":"22P02","message":"invalid input syntax for type boolean: \"maybe\""}`},
		{"bad as_rate", "nodes=taurus-1&as_rate=2", 400, `{"hint":null,"details":null,"code":"22P02","message":"invalid input syntax for type boolean: \"2\""}`},
		{"cast errors come first", "summary=nope", 400, `{"hint":null,"details":null,"code":"22P02","message":"invalid input syntax for type boolean: \"nope\""}`},
		{"unknown job before bad time", "job_id=8&start_time=garbage", 500, `{"hint":null,"details":null,"code":"XX000","message":"IndexError: list index out of range"}`},
		{"known job, bad time", "job_id=7&start_time=garbage", 400, `{"hint":null,"details":null,"code":"22007","message":"spiexceptions.InvalidDatetimeFormat: invalid input syntax for type timestamp with time zone: \"garbage\""}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, e, "/stable/sites/lyon/metrics?"+tc.query)
			require.Equal(t, tc.status, res.status)
			require.Equal(t, tc.body, res.body)
			require.Equal(t, "application/json", res.header.Get("Content-Type"))
		})
	}
	// Accepted boolean spellings.
	for _, b := range []string{"true", "t", "TRUE", "yes", "y", "on", "1", " true ", "false", "f", "no", "off", "of", "0"} {
		res := get(t, e, "/stable/sites/lyon/metrics?nodes=taurus-1&as_rate="+url.QueryEscape(b))
		require.Equal(t, http.StatusOK, res.status, b)
	}
}

func TestRoutes(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	q := "/sites/lyon/metrics?nodes=taurus-1&metrics=wattmetre_power_watt&start_time=" + epoch(winterNow.Add(-5*time.Second))
	stable := get(t, e, "/stable"+q)
	require.Equal(t, http.StatusOK, stable.status)
	for _, p := range []string{"/sid", "/3.0"} {
		require.Equal(t, stable.body, get(t, e, p+q).body)
	}
	tests := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/healthz", 200, "ok"},
		{"GET", "/stable/sites/atlantis/metrics?nodes=x", 404, "Cannot find resource /sites/atlantis/metrics"},
		{"GET", "/stable/sites/lyon/clusters/nope", 404, "Cannot find resource /sites/lyon/clusters/nope"},
		{"GET", "/stable/sites/lyon/clusters/taurus/nodes/orion-1", 404, "Cannot find resource /sites/lyon/clusters/taurus/nodes/orion-1"},
		{"GET", "/stable/sites/lyon/pdus/nope", 404, "Cannot find resource /sites/lyon/pdus/nope"},
		{"GET", "/stable/sites/lyon/nothing", 404, "Cannot find resource /sites/lyon/nothing"},
		{"GET", "/v9/sites/lyon/metrics", 404, "Cannot find resource /v9/sites/lyon/metrics"},
		{"GET", "/", 404, "Cannot find resource /"},
		{"DELETE", "/stable/sites/lyon/metrics", 405, "Method not allowed\n"},
	}
	for _, tc := range tests {
		res := do(t, e, tc.method, tc.path, "", nil)
		require.Equal(t, tc.status, res.status, tc.path)
		require.Equal(t, tc.body, res.body, tc.path)
		if tc.status == 404 {
			require.Equal(t, "text/plain; charset=utf-8", res.header.Get("Content-Type"))
		}
	}
	for _, site := range SiteUIDs {
		res := get(t, e, "/stable/sites/"+site+"/metrics?nodes=nobody")
		require.Equal(t, http.StatusOK, res.status, site)
		require.Equal(t, "[]", res.body)
	}
}
