// Package pipeline connects sources, transforms and outputs with bounded
// queues, publishes measurement events to the sources that react to them,
// and shuts everything down in order: sources, then transforms, then outputs,
// every output flushed.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
)

// Emitter sends buffers of points into the pipeline.
type Emitter interface {
	// Emit queues buf for the transforms and outputs. It blocks while the
	// queue is full (back-pressure), even when ctx is cancelled, and fails
	// once the pipeline is stopped or its shutdown timed out. Empty buffers
	// are dropped. The caller must not touch buf afterwards.
	Emit(ctx context.Context, buf *measure.Buffer) error
}

// Source produces points.
type Source interface {
	// Run produces points until ctx is cancelled (the stop request), then
	// emits what it still holds and returns.
	Run(ctx context.Context, out Emitter) error
}

// EventHandler is implemented by sources that react to measurement events
// (kwollect-input fetches the exec window when the end event comes).
type EventHandler interface {
	HandleEvent(ctx context.Context, ev Event, out Emitter) error
}

// Preflighter is implemented by sources that can check, before the measured
// command is spawned, that they will be able to measure it.
type Preflighter interface {
	Preflight(ctx context.Context) error
}

// Transform changes buffers in place before they reach the outputs.
type Transform interface {
	Apply(buf *measure.Buffer) error
}

// Finisher is implemented by transforms that produce points of their own
// once every point has passed through them (an energy total, say). Finish is
// called after the sources have stopped and the queue is drained, before the
// outputs are closed; its buffer goes through the later transforms and then
// to every output.
type Finisher interface {
	Finish() (*measure.Buffer, error)
}

// Output writes buffers somewhere. Write is called from one goroutine per
// output; buffers are shared between outputs and must not be modified.
type Output interface {
	Write(ctx context.Context, buf *measure.Buffer) error
	// Close flushes and releases the output; called once, after the last Write.
	Close() error
}

// EventKind names the measurement events of Alumet.
type EventKind int

const (
	// StartConsumerMeasurement is published when the measured process starts.
	StartConsumerMeasurement EventKind = iota
	// EndConsumerMeasurement is published when the measured process has exited.
	EndConsumerMeasurement
	// PhaseMark is published when the measured command starts a phase
	// (an ALUMET_PHASE line on its stdout, or alumet-agent mark): the phase
	// named Phase begins at Time and lasts until the next mark or the end
	// of the run.
	PhaseMark
)

func (k EventKind) String() string {
	switch k {
	case EndConsumerMeasurement:
		return "EndConsumerMeasurement"
	case PhaseMark:
		return "PhaseMark"
	}
	return "StartConsumerMeasurement"
}

// Event is a measurement event.
type Event struct {
	Kind      EventKind
	Time      time.Time // when it happened, as precisely as the agent knows
	Consumers []measure.Consumer
	// JobID, on an end event without a start (fetch --job-id), asks the
	// sources to measure the whole window of this OAR job.
	JobID int64
	// Command is the measured command line (exec), on both events.
	Command []string
	// ExitCode is the measured command's exit code (128+N if killed by
	// signal N), on the end event of exec; nil otherwise.
	ExitCode *int
	// Run is the index of the run (from 1) with exec --repeat, on every
	// event of that run; 0 when the command runs once. Sources tag their
	// points with a run attribute when it is set.
	Run int
	// Phase is the name of the phase a PhaseMark event starts.
	Phase string
}

type namedSource struct {
	name string
	src  Source
}

type namedTransform struct {
	name string
	t    Transform
}

type namedOutput struct {
	name string
	out  Output
	ch   chan *measure.Buffer
}

// Builder collects the elements plugins create at start-up.
type Builder struct {
	registry    *measure.Registry
	queueSize   int
	sources     []namedSource
	transforms  []namedTransform
	outputs     []*namedOutput
	logger      *slog.Logger
	startedAt   time.Time
	elementName map[string]bool
	history     *History
}

// NewBuilder returns a builder whose source queue holds queueSize buffers.
func NewBuilder(reg *measure.Registry, queueSize int, logger *slog.Logger) *Builder {
	if queueSize <= 0 {
		queueSize = 2048
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Builder{registry: reg, queueSize: queueSize, logger: logger, startedAt: time.Now(), elementName: map[string]bool{}, history: &History{}}
}

// Registry is the metric registry plugins register their metrics in.
func (b *Builder) Registry() *measure.Registry { return b.registry }

// History is the side channel between the elements that need data from
// before the measured window and the sources that can fetch it.
func (b *Builder) History() *History { return b.history }

func (b *Builder) claim(kind, name string) error {
	key := kind + "/" + name
	if b.elementName[key] {
		return fmt.Errorf("duplicate %s name %q", kind, name)
	}
	b.elementName[key] = true
	return nil
}

// AddSource adds a source; sources start in the order they are added.
func (b *Builder) AddSource(name string, s Source) error {
	if err := b.claim("source", name); err != nil {
		return err
	}
	b.sources = append(b.sources, namedSource{name, s})
	return nil
}

// AddTransform adds a transform; transforms run in the order they are added.
func (b *Builder) AddTransform(name string, t Transform) error {
	if err := b.claim("transform", name); err != nil {
		return err
	}
	b.transforms = append(b.transforms, namedTransform{name, t})
	return nil
}

// AddOutput adds an output.
func (b *Builder) AddOutput(name string, o Output) error {
	if err := b.claim("output", name); err != nil {
		return err
	}
	b.outputs = append(b.outputs, &namedOutput{name: name, out: o})
	return nil
}

// Counts returns the number of sources, transforms and outputs added so far.
func (b *Builder) Counts() (sources, transforms, outputs int) {
	return len(b.sources), len(b.transforms), len(b.outputs)
}

// Abort closes the outputs added so far, when start-up fails before Start:
// files are closed and their flushers stop.
func (b *Builder) Abort() error {
	var errs []error
	for _, o := range b.outputs {
		if err := o.out.Close(); err != nil {
			errs = append(errs, fmt.Errorf("output %s: %w", o.name, err))
		}
	}
	b.outputs = nil
	return errors.Join(errs...)
}

// Pipeline is a running set of sources, transforms and outputs.
type Pipeline struct {
	b          *Builder
	logger     *slog.Logger
	queue      chan *measure.Buffer
	stopMu     sync.RWMutex // held for reading while emitting, for writing when the queue closes
	closed     bool
	abort      chan struct{} // closed when the shutdown times out
	srcCancel  context.CancelFunc
	srcDone    chan struct{}
	srcErrs    []error
	srcWG      sync.WaitGroup
	transDone  chan struct{}
	outWG      sync.WaitGroup
	errMu      sync.Mutex
	errs       []error
	stopOnce   sync.Once
	stopResult error
}

// Start starts the outputs, the transforms and then the sources.
func (b *Builder) Start(ctx context.Context) *Pipeline {
	p := &Pipeline{
		b:         b,
		logger:    b.logger,
		queue:     make(chan *measure.Buffer, b.queueSize),
		srcDone:   make(chan struct{}),
		abort:     make(chan struct{}),
		transDone: make(chan struct{}),
	}
	for _, o := range b.outputs {
		o.ch = make(chan *measure.Buffer, 64)
		p.outWG.Add(1)
		go p.runOutput(o)
	}
	go p.runTransforms()
	srcCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.srcCancel = cancel
	p.srcErrs = make([]error, len(b.sources))
	for i, s := range b.sources {
		p.srcWG.Add(1)
		go func() {
			defer p.srcWG.Done()
			if err := s.src.Run(srcCtx, p.emitter(s.name)); err != nil && !errors.Is(err, context.Canceled) {
				p.srcErrs[i] = fmt.Errorf("source %s: %w", s.name, err)
			}
		}()
	}
	go func() { p.srcWG.Wait(); close(p.srcDone) }()
	return p
}

type emitter struct {
	p    *Pipeline
	name string
}

func (p *Pipeline) emitter(name string) Emitter { return emitter{p, name} }

// OutputGrace is how long outputs may still write after the sources used up
// the shutdown timeout.
var OutputGrace = 10 * time.Second

// ErrStopped is returned by Emit once the pipeline no longer accepts points.
var ErrStopped = errors.New("pipeline stopped: points not accepted any more")

func (e emitter) Emit(ctx context.Context, buf *measure.Buffer) error {
	if buf == nil || len(buf.Points) == 0 {
		return nil // empty buffers never reach outputs (Alumet #156)
	}
	e.p.stopMu.RLock()
	defer e.p.stopMu.RUnlock()
	if e.p.closed {
		return fmt.Errorf("source %s: %w", e.name, ErrStopped)
	}
	// A cancelled ctx is not a reason to drop points: sources emit their last
	// points after the stop request. Only an aborted shutdown unblocks Emit.
	select {
	case e.p.queue <- buf:
		return nil
	case <-e.p.abort:
		return fmt.Errorf("source %s: %w", e.name, ErrStopped)
	}
}

func (p *Pipeline) recordErr(err error) {
	p.errMu.Lock()
	p.errs = append(p.errs, err)
	p.errMu.Unlock()
}

func (p *Pipeline) runTransforms() {
	defer close(p.transDone)
	for buf := range p.queue {
		p.transform(buf, 0)
	}
	// Everything has passed: the finishers add their points, which go
	// through the transforms after them.
	for i, t := range p.b.transforms {
		f, ok := t.t.(Finisher)
		if !ok {
			continue
		}
		buf, err := f.Finish()
		if err != nil {
			p.logger.Error(fmt.Sprintf("transform %s failed to finish: %v", t.name, err))
			p.recordErr(fmt.Errorf("transform %s: %w", t.name, err))
		}
		if buf != nil && len(buf.Points) > 0 {
			p.transform(buf, i+1)
		}
	}
	for _, o := range p.b.outputs {
		close(o.ch)
	}
}

// transform applies the transforms from index first on, then hands the
// buffer to every output.
func (p *Pipeline) transform(buf *measure.Buffer, first int) {
	for _, t := range p.b.transforms[first:] {
		if err := t.t.Apply(buf); err != nil {
			p.logger.Error(fmt.Sprintf("transform %s failed: %v", t.name, err))
			p.recordErr(fmt.Errorf("transform %s: %w", t.name, err))
		}
	}
	if len(buf.Points) == 0 {
		return
	}
	for _, o := range p.b.outputs {
		o.ch <- buf
	}
}

func (p *Pipeline) runOutput(o *namedOutput) {
	defer p.outWG.Done()
	ctx := context.Background()
	failed := false
	for buf := range o.ch {
		if failed {
			continue // keep draining so the transforms never block
		}
		if err := o.out.Write(ctx, buf); err != nil {
			p.logger.Error(fmt.Sprintf("output %s failed, its remaining points are lost: %v", o.name, err))
			p.recordErr(fmt.Errorf("output %s: %w", o.name, err))
			failed = true
		}
	}
	if err := o.out.Close(); err != nil {
		p.logger.Error(fmt.Sprintf("output %s: flush failed: %v", o.name, err))
		p.recordErr(fmt.Errorf("output %s: %w", o.name, err))
	}
}

// Publish delivers ev to every source that handles events, in start order,
// and waits for them: when it returns, what they fetched is queued.
func (p *Pipeline) Publish(ctx context.Context, ev Event) error {
	var errs []error
	for _, s := range p.b.sources {
		h, ok := s.src.(EventHandler)
		if !ok {
			continue
		}
		if err := h.HandleEvent(ctx, ev, p.emitter(s.name)); err != nil {
			errs = append(errs, fmt.Errorf("source %s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

// Preflight runs the checks of the sources that have some, in start order.
func (p *Pipeline) Preflight(ctx context.Context) error {
	var errs []error
	for _, s := range p.b.sources {
		if pf, ok := s.src.(Preflighter); ok {
			if err := pf.Preflight(ctx); err != nil {
				errs = append(errs, fmt.Errorf("source %s: %w", s.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Stop asks the sources to stop, waits for them, drains the transforms and
// closes every output after its last write. ctx bounds the whole shutdown
// (the agent's shutdown_timeout). The returned error joins every failure:
// sources, transforms, outputs and a timeout, which means data was lost.
func (p *Pipeline) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() { p.stopResult = p.stop(ctx) })
	return p.stopResult
}

func (p *Pipeline) stop(ctx context.Context) error {
	p.srcCancel()
	var errs []error
	select {
	case <-p.srcDone:
		errs = append(errs, p.srcErrs...)
	case <-ctx.Done():
		close(p.abort)
		errs = append(errs, fmt.Errorf("shutdown timeout: some sources did not stop in time, their points are lost"))
	}
	p.stopMu.Lock()
	p.closed = true
	close(p.queue)
	p.stopMu.Unlock()

	outDone := make(chan struct{})
	go func() { <-p.transDone; p.outWG.Wait(); close(outDone) }()
	outCtx := ctx
	if ctx.Err() != nil {
		// The sources used up the timeout: the outputs still get a grace
		// period to write and sync what they were given.
		var cancel context.CancelFunc
		outCtx, cancel = context.WithTimeout(context.Background(), OutputGrace)
		defer cancel()
	}
	select {
	case <-outDone:
	case <-outCtx.Done():
		errs = append(errs, fmt.Errorf("shutdown timeout: outputs did not finish writing, points may be lost"))
	}
	p.errMu.Lock()
	errs = append(errs, p.errs...)
	p.errMu.Unlock()
	return errors.Join(errs...)
}
