// Package push is the delivery part shared by the outputs that push their
// points to a server (influxdb; prometheus remote write, OTLP and
// kwollect-output next): a bounded buffer between the pipeline's Write and a
// sender goroutine, batching, retries with backoff, and a final flush with
// a deadline at Close. It imports no plugin.
//
// The output encodes its points itself, record by record, into the batch
// that is being filled (Queue.Append gives it an *Appender); the Queue
// seals a batch when it reaches Options.BatchPoints points or
// Options.BatchBytes bytes, or when it is Options.FlushInterval old, and
// the sender goroutine hands each sealed batch, in order, to Options.Send
// (which builds the request: gzip, a JSON array around the records, a
// protobuf message…).
//
// What never happens: a Write waiting for the server. When the sealed
// batches waiting for the sender hold more than Options.BufferBytes, the
// oldest waiting batches are dropped (the server gets the freshest data
// when it comes back), with an ERROR that gives the count of points
// dropped (at most one such message every 10 s, each with the count since
// the previous one and the total).
//
// Errors of Send, classified by Classify: a network error, a 5xx, a 408 or
// a 429 is retried with exponential backoff and jitter (Options.
// InitialBackoff doubling up to Options.MaxBackoff), a Retry-After given by
// the server being honoured (up to MaxRetryAfter); a batch is retried for
// as long as the Queue is open (the buffer bound, not a retry count, limits
// what waits). Any other 4xx is not retried: the batch is dropped with an
// ERROR holding the server's message (credentials redacted), and 401, 403
// and 404 (a wrong token, database or URL, which no later batch can
// escape) fail the output for good: it is reported to the pipeline
// (pipeline.FailureReporter) and everything later is counted as lost.
//
// Close seals the batch being filled and lets the sender deliver what is
// waiting for at most Options.CloseTimeout; what is still undelivered then
// (the request in flight is cancelled) is lost. Close returns a *LossError
// (a pipeline.LossError) whenever a point was lost, however: dropped from
// the full buffer, refused by the server, or undelivered at the deadline,
// so that the run's summary and exit status say so.
package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/alumet-go/alumet-agent/internal/redact"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// Defaults of Options.
const (
	DefaultBatchPoints    = 5000
	DefaultBatchBytes     = 1 << 20
	DefaultFlushInterval  = time.Second
	DefaultBufferBytes    = 64 << 20
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultCloseTimeout   = 10 * time.Second
	// MaxRetryAfter bounds the wait a server's Retry-After can impose.
	MaxRetryAfter = 5 * time.Minute
	// dropLogEvery is the shortest time between two "buffer full" errors.
	dropLogEvery = 10 * time.Second
)

// Options configures a Queue. Zero values take the defaults.
type Options struct {
	// Name names the output in messages ("influxdb").
	Name string
	// Target is where the points go, for messages (a URL without
	// credentials).
	Target string
	// Send delivers one batch: body is the concatenation of the batch's
	// records, points their count. It must not keep body once it returns.
	// ctx is cancelled at Close's deadline. Its errors are classified by
	// Classify (a *StatusError for an HTTP status).
	Send func(ctx context.Context, body []byte, points int) error
	// Logger gets the errors and warnings; nil discards them.
	Logger *slog.Logger

	BatchPoints    int           // seal a batch at this many points
	BatchBytes     int           // seal a batch once it holds this many bytes
	FlushInterval  time.Duration // seal a non-empty batch this old
	BufferBytes    int64         // bound of the sealed batches waiting
	InitialBackoff time.Duration // first retry delay
	MaxBackoff     time.Duration // longest retry delay (before jitter)
	CloseTimeout   time.Duration // how long Close waits for the final delivery
	// Wait makes a full buffer hold Append back, instead of dropping the
	// oldest batches, for as long as the server accepts batches (its last
	// answer was a success, or none came yet): a slow but working server
	// then sets the pace, which suits reading history (fetch), where
	// waiting loses nothing. While the server fails (the batch in flight
	// is being retried), the buffer drops as without Wait: a dead server
	// never holds the pipeline back.
	Wait bool

	// Sleep waits for d or until ctx is done (tests make it instant);
	// nil is a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock of the drop messages; nil is time.Now.
	Now func() time.Time
	// Jitter returns a number in [0, 1); nil is math/rand.
	Jitter func() float64
}

func (o *Options) setDefaults() {
	if o.BatchPoints <= 0 {
		o.BatchPoints = DefaultBatchPoints
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = DefaultBufferBytes
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.InitialBackoff {
		o.MaxBackoff = o.InitialBackoff
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Name == "" {
		o.Name = "push"
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// batch is a run of whole records.
type batch struct {
	data   []byte
	points int
	opened time.Time
}

// Stats counts what a Queue did with the points it was given.
type Stats struct {
	Appended  int64 // records appended
	Sent      int64 // points the server accepted
	Dropped   int64 // dropped because the buffer was full
	Rejected  int64 // refused by the server (a 4xx other than 408 and 429)
	Abandoned int64 // undelivered at Close's deadline, or after a fatal error
	Requests  int64 // requests sent, retries included
	Retries   int64 // failed attempts that were retried
}

// Lost is every point not delivered.
func (s Stats) Lost() int64 { return s.Dropped + s.Rejected + s.Abandoned }

// Queue buffers, batches and delivers the records of one output. Append
// is called from the output's Write (one goroutine), Close once after the
// last Append; Stats and ReportFailuresTo from anywhere.
type Queue struct {
	o Options

	mu      sync.Mutex
	cur     *batch   // being filled
	sealed  []*batch // waiting for the sender, oldest first
	waiting int64    // memory of sealed (their capacity: what the bound is about)
	stats   Stats
	fatal   error // a 401/403/404: nothing more is sent
	closing bool
	report  func(error)
	// drop messages
	dropSince  int64 // points dropped since the last message
	lastDropAt time.Time
	inflight   *batch // taken by the sender
	failing    bool   // the last attempt failed and is being retried
	room       *sync.Cond

	wake     chan struct{} // a batch was sealed, or closing
	done     chan struct{} // the sender returned
	ctx      context.Context
	cancel   context.CancelFunc
	free     sync.Pool
	closeMu  sync.Mutex
	closeErr error
	closed   bool
}

// New starts a Queue and its sender goroutine. opts.Send is required.
func New(opts Options) (*Queue, error) {
	if opts.Send == nil {
		return nil, errors.New("push: Options.Send is nil")
	}
	opts.setDefaults()
	q := &Queue{o: opts, wake: make(chan struct{}, 1), done: make(chan struct{})}
	q.room = sync.NewCond(&q.mu)
	q.ctx, q.cancel = context.WithCancel(context.Background())
	go q.run()
	return q, nil
}

// ReportFailuresTo implements pipeline.FailureReporter: a fatal refusal by
// the server (401, 403, 404) is given to report at once.
func (q *Queue) ReportFailuresTo(report func(error)) {
	q.mu.Lock()
	q.report = report
	q.mu.Unlock()
}

// Stats returns the counts so far.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stats
}

// Err returns the fatal error once the server refused the output for good.
func (q *Queue) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.fatal
}

// Appender writes records into the batch being filled: append a record's
// bytes to Buf, then call End. Buf may change at each End.
type Appender struct {
	Buf []byte
	// Size is, for an output that compresses its records as it appends
	// them, the batch's size before compression (0 otherwise): End seals
	// at BatchBytes of it too, so that a request inflates to what an
	// uncompressed batch would hold at most (servers bound that).
	Size int64
	q    *Queue
	n    int // records since the last End
}

// End ends a record: the batch is sealed when it is full.
func (a *Appender) End() {
	q := a.q
	c := q.cur
	c.points++
	a.n++
	if c.points >= q.o.BatchPoints || len(a.Buf) >= q.o.BatchBytes || a.Size >= int64(q.o.BatchBytes) {
		c.data = a.Buf
		q.sealLocked()
		a.Buf, a.Size = q.cur.data, 0
	}
}

// Append calls fill with an Appender on the batch being filled, under the
// Queue's lock (the sender only takes it briefly). It returns the fatal
// error, without calling fill, once the server refused the output for
// good, counting points as abandoned; and an error after Close.
func (q *Queue) Append(points int, fill func(a *Appender)) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return fmt.Errorf("%s: write after close", q.o.Name)
	}
	if q.fatal != nil {
		q.stats.Abandoned += int64(points)
		return q.lossLocked()
	}
	if q.cur == nil {
		q.cur = q.newBatch()
	}
	a := Appender{Buf: q.cur.data, q: q}
	fill(&a)
	q.cur.data = a.Buf
	q.stats.Appended += int64(a.n)
	if q.cur.points > 0 && q.o.Now().Sub(q.cur.opened) >= q.o.FlushInterval {
		q.sealLocked()
	}
	return nil
}

func (q *Queue) newBatch() *batch {
	b, _ := q.free.Get().(*batch)
	if b == nil {
		b = &batch{data: make([]byte, 0, min(q.o.BatchBytes+q.o.BatchBytes/4, 4<<20))}
	}
	b.data, b.points, b.opened = b.data[:0], 0, q.o.Now()
	return b
}

// sealLocked moves the batch being filled to the sealed ones, dropping the
// oldest waiting batches beyond the buffer bound.
func (q *Queue) sealLocked() {
	c := q.cur
	q.cur = q.newBatch()
	if c.points == 0 {
		q.free.Put(c)
		return
	}
	if q.o.Wait {
		q.kick()
		for q.waiting+int64(cap(c.data)) > q.o.BufferBytes && len(q.sealed) > 0 && !q.failing && !q.closing && q.fatal == nil && !q.senderDone() {
			q.room.Wait()
		}
	}
	q.sealed = append(q.sealed, c)
	q.waiting += int64(cap(c.data))
	// Close's last batch, with Wait and a server that accepts, may pass the
	// bound by one batch: nothing more will come, and dropping the oldest
	// waiting batch here lost history that fetch had waited for.
	keepAll := q.o.Wait && q.closing && !q.failing && q.fatal == nil
	var dropped int64
	for q.waiting > q.o.BufferBytes && len(q.sealed) > 1 && !keepAll { // the newest batch stays
		old := q.sealed[0]
		q.sealed[0] = nil
		q.sealed = q.sealed[1:]
		q.waiting -= int64(cap(old.data))
		dropped += int64(old.points)
		q.free.Put(old)
	}
	if dropped > 0 {
		q.stats.Dropped += dropped
		q.dropSince += dropped
		now := q.o.Now()
		if q.lastDropAt.IsZero() || now.Sub(q.lastDropAt) >= dropLogEvery {
			q.o.Logger.Error(fmt.Sprintf("%s: the buffer is full (%s of points waiting for %s): %s points dropped, the oldest (%s dropped so far)",
				q.o.Name, formatBytes(q.o.BufferBytes), q.o.Target, pipeline.GroupDigits(q.dropSince), pipeline.GroupDigits(q.stats.Dropped)))
			q.dropSince, q.lastDropAt = 0, now
		}
	}
	q.kick()
}

func (q *Queue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue) senderDone() bool {
	select {
	case <-q.done:
		return true
	default:
		return false
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// run is the sender goroutine.
func (q *Queue) run() {
	defer func() {
		close(q.done)
		q.mu.Lock()
		q.room.Broadcast()
		q.mu.Unlock()
	}()
	tick := time.NewTicker(q.o.FlushInterval)
	defer tick.Stop()
	for {
		q.mu.Lock()
		if len(q.sealed) == 0 && q.cur != nil && q.cur.points > 0 &&
			(q.closing || q.o.Now().Sub(q.cur.opened) >= q.o.FlushInterval) {
			q.sealLocked()
		}
		var b *batch
		if len(q.sealed) > 0 && q.fatal == nil {
			b = q.sealed[0]
			q.sealed[0] = nil
			q.sealed = q.sealed[1:]
			q.waiting -= int64(cap(b.data))
			q.inflight = b
			q.room.Broadcast()
		}
		closing := q.closing
		q.mu.Unlock()
		if b == nil {
			if closing {
				return
			}
			select {
			case <-q.wake:
			case <-tick.C:
			case <-q.ctx.Done():
				return
			}
			continue
		}
		if !q.deliver(b) {
			return // cancelled at Close's deadline
		}
	}
}

// deliver sends b, the batch in flight, until it is accepted, refused, or
// the Queue's context is cancelled (false).
func (q *Queue) deliver(b *batch) bool {
	backoff := q.o.InitialBackoff
	for attempt := 1; ; attempt++ {
		q.mu.Lock()
		q.stats.Requests++
		q.mu.Unlock()
		err := q.o.Send(q.ctx, b.data, b.points)
		if q.ctx.Err() != nil {
			return false
		}
		class, retryAfter := Classify(err)
		q.mu.Lock()
		q.failing = class == Retry
		q.room.Broadcast()
		q.mu.Unlock()
		switch class {
		case Delivered:
			q.finish(b, func(s *Stats) { s.Sent += int64(b.points) })
			return true
		case Refused, Fatal:
			msg := redact.String(err.Error())
			q.o.Logger.Error(fmt.Sprintf("%s: %s refused %s points, they are lost (not retried): %s",
				q.o.Name, q.o.Target, pipeline.GroupDigits(int64(b.points)), msg))
			q.finish(b, func(s *Stats) { s.Rejected += int64(b.points) })
			if class == Fatal {
				q.failFatal(err)
			}
			return true
		}
		d := backoff/2 + time.Duration(q.o.Jitter()*float64(backoff/2))
		if retryAfter > d {
			d = min(retryAfter, MaxRetryAfter)
		}
		q.mu.Lock()
		q.stats.Retries++
		q.mu.Unlock()
		lvl := slog.LevelWarn
		if attempt == 1 {
			lvl = slog.LevelInfo
		}
		q.o.Logger.Log(context.Background(), lvl, fmt.Sprintf("%s: sending %s points to %s failed (attempt %d), retrying in %s: %s",
			q.o.Name, pipeline.GroupDigits(int64(b.points)), q.o.Target, attempt, d.Round(time.Millisecond), redact.String(err.Error())))
		if q.o.Sleep(q.ctx, d) != nil {
			return false
		}
		backoff = min(backoff*2, q.o.MaxBackoff)
	}
}

// finish counts b, the batch in flight, as done.
func (q *Queue) finish(b *batch, count func(*Stats)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflight = nil
	count(&q.stats)
	q.free.Put(b)
}

// failFatal fails the output for good: what waits is abandoned.
func (q *Queue) failFatal(err error) {
	q.mu.Lock()
	q.fatal = err
	q.room.Broadcast() // an Append waiting for room
	q.abandonLocked()
	report := q.report
	loss := q.lossLocked()
	q.mu.Unlock()
	if report != nil {
		report(loss)
	}
}

func (q *Queue) abandonLocked() {
	for _, b := range q.sealed {
		q.stats.Abandoned += int64(b.points)
	}
	q.sealed, q.waiting = nil, 0
	if q.inflight != nil {
		q.stats.Abandoned += int64(q.inflight.points)
		q.inflight = nil
	}
	if q.cur != nil {
		q.stats.Abandoned += int64(q.cur.points)
		q.cur.points, q.cur.data = 0, q.cur.data[:0]
	}
}

func (q *Queue) lossLocked() *LossError {
	return &LossError{Name: q.o.Name, Target: q.o.Target, Stats: q.stats, Err: q.fatal}
}

// Close seals the batch being filled, waits at most CloseTimeout for the
// sender to deliver what waits, and returns a *LossError when any point
// was lost (nil otherwise). Later calls return the same.
func (q *Queue) Close() error {
	q.closeMu.Lock()
	defer q.closeMu.Unlock()
	if q.closed {
		return q.closeErr
	}
	q.closed = true
	q.mu.Lock()
	q.closing = true
	if q.cur != nil && q.cur.points > 0 {
		q.sealLocked()
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(q.o.CloseTimeout)
	defer t.Stop()
	timedOut := false
	select {
	case <-q.done:
	case <-t.C:
		timedOut = true
		q.cancel()
		<-q.done
	}
	q.cancel()
	q.mu.Lock()
	defer q.mu.Unlock()
	pending := int64(0)
	for _, b := range q.sealed {
		pending += int64(b.points)
	}
	if q.inflight != nil {
		pending += int64(q.inflight.points)
	}
	q.abandonLocked()
	if timedOut && pending > 0 {
		q.o.Logger.Error(fmt.Sprintf("%s: %s points not delivered to %s within close_timeout (%s): they are lost",
			q.o.Name, pipeline.GroupDigits(pending), q.o.Target, q.o.CloseTimeout))
	}
	if q.stats.Dropped > 0 && q.dropSince > 0 {
		q.o.Logger.Error(fmt.Sprintf("%s: %s more points dropped because the buffer was full (%s in all)",
			q.o.Name, pipeline.GroupDigits(q.dropSince), pipeline.GroupDigits(q.stats.Dropped)))
		q.dropSince = 0
	}
	if q.stats.Lost() > 0 {
		q.closeErr = q.lossLocked()
	}
	return q.closeErr
}

// LossError says how many points an output could not deliver, and why
// (pipeline.LossError).
type LossError struct {
	Name, Target string
	Stats        Stats
	Err          error // the fatal refusal, if any
}

var _ pipeline.LossError = (*LossError)(nil)

// LostPoints implements pipeline.LossError.
func (e *LossError) LostPoints() int64 { return e.Stats.Lost() }

func (e *LossError) Unwrap() error { return e.Err }

func (e *LossError) Error() string {
	var parts []string
	s := e.Stats
	if s.Dropped > 0 {
		parts = append(parts, pipeline.GroupDigits(s.Dropped)+" dropped because the buffer was full")
	}
	if s.Rejected > 0 {
		parts = append(parts, pipeline.GroupDigits(s.Rejected)+" refused by the server")
	}
	if s.Abandoned > 0 {
		parts = append(parts, pipeline.GroupDigits(s.Abandoned)+" not delivered")
	}
	msg := fmt.Sprintf("%s: %s points not delivered to %s", e.Name, pipeline.GroupDigits(s.Lost()), e.Target)
	if len(parts) > 0 {
		msg += " (" + strings.Join(parts, ", ") + ")"
	}
	if e.Err != nil {
		msg += ": " + redact.String(e.Err.Error())
	}
	return msg
}
