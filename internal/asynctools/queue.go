package asynctools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/storage"
	"github.com/voicegate/voicegate/internal/tools"
)

// queueName is River's queue of async tool jobs.
const queueName = "voicegate_async_tools"

// Queue runs async tool jobs durably. Open it, Enqueue (before or after
// Start), Start the workers, Stop them, Close.
type Queue struct {
	o     Options
	log   *slog.Logger
	tools map[string]toolSettings
	b     *backend
	// jobTimeout is River's bound on any job (the longest tool's).
	jobTimeout time.Duration

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// toolSettings are what a job needs of its tool's configuration.
type toolSettings struct {
	timeout, deadline time.Duration
	maxAttempts       int
}

// jobArgs are River's args of a job: in clear only what identifies it and
// bounds its retries; the arguments and control URL sealed.
type jobArgs struct {
	CallID      string    `json:"call_id" river:"unique"`
	ToolCallID  string    `json:"tool_call_id" river:"unique"`
	Tool        string    `json:"tool"`
	Sealed      []byte    `json:"sealed"`
	Deadline    time.Time `json:"deadline"`
	MaxAttempts int       `json:"max_attempts"`
}

// Kind implements river.JobArgs.
func (jobArgs) Kind() string { return "voicegate_async_tool" }

// sealedPart is what jobArgs.Sealed holds.
type sealedPart struct {
	Arguments  json.RawMessage `json:"arguments"`
	ControlURL string          `json:"control_url,omitempty"`
}

func argsAAD(callID, toolCallID string) []byte {
	return []byte("voicegate/asynctools/args/v1\x00" + callID + "\x00" + toolCallID)
}

func resultAAD(callID, toolCallID string) []byte {
	return []byte("voicegate/asynctools/result/v1\x00" + callID + "\x00" + toolCallID)
}

// Open opens the queue's database (b.Driver: jobs.db in b.DataDir, or
// PostgreSQL at b.PostgresURL), applies River's migrations and this
// package's, and builds the workers without starting them. It fails on
// invalid options or an unreachable or unmigratable database.
func Open(ctx context.Context, b Backend, o Options) (*Queue, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	if o.Executor == nil || o.Deliverer == nil || o.Sealer == nil {
		return nil, errors.New("asynctools: Executor, Deliverer and Sealer are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Observer == nil {
		o.Observer = func(string, Event) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Workers = cmpOr(o.Workers, DefaultWorkers)
	o.Retention = cmpOr(o.Retention, DefaultRetention)
	o.DedupRetention = cmpOr(o.DedupRetention, DefaultDedupRetention)
	o.DeliveryTimeout = cmpOr(o.DeliveryTimeout, DefaultDeliveryTimeout)
	o.BackoffBase = cmpOr(o.BackoffBase, DefaultBackoffBase)
	o.BackoffMax = cmpOr(o.BackoffMax, DefaultBackoffMax)
	o.PollInterval = cmpOr(o.PollInterval, DefaultPollInterval)
	q := &Queue{o: o, log: o.Logger.With(logkey.Component, "asynctools"), tools: map[string]toolSettings{}}
	var longestDeadline time.Duration
	for _, t := range o.Tools {
		if !t.Async {
			continue
		}
		s := toolSettings{timeout: t.Timeout.D(), deadline: t.Deadline.D(), maxAttempts: t.MaxAttempts}
		if s.timeout <= 0 || s.deadline <= 0 || s.maxAttempts <= 0 {
			return nil, fmt.Errorf("asynctools: tool %s: timeout, deadline and max_attempts must be set (Config.Complete)", t.Name)
		}
		q.tools[t.Name] = s
		q.jobTimeout = max(q.jobTimeout, q.timeoutOf(s))
		longestDeadline = max(longestDeadline, s.deadline)
	}
	if q.jobTimeout == 0 {
		q.jobTimeout = q.timeoutOf(toolSettings{timeout: tools.DefaultTimeout})
	}
	if o.RescueAfter == 0 {
		o.RescueAfter = q.jobTimeout + rescueMargin
	}
	switch {
	case o.RescueAfter <= q.jobTimeout:
		return nil, fmt.Errorf("asynctools: RescueAfter %s must exceed the longest job timeout %s, or running jobs are run twice", o.RescueAfter, q.jobTimeout)
	case o.DedupRetention <= longestDeadline:
		return nil, fmt.Errorf("asynctools: DedupRetention %s must exceed the longest tool deadline %s", o.DedupRetention, longestDeadline)
	case o.BackoffMax < o.BackoffBase:
		return nil, fmt.Errorf("asynctools: BackoffMax %s is below BackoffBase %s", o.BackoffMax, o.BackoffBase)
	}
	q.o = o
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &worker{q: q}); err != nil {
		return nil, fmt.Errorf("asynctools: %w", err)
	}
	cfg := func() *river.Config {
		return &river.Config{
			Queues:                      map[string]river.QueueConfig{queueName: {MaxWorkers: o.Workers}},
			Workers:                     workers,
			JobTimeout:                  q.jobTimeout,
			RescueStuckJobsAfter:        o.RescueAfter,
			CompletedJobRetentionPeriod: o.Retention,
			CancelledJobRetentionPeriod: o.Retention,
			DiscardedJobRetentionPeriod: o.Retention,
			FetchPollInterval:           o.PollInterval,
			FetchCooldown:               min(o.PollInterval, 100*time.Millisecond),
			Logger:                      q.log.With("subsystem", "river"),
			TestOnly:                    o.hooks.riverTestOnly,
		}
	}
	var err error
	if b.Driver == storage.DriverPostgres {
		q.b, err = openPostgres(ctx, b.PostgresURL, cfg, o.hooks.crashable)
	} else {
		q.b, err = openSQLite(ctx, b.DataDir, cfg)
	}
	if err != nil {
		return nil, err
	}
	return q, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// timeoutOf is River's bound on a job of a tool: one attempt, one
// delivery, and the job's own database work.
func (q *Queue) timeoutOf(s toolSettings) time.Duration {
	return s.timeout + q.o.DeliveryTimeout + jobSlack
}

// Start starts the workers and the purge of old outcome rows. On SQLite it
// first makes the jobs a dead process left running available again. ctx
// bounds starting only: the workers run until Stop.
func (q *Queue) Start(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		return errors.New("asynctools: already started")
	}
	if q.b.takeOver != nil {
		if err := q.b.takeOver(ctx); err != nil {
			return fmt.Errorf("asynctools: take over jobs left running: %w", err)
		}
	}
	if err := q.b.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("asynctools: start: %w", err)
	}
	q.started = true
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	q.cancel = cancel
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		q.purgeLoop(pctx)
	}()
	return nil
}

// Stop stops the workers: no new job starts, running ones finish. When ctx
// ends first, their contexts are cancelled (an interrupted job is retried
// after a restart) and Stop still waits for them, up to 10 s more. It
// returns ctx's error when it had to cancel.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.started || q.stopped {
		return nil
	}
	q.stopped = true
	q.cancel()
	q.wg.Wait()
	err := q.b.client.Stop(ctx)
	if err == nil {
		return nil
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if herr := q.b.client.StopAndCancel(hctx); herr != nil {
		return fmt.Errorf("asynctools: stop: %w (then: %w)", err, herr)
	}
	return err
}

// Close stops the workers (30 s at most, see Stop) and closes the database.
func (q *Queue) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := q.Stop(ctx)
	q.b.close()
	return err
}

// crash cuts the queue off its database, as a killed process is, then
// stops what is left of it (tests).
func (q *Queue) crash() {
	q.b.sever()
	q.mu.Lock()
	if q.cancel != nil {
		q.cancel()
	}
	q.mu.Unlock()
	q.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q.b.client.StopAndCancel(ctx)
	q.b.close()
}

// Enqueue queues a job for an async tool. A job whose call and tool call
// ids were enqueued before (a redelivered webhook) is not queued again:
// Enqueue returns nil and the Observer is told EventDuplicate. It returns
// ErrNotAsync for a tool not configured async, ErrInvalidJob without ids,
// and the database's error when the job could not be stored (it then does
// not exist).
func (q *Queue) Enqueue(ctx context.Context, j Job) error {
	if j.CallID == "" || j.ToolCallID == "" {
		return ErrInvalidJob
	}
	s, ok := q.tools[j.Tool]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotAsync, j.Tool)
	}
	// River forgets a finished job after Retention; the outcome row
	// remembers it for DedupRetention.
	var one int
	switch err := q.b.queryRow(ctx, `SELECT 1 FROM `+outcomeTable+` WHERE call_id = ? AND tool_call_id = ?`, j.CallID, j.ToolCallID).Scan(&one); {
	case err == nil:
		q.o.Observer(j.Tool, EventDuplicate)
		return nil
	case !errors.Is(err, errNoRows):
		return fmt.Errorf("asynctools: enqueue: %w", err)
	}
	args := j.Arguments
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	plain, err := json.Marshal(sealedPart{Arguments: args, ControlURL: j.ControlURL})
	if err != nil {
		return fmt.Errorf("asynctools: enqueue: arguments: %w", err)
	}
	sealed, err := q.o.Sealer.Seal(j.CallID, plain, argsAAD(j.CallID, j.ToolCallID))
	if err != nil {
		return fmt.Errorf("asynctools: enqueue: seal: %w", err)
	}
	res, err := q.b.client.Insert(ctx, jobArgs{
		CallID: j.CallID, ToolCallID: j.ToolCallID, Tool: j.Tool, Sealed: sealed,
		Deadline: q.o.Now().Add(s.deadline).UTC(), MaxAttempts: s.maxAttempts,
	}, &river.InsertOpts{
		Queue:       queueName,
		MaxAttempts: s.maxAttempts + DeliveryAttempts,
		UniqueOpts:  river.UniqueOpts{ByArgs: true},
	})
	if err != nil {
		return fmt.Errorf("asynctools: enqueue: %w", err)
	}
	if res.UniqueSkippedAsDuplicate {
		q.o.Observer(j.Tool, EventDuplicate)
		return nil
	}
	q.o.Observer(j.Tool, EventEnqueued)
	return nil
}

// backoff is the wait after attempt n (1-based): BackoffBase·2^(n-1), at
// most BackoffMax.
func (q *Queue) backoff(attempt int) time.Duration {
	d := q.o.BackoffBase
	for i := 1; i < attempt && d < q.o.BackoffMax; i++ {
		d *= 2
	}
	return min(d, q.o.BackoffMax)
}

// purgeLoop deletes outcome rows older than DedupRetention, now and then
// every minute (or DedupRetention/10 when shorter), until ctx ends.
func (q *Queue) purgeLoop(ctx context.Context) {
	every := min(time.Minute, q.o.DedupRetention/10)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cutoff := q.o.Now().Add(-q.o.DedupRetention).UnixMilli()
		if _, err := q.b.exec(ctx, `DELETE FROM `+outcomeTable+` WHERE created_at < ?`, cutoff); err != nil && ctx.Err() == nil {
			q.log.Warn("purge of old async tool outcomes failed", logkey.Err, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
