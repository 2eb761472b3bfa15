// Package pipeline connects sources, transforms and outputs with bounded
// queues, publishes measurement events to the sources that react to them,
// and shuts everything down in order: sources, then transforms, then outputs,
// every output flushed. An output that fails is known at once
// (OutputFailed) and its lost points are counted (OutputFailures), without
// ever blocking the sources.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
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

// CompactEmitter is implemented by the pipeline's emitters. A source may
// emit buffers with Buffer.Compact points when AcceptsCompact is true:
// then every transform is a CompactReader and every output a
// CompactWriter. Otherwise the pipeline expands them into Points on the
// way.
type CompactEmitter interface {
	Emitter
	AcceptsCompact() bool
}

// CompactWriter is implemented by outputs whose Write reads the compact
// points of a buffer (Buffer.Compact) as well as its Points.
type CompactWriter interface {
	Output
	WritesCompact()
}

// CompactReader is implemented by transforms whose Apply reads the compact
// points of a buffer as well as its Points, and changes neither (a
// transform that changes points gets them expanded).
type CompactReader interface {
	Transform
	ReadsCompact()
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

// EventListener is implemented by transforms and outputs that want the
// measurement events (energy-report learns its windows and phases from
// them). They hear an event after every source has handled it, so the
// points a source emitted for it are queued before.
type EventListener interface {
	OnEvent(ctx context.Context, ev Event) error
}

// Preflighter is implemented by sources that can check, before the measured
// command is spawned, that they will be able to measure it.
type Preflighter interface {
	Preflight(ctx context.Context) error
}

// Transform changes buffers in place before they reach the outputs; it must
// not keep a buffer once Apply returns (its memory is reused).
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
// output; buffers are shared between outputs and must not be modified, nor
// kept once Write returns (their memory is reused: copy what must stay).
//
// An error from Write or Close fails the output for good: the pipeline
// says so at once (OutputFailed), gives it no more buffers and counts
// their points as lost (OutputFailures), the other outputs going on. An
// output whose error is a LossError says how many points it lost; one that
// can fail between writes is a FailureReporter.
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
	// Runs is, with exec --repeat, how many runs are planned (on the end
	// events): a source may leave what comes after a window to the next
	// run, but for the last one.
	Runs int
	// Phase is the name of the phase a PhaseMark event starts.
	Phase string
	// Warnings, on the end event of exec, are what the agent found wrong
	// with the run's measurement (phase marks that all arrived when the
	// command exited, say): the reports carry them, so that a wrong result
	// is never taken for a good one.
	Warnings []string
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
	name  string
	out   Output
	ch    chan []*item
	dead  atomic.Bool // it failed: read without the lock by its goroutine
	state outputState // guarded by Pipeline.fail.mu
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
	outcomes    *Outcomes
}

// NewBuilder returns a builder whose source queue holds queueSize buffers.
func NewBuilder(reg *measure.Registry, queueSize int, logger *slog.Logger) *Builder {
	if queueSize <= 0 {
		queueSize = 2048
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Builder{registry: reg, queueSize: queueSize, logger: logger, startedAt: time.Now(), elementName: map[string]bool{}, history: &History{}, outcomes: &Outcomes{}}
}

// Registry is the metric registry plugins register their metrics in.
func (b *Builder) Registry() *measure.Registry { return b.registry }

// History is the side channel between the elements that need data from
// before the measured window and the sources that can fetch it.
func (b *Builder) History() *History { return b.history }

// Outcomes is where the sources say what they obtained for each requested
// series.
func (b *Builder) Outcomes() *Outcomes { return b.outcomes }

// Outcomes is where the sources said what they obtained for each series.
func (p *Pipeline) Outcomes() *Outcomes { return p.b.outcomes }

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
	queue      chan *item
	budget     pointBudget
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
	fail       failures
	compact    bool // every output is a CompactWriter
	// compactFrom is the index of the first transform from which on every
	// transform is a CompactReader (len(transforms) if the last is not).
	compactFrom int
}

// Start starts the outputs, the transforms and then the sources.
func (b *Builder) Start(ctx context.Context) *Pipeline {
	p := &Pipeline{
		b:         b,
		logger:    b.logger,
		queue:     make(chan *item, b.queueSize),
		srcDone:   make(chan struct{}),
		abort:     make(chan struct{}),
		transDone: make(chan struct{}),
		fail:      failures{first: make(chan struct{})},
	}
	p.budget.init(MaxQueuedPoints)
	p.compact = true
	for _, o := range b.outputs {
		if _, ok := o.out.(CompactWriter); !ok {
			p.compact = false
		}
	}
	p.compactFrom = len(b.transforms)
	for p.compactFrom > 0 {
		if _, ok := b.transforms[p.compactFrom-1].t.(CompactReader); !ok {
			break
		}
		p.compactFrom--
	}
	for _, o := range b.outputs {
		o.ch = make(chan []*item, outputQueue)
		if r, ok := o.out.(FailureReporter); ok {
			r.ReportFailuresTo(func(err error) { p.outputFailed(o, err, 0, true) })
		}
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

// AcceptsCompact reports whether compact points reach the outputs as they
// are (see CompactEmitter).
func (e emitter) AcceptsCompact() bool { return e.p.compact && e.p.compactFrom == 0 }

// OutputGrace is how long outputs may still write after the sources used up
// the shutdown timeout.
var OutputGrace = 10 * time.Second

// ErrStopped is returned by Emit once the pipeline no longer accepts points.
var ErrStopped = errors.New("pipeline stopped: points not accepted any more")

func (e emitter) Emit(ctx context.Context, buf *measure.Buffer) error {
	if buf == nil || buf.Len() == 0 {
		buf.Release()
		return nil // empty buffers never reach outputs (Alumet #156)
	}
	e.p.stopMu.RLock()
	defer e.p.stopMu.RUnlock()
	if e.p.closed {
		buf.Release()
		return fmt.Errorf("source %s: %w", e.name, ErrStopped)
	}
	// A cancelled ctx is not a reason to drop points: sources emit their last
	// points after the stop request. Only an aborted shutdown unblocks Emit.
	n := buf.Len()
	if !e.p.budget.acquire(n) {
		buf.Release()
		return fmt.Errorf("source %s: %w", e.name, ErrStopped)
	}
	it := newItem(buf, n)
	select {
	case e.p.queue <- it:
		return nil
	case <-e.p.abort:
		e.p.budget.release(n)
		it.free()
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
	// The buffers already waiting in the queue are transformed one after
	// the other and handed to each output as one batch: one channel
	// operation (and at most one wake-up) per output for the batch, instead
	// of one per buffer.
	batch := make([]*item, 0, maxBatch)
	for it := range p.queue {
		batch = p.admit(batch[:0], it, 0)
	drain:
		for len(batch) < maxBatch {
			select {
			case it, ok := <-p.queue:
				if !ok {
					break drain
				}
				batch = p.admit(batch, it, 0)
			default:
				break drain
			}
		}
		p.send(batch)
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
		if buf != nil && buf.Len() > 0 {
			p.send(p.admit(batch[:0], newItem(buf, 0), i+1))
		}
	}
	for _, o := range p.b.outputs {
		close(o.ch)
	}
}

// admit applies the transforms from index first on to the item's buffer
// and appends the item to batch if some output has to write it.
func (p *Pipeline) admit(batch []*item, it *item, first int) []*item {
	if len(it.buf.Compact) > 0 && (first < p.compactFrom || !p.compact) {
		it.buf.Expand()
	}
	for _, t := range p.b.transforms[first:] {
		if err := t.t.Apply(it.buf); err != nil {
			p.logger.Error(fmt.Sprintf("transform %s failed: %v", t.name, err))
			p.recordErr(fmt.Errorf("transform %s: %w", t.name, err))
		}
	}
	if it.buf.Len() == 0 || len(p.b.outputs) == 0 {
		p.done(it)
		return batch
	}
	it.refs.Store(int32(len(p.b.outputs)))
	return append(batch, it)
}

// send hands a batch to every output. The outputs share the slice, so it
// is copied out of the caller's reusable one.
func (p *Pipeline) send(batch []*item) {
	if len(batch) == 0 {
		return
	}
	shared := slices.Clone(batch)
	for _, o := range p.b.outputs {
		o.ch <- shared
	}
}

// written is called by each output once it is done with an item: the last
// one gives its points back to the budget.
func (p *Pipeline) written(it *item) {
	if it.refs.Add(-1) == 0 {
		p.done(it)
	}
}

func (p *Pipeline) done(it *item) {
	p.budget.release(it.n)
	it.buf.Release() // a pooled buffer goes back to its pool: every output is done with it
	it.free()
}

// runOutput gives the batches to o until the transforms are done, then
// closes it. Once o failed, its points are counted as lost instead of
// written: the queue keeps draining, so that neither the transforms nor
// the sources ever wait for a dead output, and the other outputs go on.
func (p *Pipeline) runOutput(o *namedOutput) {
	defer p.outWG.Done()
	ctx := context.Background()
	for batch := range o.ch {
		for _, it := range batch {
			n := it.buf.Len()
			if o.dead.Load() {
				p.dropped(o, n)
			} else if err := o.out.Write(ctx, it.buf); err != nil {
				p.outputFailed(o, err, n, true)
			}
			p.written(it)
		}
	}
	if err := o.out.Close(); err != nil {
		p.fail.mu.Lock()
		prev := o.state.err
		p.fail.mu.Unlock()
		switch {
		case prev == nil:
			// Close flushes: what it could not write is lost, as many
			// points as a LossError says, an unknown number otherwise.
			p.outputFailed(o, err, 0, false)
		case errors.Is(err, prev) || errors.Is(prev, err):
			// The failure already recorded.
		default:
			p.logger.Error(fmt.Sprintf("output %s: close failed: %v", o.name, err))
			p.recordErr(fmt.Errorf("output %s: close: %w", o.name, err))
		}
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
	for _, t := range p.b.transforms {
		if l, ok := t.t.(EventListener); ok {
			if err := l.OnEvent(ctx, ev); err != nil {
				errs = append(errs, fmt.Errorf("transform %s: %w", t.name, err))
			}
		}
	}
	for _, o := range p.b.outputs {
		if l, ok := o.out.(EventListener); ok {
			if err := l.OnEvent(ctx, ev); err != nil {
				errs = append(errs, fmt.Errorf("output %s: %w", o.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// elements returns every source, transform and output, in that order.
func (b *Builder) elements() []any {
	var all []any
	for _, s := range b.sources {
		all = append(all, s.src)
	}
	for _, t := range b.transforms {
		all = append(all, t.t)
	}
	for _, o := range b.outputs {
		all = append(all, o.out)
	}
	return all
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
// sources, transforms, a timeout, which means data was lost, and each
// failed output as an OutputFailure with its final count of points lost
// (OutputFailures says the same).
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
		p.budget.abort()
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
	for _, f := range p.OutputFailures() {
		errs = append(errs, f)
	}
	return errors.Join(errs...)
}

// MaxQueuedPoints bounds the points held between the sources and the end
// of the outputs' writes, whatever the buffer sizes: Emit blocks while the
// queued buffers hold more (a buffer larger than the bound is still
// accepted when nothing else is queued). With source_channel_size, which
// bounds the number of buffers, it keeps memory flat when a source is
// faster than the outputs. Set it before Start.
var MaxQueuedPoints = 1 << 16

const (
	// maxBatch is the most buffers handed to an output at once.
	maxBatch = 64
	// outputQueue is the capacity of an output's queue, in batches.
	outputQueue = 8
)

// item is a buffer on its way through the pipeline.
type item struct {
	buf  *measure.Buffer
	n    int          // points taken from the budget
	refs atomic.Int32 // outputs that have not written it yet
}

var itemPool = sync.Pool{New: func() any { return new(item) }}

func newItem(buf *measure.Buffer, n int) *item {
	it := itemPool.Get().(*item)
	it.buf, it.n = buf, n
	return it
}

func (it *item) free() {
	it.buf, it.n = nil, 0
	itemPool.Put(it)
}

// pointBudget is a counting semaphore of queued points.
type pointBudget struct {
	mu      sync.Mutex
	cond    sync.Cond
	used    int
	max     int
	waiters int
	aborted bool
}

func (b *pointBudget) init(max int) {
	b.cond.L = &b.mu
	b.max = max
}

// acquire waits until n points fit (or nothing is queued); false once the
// shutdown was aborted.
func (b *pointBudget) acquire(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.max > 0 && b.used > 0 && b.used+n > b.max && !b.aborted {
		b.waiters++
		b.cond.Wait()
		b.waiters--
	}
	if b.aborted {
		return false
	}
	b.used += n
	return true
}

func (b *pointBudget) release(n int) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.waiters > 0 {
		b.cond.Broadcast()
	}
	b.mu.Unlock()
}

// abort wakes and fails every waiting acquire.
func (b *pointBudget) abort() {
	b.mu.Lock()
	b.aborted = true
	b.cond.Broadcast()
	b.mu.Unlock()
}
