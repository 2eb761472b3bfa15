package measure

import (
	"fmt"
	"sync"
)

// MetricID identifies a registered metric; it indexes the registry.
type MetricID uint32

// Semantics says how a metric's values combine over time; energy integration needs it.
type Semantics uint8

const (
	// Gauge values are readings at an instant (power in W).
	Gauge Semantics = iota
	// Delta values are amounts over the interval since the previous point (energy in J).
	Delta
	// Counter values are monotone totals since some origin (Wh counters).
	Counter
)

// Metric describes a series of values.
type Metric struct {
	ID          MetricID
	Name        string
	Unit        Unit
	Type        ValueType
	Semantics   Semantics
	Description string
	// Plugin is the plugin that registered the metric, when it says so
	// (kwollect-output refuses to send kwollect-input's metrics back to
	// Kwollect). Not part of the metric's identity.
	Plugin string
}

// Registry holds the metrics of an agent. It is safe for concurrent use:
// sources may register metrics they discover while outputs read them.
type Registry struct {
	mu      sync.RWMutex
	metrics []Metric
	byName  map[string]MetricID
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]MetricID{}}
}

// Register adds a metric, or returns the existing one when a metric of that
// name exists with the same unit and type. A conflicting unit or type is an error.
func (r *Registry) Register(m Metric) (MetricID, error) {
	if m.Name == "" {
		return 0, fmt.Errorf("metric name must not be empty")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.byName[m.Name]; ok {
		old := r.metrics[id]
		if old.Unit != m.Unit || old.Type != m.Type {
			return 0, fmt.Errorf("metric %q is already registered with unit %q and type %s, cannot register it with unit %q and type %s",
				m.Name, old.Unit.UniqueName(), old.Type, m.Unit.UniqueName(), m.Type)
		}
		return id, nil
	}
	m.ID = MetricID(len(r.metrics))
	r.metrics = append(r.metrics, m)
	r.byName[m.Name] = m.ID
	return m.ID, nil
}

// Metric returns the metric with this id.
func (r *Registry) Metric(id MetricID) (Metric, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if int(id) >= len(r.metrics) {
		return Metric{}, false
	}
	return r.metrics[id], true
}

// ByName returns the metric with this name.
func (r *Registry) ByName(name string) (Metric, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.byName[name]
	if !ok {
		return Metric{}, false
	}
	return r.metrics[id], true
}

// All returns the registered metrics in registration order.
func (r *Registry) All() []Metric {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Metric(nil), r.metrics...)
}
