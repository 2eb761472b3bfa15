package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Pushed rows (POST /sites/{site}/metrics) are kept in memory per site and
// device; they are visible at once (no ingestion lag).

type postedRow struct {
	ts      int64
	v       float64
	info    *seriesInfo
	sumInfo *seriesInfo // info without _metric_scrape_time (summary series)
	seq     int64
}

type postStore struct {
	mu   sync.RWMutex
	rows map[string]map[string][]*postedRow // site -> device -> rows
	seq  int64
}

func newPostStore() *postStore {
	return &postStore{rows: map[string]map[string][]*postedRow{}}
}

func (p *postStore) add(site string, rs []*postedRow) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.rows[site]
	if m == nil {
		m = map[string][]*postedRow{}
		p.rows[site] = m
	}
	for _, r := range rs {
		p.seq++
		r.seq = p.seq
		m[r.info.device] = append(m[r.info.device], r)
	}
}

// gens returns one sorted generator per series of the pushed rows of device
// id that match the metric filter and the window.
func (p *postStore) gens(site, id string, metrics map[string]bool, a, b int64, summary bool) []rowGen {
	p.mu.RLock()
	defer p.mu.RUnlock()
	groups := map[string][]row{}
	for _, r := range p.rows[site][id] {
		if r.ts < a || r.ts > b || (metrics != nil && !metrics[r.info.metric]) {
			continue
		}
		info := r.info
		if summary {
			info = r.sumInfo
		}
		groups[info.key] = append(groups[info.key], row{ts: r.ts, v: r.v, s: info})
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]rowGen, 0, len(keys))
	for _, k := range keys {
		rows := groups[k]
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].ts < rows[j].ts })
		out = append(out, &sliceGen{rows: rows})
	}
	return out
}

const maxPostBody = 64 << 20

var postColumns = map[string]bool{"timestamp": true, "device_id": true, "metric_id": true, "value": true, "labels": true}

func errInvalidJSON() *pgError {
	return &pgError{status: 400, code: "PGRST102", message: "Empty or invalid json"}
}

// parsePost decodes a POST body: one object or an array of objects with
// metric_id (required), device_id (default caller), timestamp (epoch seconds
// or a time string, default now), value (default NaN) and labels (default {}).
func (e *Emulator) parsePost(body io.Reader, now int64) ([]*postedRow, *pgError) {
	data, err := io.ReadAll(io.LimitReader(body, maxPostBody+1))
	if err != nil {
		return nil, errInvalidJSON()
	}
	if len(data) > maxPostBody {
		return nil, &pgError{status: 413, code: "PGRST413", message: "Payload too large"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, errInvalidJSON()
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errInvalidJSON()
	}
	var items []any
	switch x := top.(type) {
	case map[string]any:
		items = []any{x}
	case []any:
		items = x
	default:
		return nil, errInvalidJSON()
	}
	out := make([]*postedRow, 0, len(items))
	for _, it := range items {
		obj, ok := it.(map[string]any)
		if !ok {
			return nil, errInvalidJSON()
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !postColumns[k] {
				return nil, &pgError{status: 400, code: "PGRST204", message: "Could not find the '" + k + "' column of 'metrics' in the schema cache"}
			}
		}
		r, perr := e.postedRow(obj, now)
		if perr != nil {
			return nil, perr
		}
		out = append(out, r)
	}
	return out, nil
}

func jsonText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func (e *Emulator) postedRow(obj map[string]any, now int64) (*postedRow, *pgError) {
	metric, ok := jsonText(obj["metric_id"])
	if !ok {
		return nil, &pgError{status: 400, code: "23502", message: `null value in column "metric_id" of relation "metrics" violates not-null constraint`}
	}
	device := e.cfg.CallerDevice
	if v, present := obj["device_id"]; present && v != nil {
		if device, ok = jsonText(v); !ok {
			return nil, errBadSyntax("text", string(appendJSONB(nil, v)))
		}
	}
	ts := now
	if v := obj["timestamp"]; v != nil {
		txt, ok := jsonText(v)
		if !ok {
			return nil, errBadTime(string(appendJSONB(nil, v)))
		}
		t, perr := parseBound(txt, now)
		if perr != nil {
			return nil, perr
		}
		if t == posInf || t == negInf {
			return nil, errTimeRange(txt)
		}
		ts = t
	}
	value := math.NaN()
	if v := obj["value"]; v != nil {
		txt, ok := jsonText(v)
		f, err := parseFloat8(txt)
		if !ok || err != nil {
			return nil, errBadSyntax("double precision", txt)
		}
		value = f
	}
	labels := map[string]any{}
	if v := obj["labels"]; v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, &pgError{status: 400, code: "22023", message: "labels must be a JSON object"}
		}
		labels = m
	}
	r := &postedRow{ts: ts, v: value, info: newSeriesInfo(device, metric, labels)}
	r.sumInfo = r.info
	if _, ok := labels["_metric_scrape_time"]; ok {
		l := make(map[string]any, len(labels))
		for k, v := range labels {
			if k != "_metric_scrape_time" {
				l[k] = v
			}
		}
		r.sumInfo = newSeriesInfo(device, metric, l)
	}
	return r, nil
}

// parseFloat8 parses PostgreSQL float8 input (numbers, NaN, [+-]Infinity).
func parseFloat8(s string) (float64, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "nan":
		return math.NaN(), nil
	case "infinity", "+infinity", "inf", "+inf":
		return math.Inf(1), nil
	case "-infinity", "-inf":
		return math.Inf(-1), nil
	}
	if strings.ContainsAny(t, "xX_pP") || strings.ContainsAny(strings.ToLower(t), "in") {
		return 0, errors.New("bad float")
	}
	return strconv.ParseFloat(t, 64)
}
