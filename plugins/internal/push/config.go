package push

import (
	"time"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/plugin"
)

// Delivery is the delivery keys shared by the push outputs, embedded in
// their Config (TOML flattens it: the keys sit in the plugin's section).
// Zero values take the defaults; the keys are Go-only and left out of
// generated files while unset.
type Delivery struct {
	// BatchSize is the most points per request (default 5000).
	BatchSize int `toml:"batch_size,omitzero"`
	// FlushInterval is the longest a point waits for its batch (default 1s).
	FlushInterval config.Duration `toml:"flush_interval,omitzero" duration:"min=1ms,max=1h"`
	// BufferSize bounds the bytes waiting for the server (default 64 MiB);
	// beyond it the oldest batches are dropped, with an ERROR.
	BufferSize int64 `toml:"buffer_size,omitzero"`
	// Timeout bounds each request (default 10s).
	Timeout config.Duration `toml:"timeout,omitzero" duration:"min=1ms,max=1h"`
	// CloseTimeout bounds the final delivery at shutdown (default 10s).
	CloseTimeout config.Duration `toml:"close_timeout,omitzero" duration:"min=1ms,max=1h"`
}

// DefaultTimeout bounds one request unless Delivery.Timeout says otherwise.
const DefaultTimeout = 10 * time.Second

// Bounds of the delivery keys.
const (
	MaxBatchSize  = 1_000_000
	MinBufferSize = 1 << 10
)

// Validate checks the keys, as plugin.FieldErrors.
func (d *Delivery) Validate() []error {
	var errs []error
	if d.BatchSize < 0 || d.BatchSize > MaxBatchSize {
		errs = append(errs, plugin.FieldErrorf("batch_size", "must be between 1 and %d, got %d", MaxBatchSize, d.BatchSize))
	}
	if d.BufferSize != 0 && d.BufferSize < MinBufferSize {
		errs = append(errs, plugin.FieldErrorf("buffer_size", "must be at least %d bytes, got %d", MinBufferSize, d.BufferSize))
	}
	return errs
}

// RequestTimeout is Timeout or its default.
func (d *Delivery) RequestTimeout() time.Duration {
	if d.Timeout > 0 {
		return time.Duration(d.Timeout)
	}
	return DefaultTimeout
}

// Options returns the Queue options of the keys (Name, Target, Send and
// Logger are the output's to set).
func (d *Delivery) Options() Options {
	return Options{BatchPoints: d.BatchSize, FlushInterval: time.Duration(d.FlushInterval),
		BufferBytes: d.BufferSize, CloseTimeout: time.Duration(d.CloseTimeout)}
}
