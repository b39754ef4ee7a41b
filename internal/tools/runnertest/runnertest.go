// Package runnertest is the contract every tools.Runner must meet, as one
// test suite: the synchronous Router runs it today, and the durable queued
// runner must pass the same suite before it is wired in. The internal API
// is a local HTTP server, as the customer's would be.
package runnertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/vapi"
)

// Run runs the suite; open returns a Runner for the tool configurations.
func Run(t *testing.T, open func(t *testing.T, cfgs []tools.Config) tools.Runner) {
	ctx := context.Background()
	var hits, inflight, peak atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/slow":
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		case "/pause":
			n := inflight.Add(1)
			for {
				if p := peak.Load(); n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			select { // held 500 ms, so that concurrent calls overlap
			case <-time.After(500 * time.Millisecond):
			case <-r.Context().Done():
			}
			inflight.Add(-1)
		case "/broken":
			http.Error(w, "stack trace: NullPointerException at db.query(internal-db-7:5432)", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"echo": json.RawMessage(b), "toolCallId": r.Header.Get(tools.HeaderToolCallID),
			"callId": r.Header.Get(tools.HeaderCallID)})
	}))
	t.Cleanup(api.Close)
	tool := func(name, path string, mut func(*tools.Config)) tools.Config {
		c := tools.Config{Name: name, URL: api.URL + path, Method: http.MethodPost, Timeout: confval.Duration(time.Second),
			MaxConcurrency: 8, MaxResponseBytes: 1 << 16}
		if mut != nil {
			mut(&c)
		}
		return c
	}
	schema := map[string]any{"type": "object", "required": []any{"date"}, "properties": map[string]any{"date": map[string]any{"type": "string"}}}
	r := open(t, []tools.Config{
		tool("echo", "/echo", nil),
		tool("strict", "/echo", func(c *tools.Config) { c.Schema = schema }),
		tool("slow", "/slow", func(c *tools.Config) { c.Timeout = confval.Duration(200 * time.Millisecond) }),
		tool("broken", "/broken", nil),
		tool("pause", "/pause", nil),
	})
	inv := func(id, name, args string) vapi.Invocation {
		return vapi.Invocation{ID: id, Name: name, Args: json.RawMessage(args)}
	}

	t.Run("ResultsInCallOrderWithTheirOwnAnswers", func(t *testing.T) {
		invs := []vapi.Invocation{inv("a", "echo", `{"n":1}`), inv("b", "echo", `{"n":2}`), inv("c", "echo", `{"n":3}`)}
		res := r.CallAll(ctx, tools.CallInfo{CallID: "call-1"}, invs)
		if len(res) != len(invs) {
			t.Fatalf("%d results for %d calls", len(res), len(invs))
		}
		for i, x := range res {
			if x.ToolCallID != invs[i].ID || x.Name != "echo" || x.Error != "" || !strings.Contains(x.Result, `"toolCallId":"`+invs[i].ID+`"`) {
				t.Fatalf("result %d: %+v", i, x)
			}
			// The arguments and the call reach the internal API.
			if !strings.Contains(x.Result, fmt.Sprintf(`"echo":{"n":%d}`, i+1)) || !strings.Contains(x.Result, `"callId":"call-1"`) {
				t.Fatalf("result %d does not carry its arguments and call id: %s", i, x.Result)
			}
		}
	})

	t.Run("CallsRunConcurrently", func(t *testing.T) {
		// Four calls are in flight at the internal API at once, and answer
		// in call order.
		peak.Store(0)
		invs := []vapi.Invocation{inv("p1", "pause", `{}`), inv("p2", "pause", `{}`), inv("p3", "pause", `{}`), inv("p4", "pause", `{}`)}
		res := r.CallAll(ctx, tools.CallInfo{}, invs)
		if p := peak.Load(); p != 4 {
			t.Fatalf("at most %d of 4 calls were in flight at once: they did not run concurrently", p)
		}
		for i, x := range res {
			if x.ToolCallID != invs[i].ID || x.Error != "" {
				t.Fatalf("result %d: %+v", i, x)
			}
		}
	})

	t.Run("TheCallersContextEndsTheCall", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		res := r.Call(cctx, tools.CallInfo{}, inv("c", "echo", `{}`))
		if res.Error == "" || res.Result != "" {
			t.Fatalf("a call whose caller had already gone: %+v, want an error result", res)
		}
	})

	t.Run("UnknownToolIsAnErrorResult", func(t *testing.T) {
		res := r.Call(ctx, tools.CallInfo{}, inv("u", "nope", `{}`))
		if res.Result != "" || !strings.Contains(res.Error, `"nope"`) {
			t.Fatalf("%+v", res)
		}
	})

	t.Run("InvalidArgumentsNeverReachTheAPI", func(t *testing.T) {
		before := hits.Load()
		res := r.Call(ctx, tools.CallInfo{}, inv("s", "strict", `{"day":"monday"}`))
		if res.Result != "" || !strings.Contains(res.Error, "Invalid arguments for strict") {
			t.Fatalf("%+v", res)
		}
		if hits.Load() != before {
			t.Fatal("invalid arguments reached the internal API")
		}
	})

	t.Run("TimeoutIsASafeErrorResult", func(t *testing.T) {
		start := time.Now()
		res := r.Call(ctx, tools.CallInfo{}, inv("t", "slow", `{}`))
		if res.Result != "" || res.Error == "" || time.Since(start) > 1500*time.Millisecond {
			t.Fatalf("%+v after %s", res, time.Since(start))
		}
	})

	t.Run("FailuresLeakNoInternalDetail", func(t *testing.T) {
		res := r.Call(ctx, tools.CallInfo{}, inv("x", "broken", `{}`))
		if res.Result != "" || res.Error == "" {
			t.Fatalf("%+v", res)
		}
		for _, leak := range []string{"NullPointer", "stack trace", "internal-db", "5432", api.URL} {
			if strings.Contains(res.Error, leak) {
				t.Fatalf("the error spoken to the caller leaks %q: %s", leak, res.Error)
			}
		}
	})
}
