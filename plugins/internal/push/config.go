package push

import (
	"os"
	"strings"
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
	// BufferSize bounds the bytes waiting for the server (default 64 MiB,
	// 8 MiB when a full buffer waits); beyond it the oldest batches are
	// dropped, with an ERROR.
	BufferSize int64 `toml:"buffer_size,omitzero"`
	// WhenFull is what a full buffer does while the server accepts
	// batches: "wait" for it (the server sets the pace) or "drop" the
	// oldest batches. Unset: "wait" in fetch mode (history, where waiting
	// loses nothing), "drop" in the live modes (exec, watch, run). A
	// failing server is always dropped from.
	WhenFull string `toml:"when_full,omitempty"`
	// Timeout bounds each request (default 10s).
	Timeout config.Duration `toml:"timeout,omitzero" duration:"min=1ms,max=1h"`
	// CloseTimeout bounds the final delivery at shutdown (default 10s).
	CloseTimeout config.Duration `toml:"close_timeout,omitzero" duration:"min=1ms,max=1h"`
}

// DefaultTimeout bounds one request unless Delivery.Timeout says otherwise.
const DefaultTimeout = 10 * time.Second

// WaitBufferSize is buffer_size's default when a full buffer waits: it
// only needs to keep the sender busy.
const WaitBufferSize = 8 << 20

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
	switch d.WhenFull {
	case "", "wait", "drop":
	default:
		errs = append(errs, plugin.FieldErrorf("when_full", `must be "wait" or "drop", got %q`, d.WhenFull))
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

// Options returns the Queue options of the keys in mode (Name, Target,
// Send and Logger are the output's to set).
func (d *Delivery) Options(mode plugin.Mode) Options {
	o := Options{BatchPoints: d.BatchSize, FlushInterval: time.Duration(d.FlushInterval),
		BufferBytes: d.BufferSize, CloseTimeout: time.Duration(d.CloseTimeout),
		Wait: d.WhenFull == "wait" || d.WhenFull == "" && mode == plugin.ModeFetch}
	if o.Wait && o.BufferBytes == 0 {
		o.BufferBytes = WaitBufferSize
	}
	return o
}

// ReadSecret returns the first line of the file at path (a token or a
// password kept out of the config file; ~/ is the home directory). Errors
// name key and the path, never the content.
func ReadSecret(key, path string) (string, error) {
	if strings.HasPrefix(path, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			path = home + path[1:]
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &plugin.FieldError{Key: key, Err: err}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", plugin.FieldErrorf(key, "%s: the first line is empty", path)
	}
	return line, nil
}
