package kwollect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
)

// MetricInfo is one entry of a cluster's metric catalogue (reference API).
// A name may repeat with different Labels (e.g. one entry per CPU).
type MetricInfo struct {
	Name        string
	Description string
	// Period is the default sampling interval; 0 means "only during a
	// monitor job". OptionalPeriod is the interval during a monitor job
	// (0 if not given).
	Period, OptionalPeriod time.Duration
	Labels                 map[string]string // nil if none; non-string values as compact JSON
	OnlyFor                []string          // node uids that really have the metric; nil = all nodes
	ScaleFactor            float64           // 0 if absent; already applied to API values
	Source                 json.RawMessage   // {protocol, id?, port?}, compacted
}

// AppliesTo reports whether the metric exists on node (OnlyFor empty or
// listing it; node may be an FQDN).
func (m MetricInfo) AppliesTo(node string) bool {
	return len(m.OnlyFor) == 0 || slices.Contains(m.OnlyFor, cutAtDot(node))
}

type wireMetric struct {
	Name           string                     `json:"name"`
	Description    string                     `json:"description"`
	Period         float64                    `json:"period"`
	OptionalPeriod float64                    `json:"optional_period"`
	Labels         map[string]json.RawMessage `json:"labels"`
	OnlyFor        []string                   `json:"only_for"`
	ScaleFactor    float64                    `json:"scale_factor"`
	Source         json.RawMessage            `json:"source"`
}

const maxCatalogBody = 32 << 20

// ClusterOf is the cluster of a Grid'5000 node: its name up to the last
// '-' ("taurus-7" → "taurus", "gros-uva-3" → "gros-uva"), the FQDN cut at
// its first '.'.
func ClusterOf(node string) string {
	if i := strings.IndexByte(node, '.'); i >= 0 {
		node = node[:i]
	}
	if i := strings.LastIndexByte(node, '-'); i > 0 {
		return node[:i]
	}
	return node
}

// ClusterMetrics returns the metric catalogue of a cluster: the .metrics
// field of GET {base}/sites/{site}/clusters/{cluster}. An unknown site or
// cluster gives a *GatewayError (the reference API answers 404 in plain
// text).
func (c *Client) ClusterMetrics(ctx context.Context, site, cluster string) ([]MetricInfo, error) {
	u := c.base + "/sites/" + url.PathEscape(strings.TrimSpace(site)) + "/clusters/" + url.PathEscape(strings.TrimSpace(cluster))
	resp, err := c.get(ctx, u, false)
	if err != nil {
		return nil, err
	}
	defer drainClose(resp.Body)
	var doc struct {
		Metrics []wireMetric `json:"metrics"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxCatalogBody)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("kwollect: cluster document from %s: %w", u, err)
	}
	out := make([]MetricInfo, 0, len(doc.Metrics))
	for _, w := range doc.Metrics {
		mi := MetricInfo{
			Name:           w.Name,
			Description:    w.Description,
			Period:         msDuration(w.Period),
			OptionalPeriod: msDuration(w.OptionalPeriod),
			OnlyFor:        w.OnlyFor,
			ScaleFactor:    w.ScaleFactor,
			Source:         compactJSON(w.Source),
		}
		if len(w.Labels) > 0 {
			mi.Labels = make(map[string]string, len(w.Labels))
			for k, v := range w.Labels {
				mi.Labels[k] = labelValue(v)
			}
		}
		out = append(out, mi)
	}
	return out, nil
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

func msDuration(ms float64) time.Duration {
	if ms <= 0 || math.IsNaN(ms) || ms > float64(math.MaxInt64/int64(time.Millisecond)) {
		return 0
	}
	return time.Duration(math.Round(ms * float64(time.Millisecond)))
}

// Periods derives SessionOptions.Periods for node from a catalogue: for each
// metric that applies to the node, its sampling period, or its
// OptionalPeriod when monitor is true (the node is in a monitor job) or
// when the default period is 0. When a name repeats, the smallest period
// wins. Metrics with no usable period are left out (the fetch then infers
// the period from the data).
func Periods(metrics []MetricInfo, node string, monitor bool) map[string]time.Duration {
	out := make(map[string]time.Duration)
	for _, m := range metrics {
		if !m.AppliesTo(node) {
			continue
		}
		p := m.Period
		if (monitor || p == 0) && m.OptionalPeriod > 0 {
			p = m.OptionalPeriod
		}
		if p <= 0 {
			continue
		}
		if old, ok := out[m.Name]; !ok || p < old {
			out[m.Name] = p
		}
	}
	return out
}
