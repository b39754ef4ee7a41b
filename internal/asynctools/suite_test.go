package asynctools

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/storage"
	"github.com/voicegate/voicegate/internal/tools"
)

// backendCase is one database the suite runs on: new returns a fresh,
// empty one; stored returns every stored copy of the jobs' data that could
// hold a caller's words: raw database bytes where there are files, River's
// args, the sealed fields decoded, the outcome rows.
type backendCase struct {
	name   string
	new    func(t *testing.T) Backend
	stored func(t *testing.T, b Backend) [][]byte
	// rescue is how long a restarted queue may take to run a job whose
	// process died (PostgreSQL: the dead leader's lease, about 15 s, then
	// River's rescuer and scheduler).
	rescue time.Duration
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	runSuite(t, backendCase{
		name: "sqlite",
		new: func(t *testing.T) Backend {
			return Backend{Driver: storage.DriverSQLite, DataDir: filepath.Join(t.TempDir(), "data")}
		},
		stored: func(t *testing.T, b Backend) [][]byte {
			var out [][]byte
			for _, f := range []string{JobsFile, JobsFile + "-wal"} {
				if raw, err := os.ReadFile(filepath.Join(b.DataDir, f)); err == nil {
					out = append(out, raw)
				}
			}
			db, err := sql.Open("sqlite", "file:"+filepath.Join(b.DataDir, JobsFile)+"?mode=ro&_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			return append(out, decodedRows(t, func(q string) [][]byte { return sqlRows(t, db, q) }, `SELECT json(args) FROM river_job`)...)
		},
		rescue: 10 * time.Second,
	})
}

func TestPostgres(t *testing.T) {
	pgtest.Need(t)
	t.Parallel()
	runSuite(t, backendCase{
		name: "postgres",
		new: func(t *testing.T) Backend {
			return Backend{Driver: storage.DriverPostgres, PostgresURL: pgtest.URL(t)}
		},
		stored: func(t *testing.T, b Backend) [][]byte {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, b.PostgresURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			rows := func(q string) [][]byte {
				rs, err := conn.Query(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				defer rs.Close()
				var out [][]byte
				for rs.Next() {
					var b []byte
					if err := rs.Scan(&b); err != nil {
						t.Fatal(err)
					}
					out = append(out, b)
				}
				return out
			}
			out := rows(`SELECT convert_to(row_to_json(j)::text, 'UTF8') FROM river_job j`)
			out = append(out, rows(`SELECT convert_to(row_to_json(o)::text, 'UTF8') FROM voicegate_async_outcome o`)...)
			return append(out, decodedRows(t, rows, `SELECT convert_to(args::text, 'UTF8') FROM river_job`)...)
		},
		rescue: 45 * time.Second,
	})
}

func sqlRows(t *testing.T, db *sql.DB, q string) [][]byte {
	t.Helper()
	rs, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out [][]byte
	for rs.Next() {
		var b []byte
		if err := rs.Scan(&b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// decodedRows returns each job's sealed field as bytes (a plaintext put
// there would be base64 in the JSON) and the outcome rows' sealed bytes.
func decodedRows(t *testing.T, rows func(q string) [][]byte, argsQuery string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, raw := range rows(argsQuery) {
		var a jobArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("job args %q: %v", raw, err)
		}
		out = append(out, raw, a.Sealed)
	}
	return append(out, rows(`SELECT sealed FROM voicegate_async_outcome WHERE sealed IS NOT NULL`)...)
}

// fakeAPI is a company's internal API on 127.0.0.1 that honours
// Idempotency-Key: a request with a key it has applied answers the stored
// answer and changes nothing.
type fakeAPI struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []apiReq
	applied map[string]string
	// respond answers the n-th request (1-based); nil: 200 with "answer".
	respond func(n int) (int, string)
	// hold, when set, keeps the first request until it is closed (the
	// change is applied first).
	hold chan struct{}
}

type apiReq struct {
	at                      time.Time
	key, callID, toolCallID string
	body                    string
}

func newAPI(t *testing.T, respond func(n int) (int, string)) *fakeAPI {
	t.Helper()
	api := &fakeAPI{applied: map[string]string{}, respond: respond}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		api.mu.Lock()
		api.reqs = append(api.reqs, apiReq{time.Now(), r.Header.Get(tools.HeaderIdempotencyKey), r.Header.Get(tools.HeaderCallID), r.Header.Get(tools.HeaderToolCallID), string(b)})
		n, key := len(api.reqs), r.Header.Get(tools.HeaderIdempotencyKey)
		prev, seen := api.applied[key]
		status, body := http.StatusOK, "answer for "+string(b)
		if api.respond != nil {
			status, body = api.respond(n)
		}
		if seen {
			status, body = http.StatusOK, prev
		} else if status == http.StatusOK {
			api.applied[key] = body
		}
		hold := api.hold
		if n == 1 && hold != nil {
			api.mu.Unlock()
			// Held past the slowest rescue (PostgreSQL's, 45 s): a dead
			// queue's request that answered first could let it store
			// the outcome it was cut off from (seen in CI under -race).
			select {
			case <-hold:
			case <-time.After(2 * time.Minute):
			}
		} else {
			api.mu.Unlock()
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(api.Close)
	return api
}

func (a *fakeAPI) requests() []apiReq {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]apiReq(nil), a.reqs...)
}

// effective is how many changes the API applied: one per key.
func (a *fakeAPI) effective() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.applied)
}

// recDeliverer records deliveries; failFirst of them fail.
type recDeliverer struct {
	mu        sync.Mutex
	got       []Delivery
	failFirst int
	tries     int
}

func (d *recDeliverer) Deliver(ctx context.Context, del Delivery) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tries++
	if d.tries <= d.failFirst {
		return errors.New("control URL unreachable")
	}
	d.got = append(d.got, del)
	return nil
}

func (d *recDeliverer) deliveries() []Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Delivery(nil), d.got...)
}

type recObserver struct {
	mu sync.Mutex
	n  map[Event]int
}

func (o *recObserver) observe(_ string, e Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[Event]int{}
	}
	o.n[e]++
}

func (o *recObserver) count(e Event) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[e]
}

func asyncTool(t *testing.T, name, url string, mut func(*tools.Config)) tools.Config {
	t.Helper()
	c := tools.Config{Name: name, URL: url, Async: true, Timeout: confval.Duration(time.Second),
		Deadline: confval.Duration(30 * time.Second), MaxAttempts: 5}
	if mut != nil {
		mut(&c)
	}
	c.Complete()
	if probs, _ := c.Validate(); len(probs) > 0 {
		t.Fatalf("tool config: %q", probs)
	}
	return c
}

func testKey(t *testing.T) Sealer {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	s, err := NewAESGCM(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("ASYNCTOOLS_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// openQueue opens a queue for the tools on b, closed when the test ends.
func openQueue(t *testing.T, b Backend, sealer Sealer, cfgs []tools.Config, del Deliverer, obs *recObserver, mut func(*Options)) *Queue {
	t.Helper()
	r, err := tools.New(cfgs, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Tools: cfgs, Executor: RouterExecutor{Router: r}, Deliverer: del, Sealer: sealer, Observer: obs.observe,
		Logger: testLogger(t), BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second,
		PollInterval: 50 * time.Millisecond, DeliveryTimeout: 2 * time.Second}
	o.hooks.riverTestOnly = true
	if mut != nil {
		mut(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := Open(ctx, b, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func start(t *testing.T, q *Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

func enqueue(t *testing.T, q *Queue, j Job) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Enqueue(ctx, j); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 20 ms until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle waits a little to let a wrong second execution or delivery show.
func settle() { time.Sleep(700 * time.Millisecond) }

func runSuite(t *testing.T, bc backendCase) {
	t.Run("ExecutedOnceDeliveredOnce", func(t *testing.T) {
		t.Parallel()
		api := newAPI(t, nil)
		del, obs := &recDeliverer{}, &recObserver{}
		q := openQueue(t, bc.new(t), testKey(t), []tools.Config{asyncTool(t, "lookup", api.URL+"/lookup", nil)}, del, obs, nil)
		start(t, q)
		enqueue(t, q, Job{CallID: "call-1", ToolCallID: "tc-1", Tool: "lookup", Arguments: json.RawMessage(`{"order":"A-1"}`), ControlURL: "https://control.example/c1"})
		waitFor(t, 10*time.Second, "one delivery", func() bool { return len(del.deliveries()) == 1 })
		settle()
		d, reqs := del.deliveries(), api.requests()
		if len(d) != 1 || len(reqs) != 1 {
			t.Fatalf("%d deliveries, %d requests; want 1 and 1", len(d), len(reqs))
		}
		want := Delivery{CallID: "call-1", ToolCallID: "tc-1", Tool: "lookup", ControlURL: "https://control.example/c1", Result: `answer for {"order":"A-1"}`}
		if d[0] != want {
			t.Fatalf("delivery %+v, want %+v", d[0], want)
		}
		r := reqs[0]
		if r.key != IdempotencyKey("call-1", "tc-1") || r.callID != "call-1" || r.toolCallID != "tc-1" || r.body != `{"order":"A-1"}` {
			t.Fatalf("request %+v", r)
		}
		if obs.count(EventEnqueued) != 1 || obs.count(EventCompleted) != 1 || obs.count(EventRetried) != 0 {
			t.Fatalf("events %v", obs.n)
		}
	})

	t.Run("RetryWithBackoffThenSuccess", func(t *testing.T) {
		t.Parallel()
		api := newAPI(t, func(n int) (int, string) {
			if n <= 2 {
				return http.StatusServiceUnavailable, "down"
			}
			return http.StatusOK, "slot at 10:30"
		})
		del, obs := &recDeliverer{}, &recObserver{}
		const base = 300 * time.Millisecond
		q := openQueue(t, bc.new(t), testKey(t), []tools.Config{asyncTool(t, "book", api.URL, nil)}, del, obs,
			func(o *Options) { o.BackoffBase = base })
		start(t, q)
		enqueue(t, q, Job{CallID: "call-2", ToolCallID: "tc-2", Tool: "book", Arguments: json.RawMessage(`{}`)})
		waitFor(t, 15*time.Second, "a delivery", func() bool { return len(del.deliveries()) == 1 })
		settle()
		reqs, d := api.requests(), del.deliveries()
		if len(reqs) != 3 || len(d) != 1 || d[0].Failed || d[0].Result != "slot at 10:30" {
			t.Fatalf("%d requests, deliveries %+v; want 3 requests and one answer", len(reqs), d)
		}
		// The same key on every attempt.
		for i, r := range reqs {
			if r.key != IdempotencyKey("call-2", "tc-2") {
				t.Fatalf("attempt %d sent Idempotency-Key %q", i+1, r.key)
			}
		}
		// Waits of base, then 2·base (River polls, so a little later).
		for i, min := range []time.Duration{base, 2 * base} {
			if gap := reqs[i+1].at.Sub(reqs[i].at); gap < min*9/10 {
				t.Errorf("attempt %d came %s after attempt %d, want at least %s", i+2, gap, i+1, min)
			}
		}
		if obs.count(EventRetried) != 2 || obs.count(EventCompleted) != 1 {
			t.Fatalf("events %v", obs.n)
		}
	})

	t.Run("GivesUp", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name     string
			status   int
			mut      func(*tools.Config)
			requests int
		}{
			// At about 0, 0.2 and 0.6 s; a fourth, 0.8 s later, would pass the
			// 1.2 s deadline.
			{"DeadlineExceeded", http.StatusServiceUnavailable, func(c *tools.Config) {
				c.Timeout = confval.Duration(500 * time.Millisecond)
				c.Deadline = confval.Duration(1200 * time.Millisecond)
				c.MaxAttempts = 100
			}, 3},
			{"MaxAttempts", http.StatusTooManyRequests, func(c *tools.Config) { c.MaxAttempts = 2 }, 2},
			{"NotRetryable", http.StatusBadRequest, nil, 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				api := newAPI(t, func(int) (int, string) { return tc.status, "no" })
				del, obs := &recDeliverer{}, &recObserver{}
				q := openQueue(t, bc.new(t), testKey(t), []tools.Config{asyncTool(t, "flaky", api.URL, tc.mut)}, del, obs, nil)
				start(t, q)
				enqueue(t, q, Job{CallID: "call-3", ToolCallID: "tc-3", Tool: "flaky", ControlURL: "https://control.example/c3"})
				waitFor(t, 15*time.Second, "the failure delivery", func() bool { return len(del.deliveries()) == 1 })
				settle()
				d := del.deliveries()
				want := Delivery{CallID: "call-3", ToolCallID: "tc-3", Tool: "flaky", ControlURL: "https://control.example/c3", Result: FailureResult, Failed: true}
				if len(d) != 1 || d[0] != want {
					t.Fatalf("deliveries %+v, want one %+v", d, want)
				}
				if n := len(api.requests()); n != tc.requests {
					t.Fatalf("%d requests, want %d", n, tc.requests)
				}
				if obs.count(EventDiscarded) != 1 || obs.count(EventRetried) != tc.requests-1 {
					t.Fatalf("events %v", obs.n)
				}
			})
		}
	})

	t.Run("DuplicateEnqueue", func(t *testing.T) {
		t.Parallel()
		api := newAPI(t, nil)
		del, obs := &recDeliverer{}, &recObserver{}
		q := openQueue(t, bc.new(t), testKey(t), []tools.Config{asyncTool(t, "lookup", api.URL, nil)}, del, obs, nil)
		j := Job{CallID: "call-4", ToolCallID: "tc-4", Tool: "lookup", Arguments: json.RawMessage(`{"n":1}`)}
		// Vapi redelivers the webhook: twice before the workers start, once
		// with other arguments.
		enqueue(t, q, j)
		enqueue(t, q, j)
		enqueue(t, q, Job{CallID: "call-4", ToolCallID: "tc-4", Tool: "lookup", Arguments: json.RawMessage(`{"n":2}`)})
		start(t, q)
		waitFor(t, 10*time.Second, "a delivery", func() bool { return len(del.deliveries()) == 1 })
		// And once the job is done.
		enqueue(t, q, j)
		settle()
		if n, d := len(api.requests()), len(del.deliveries()); n != 1 || d != 1 {
			t.Fatalf("%d requests, %d deliveries; want 1 and 1", n, d)
		}
		if obs.count(EventEnqueued) != 1 || obs.count(EventDuplicate) != 3 {
			t.Fatalf("events %v", obs.n)
		}
		// Another tool call of the call is another job.
		enqueue(t, q, Job{CallID: "call-4", ToolCallID: "tc-5", Tool: "lookup"})
		waitFor(t, 10*time.Second, "a second delivery", func() bool { return len(del.deliveries()) == 2 })
	})

	t.Run("DeliveryRetriedWithoutCallingAgain", func(t *testing.T) {
		t.Parallel()
		api := newAPI(t, nil)
		del, obs := &recDeliverer{failFirst: 2}, &recObserver{}
		q := openQueue(t, bc.new(t), testKey(t), []tools.Config{asyncTool(t, "lookup", api.URL, nil)}, del, obs, nil)
		start(t, q)
		enqueue(t, q, Job{CallID: "call-6", ToolCallID: "tc-6", Tool: "lookup", Arguments: json.RawMessage(`{}`)})
		waitFor(t, 15*time.Second, "a delivery", func() bool { return len(del.deliveries()) == 1 })
		settle()
		if n, d := len(api.requests()), del.deliveries(); n != 1 || len(d) != 1 || d[0].Result != "answer for {}" {
			t.Fatalf("%d requests, deliveries %+v; want 1 request and its answer delivered once", n, d)
		}
		if obs.count(EventDeliveryFailed) != 2 || obs.count(EventCompleted) != 1 {
			t.Fatalf("events %v", obs.n)
		}
	})

	// A process dies in the middle of a job (kill -9): its queue is cut off
	// the database without finishing anything, and a new queue on the same
	// database takes the job over.
	t.Run("Crash", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name string
			// duringRequest: dies while the internal API handles the
			// request (which it applies); else once the outcome is stored.
			duringRequest bool
			requests      int
		}{
			{"AfterOutcomeStored", false, 1},
			{"DuringRequest", true, 2},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				api := newAPI(t, nil)
				reached := make(chan struct{})
				if tc.duringRequest {
					api.hold = make(chan struct{})
					defer close(api.hold)
				}
				b, sealer := bc.new(t), testKey(t)
				cfgs := []tools.Config{asyncTool(t, "pay", api.URL, nil)}
				del1, del2, obs := &recDeliverer{}, &recDeliverer{}, &recObserver{}
				var once sync.Once
				q1 := openQueue(t, b, sealer, cfgs, del1, obs, func(o *Options) {
					o.hooks.crashable = true
					o.hooks.afterOutcome = func(ctx context.Context, j Job) bool {
						once.Do(func() { close(reached) })
						<-ctx.Done() // the process is dead by now
						return true
					}
				})
				start(t, q1)
				enqueue(t, q1, Job{CallID: "call-7", ToolCallID: "tc-7", Tool: "pay", Arguments: json.RawMessage(`{"amount":10}`), ControlURL: "https://control.example/c7"})
				if tc.duringRequest {
					waitFor(t, 10*time.Second, "the request", func() bool { return len(api.requests()) == 1 })
				} else {
					select {
					case <-reached:
					case <-time.After(10 * time.Second):
						t.Fatal("the job did not store its outcome")
					}
				}
				q1.crash()

				q2 := openQueue(t, b, sealer, cfgs, del2, obs, nil)
				start(t, q2)
				waitFor(t, bc.rescue, "the restarted queue's delivery", func() bool { return len(del2.deliveries()) == 1 })
				settle()
				if n := len(del1.deliveries()); n != 0 {
					t.Fatalf("the dead queue delivered %d times", n)
				}
				reqs := api.requests()
				if len(reqs) != tc.requests || api.effective() != 1 {
					t.Fatalf("%d requests, %d applied; want %d and 1", len(reqs), api.effective(), tc.requests)
				}
				for _, r := range reqs {
					if r.key != IdempotencyKey("call-7", "tc-7") {
						t.Fatalf("Idempotency-Key %q after the restart", r.key)
					}
				}
				d := del2.deliveries()
				if len(d) != 1 || d[0].Result != `answer for {"amount":10}` || d[0].ControlURL != "https://control.example/c7" || d[0].Failed {
					t.Fatalf("deliveries %+v", d)
				}
			})
		}
	})

	// Stop lets a running job finish: its answer is delivered once, and
	// the next queue on the database has nothing left to do.
	t.Run("StopWaitsForRunningJob", func(t *testing.T) {
		t.Parallel()
		api := newAPI(t, nil)
		api.hold = make(chan struct{})
		b, sealer := bc.new(t), testKey(t)
		cfgs := []tools.Config{asyncTool(t, "lookup", api.URL, nil)}
		del, obs := &recDeliverer{}, &recObserver{}
		q := openQueue(t, b, sealer, cfgs, del, obs, nil)
		start(t, q)
		enqueue(t, q, Job{CallID: "call-9", ToolCallID: "tc-9", Tool: "lookup", Arguments: json.RawMessage(`{}`)})
		waitFor(t, 10*time.Second, "the request", func() bool { return len(api.requests()) == 1 })
		time.AfterFunc(300*time.Millisecond, func() { close(api.hold) })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if n := len(del.deliveries()); n != 1 {
			t.Fatalf("%d deliveries when Stop returned, want 1", n)
		}
		q.Close()
		del2 := &recDeliverer{}
		start(t, openQueue(t, b, sealer, cfgs, del2, obs, nil))
		settle()
		if n, d := len(api.requests()), len(del2.deliveries()); n != 1 || d != 0 {
			t.Fatalf("after a restart: %d requests, %d more deliveries; want 1 and 0", n, d)
		}
	})

	t.Run("NotInClear", func(t *testing.T) {
		t.Parallel()
		const argSecret, urlSecret, answerSecret = "SSN-987-65-4321", "tok-9f8e7d6c5b4a", "ANSWER-1234-SECRET"
		api := newAPI(t, func(int) (int, string) { return http.StatusOK, answerSecret })
		del, obs := &recDeliverer{}, &recObserver{}
		b := bc.new(t)
		var inFlight [][]byte
		q := openQueue(t, b, testKey(t), []tools.Config{asyncTool(t, "lookup", api.URL, nil)}, del, obs, func(o *Options) {
			// Looked at with the answer stored, before its delivery.
			o.hooks.afterOutcome = func(context.Context, Job) bool {
				inFlight = bc.stored(t, b)
				return false
			}
		})
		enqueue(t, q, Job{CallID: "call-8", ToolCallID: "tc-8", Tool: "lookup", Arguments: json.RawMessage(`{"ssn":"` + argSecret + `"}`), ControlURL: "https://control.example/" + urlSecret})
		queued := bc.stored(t, b)
		start(t, q)
		waitFor(t, 10*time.Second, "a delivery", func() bool { return len(del.deliveries()) == 1 })
		if d := del.deliveries()[0]; d.Result != answerSecret || !strings.HasSuffix(d.ControlURL, urlSecret) {
			t.Fatalf("delivery %+v", d)
		}
		if !strings.Contains(api.requests()[0].body, argSecret) {
			t.Fatal("the internal API did not get the arguments")
		}
		done := bc.stored(t, b)
		for when, stored := range map[string][][]byte{"queued": queued, "answered": inFlight, "delivered": done} {
			if len(stored) == 0 {
				t.Fatalf("%s: nothing read from the database", when)
			}
			for _, s := range stored {
				for _, secret := range []string{argSecret, urlSecret, answerSecret} {
					if bytes.Contains(s, []byte(secret)) {
						t.Errorf("%s: %q stored in clear", when, secret)
					}
				}
			}
		}
	})
}

// TestPostgresConcurrentMigrations: processes starting at once on a new
// database each open the queue; River's tables and ours are made once.
func TestPostgresConcurrentMigrations(t *testing.T) {
	pgtest.Need(t)
	t.Parallel()
	url := pgtest.URL(t)
	cfgs := []tools.Config{asyncTool(t, "lookup", "http://127.0.0.1:9/x", nil)}
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			q, err := Open(ctx, Backend{Driver: storage.DriverPostgres, PostgresURL: url},
				Options{Tools: cfgs, Executor: RouterExecutor{}, Deliverer: &recDeliverer{}, Sealer: testKey(t)})
			if err == nil {
				q.Close()
			}
			errs <- err
		}()
	}
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("open: %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Fatal("open did not return")
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var versions, dup int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) - count(DISTINCT version) FROM river_migration`).Scan(&versions, &dup); err != nil {
		t.Fatal(err)
	}
	if versions == 0 || dup != 0 {
		t.Fatalf("river_migration: %d versions, %d duplicates", versions, dup)
	}
}

// TestSQLiteFileMode: jobs.db is created 0600 in a 0700 directory.
func TestSQLiteFileMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	api := newAPI(t, nil)
	openQueue(t, Backend{Driver: storage.DriverSQLite, DataDir: dir}, testKey(t), []tools.Config{asyncTool(t, "x", api.URL, nil)}, &recDeliverer{}, &recObserver{}, nil)
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, JobsFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
}

func ExampleIdempotencyKey() {
	fmt.Println(IdempotencyKey("call-1", "tc-1") == IdempotencyKey("call-1", "tc-1"), IdempotencyKey("call-1", "tc-1") == IdempotencyKey("call-1", "tc-2"))
	// Output: true false
}
