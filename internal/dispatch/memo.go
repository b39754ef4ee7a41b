package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/vapi"
)

// ResultMemo keeps the results of tool calls that ran but could not be
// answered — their record was not stored, so the answer was a 503 — so
// that the redelivery reuses them instead of calling the internal API
// again: a tool call is executed once even when the database fails after
// it. With shared state it lives in Redis (any replica may get the
// redelivery); otherwise in the process.
type ResultMemo interface {
	// Recall returns the kept results of call callID's tool calls ids.
	Recall(ctx context.Context, callID string, ids []string) (map[string]vapi.ToolResult, error)
	// Keep keeps results of call callID for MemoTTL.
	Keep(ctx context.Context, callID string, results []vapi.ToolResult) error
}

// MemoTTL is how long a tool call's result is kept for its redelivery
// (Vapi's backoffPlan retries within minutes).
const MemoTTL = time.Hour

// memoizable reports whether r is worth keeping: the internal API acted
// (it answered), so calling it again would act twice.
func memoizable(r vapi.ToolResult) bool { return r.ToolCallID != "" && r.Status != 0 }

// Memo is the in-process ResultMemo, bounded in entries.
type Memo struct {
	now func() time.Time
	cap int
	mu  sync.Mutex
	m   map[string]memoEntry // callID + "\x00" + toolCallID
}

type memoEntry struct {
	r       vapi.ToolResult
	expires time.Time
}

// NewMemo returns a memo holding at most capacity results.
func NewMemo(capacity int, now func() time.Time) *Memo {
	return &Memo{now: now, cap: capacity, m: make(map[string]memoEntry)}
}

// Recall implements ResultMemo.
func (m *Memo) Recall(_ context.Context, callID string, ids []string) (map[string]vapi.ToolResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.m) == 0 {
		return nil, nil
	}
	now := m.now()
	var out map[string]vapi.ToolResult
	for _, id := range ids {
		if e, ok := m.m[callID+"\x00"+id]; ok && now.Before(e.expires) {
			if out == nil {
				out = make(map[string]vapi.ToolResult, len(ids))
			}
			out[id] = e.r
		}
	}
	return out, nil
}

// Keep implements ResultMemo.
func (m *Memo) Keep(_ context.Context, callID string, results []vapi.ToolResult) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for k, e := range m.m {
		if !now.Before(e.expires) || len(m.m) >= m.cap {
			delete(m.m, k)
		}
	}
	for _, r := range results {
		if memoizable(r) {
			m.m[callID+"\x00"+r.ToolCallID] = memoEntry{r: r, expires: now.Add(MemoTTL)}
		}
	}
	return nil
}
