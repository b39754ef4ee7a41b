package redisstate

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/vapi"
)

// Memo keeps tool results for their redelivery (dispatch.ResultMemo) in
// Redis, a hash per call expiring ttl after its last write, so that the
// replica that gets the redelivery finds them.
type Memo struct {
	c   *Conn
	ttl time.Duration
}

// NewMemo returns a memo keeping results for ttl.
func NewMemo(c *Conn, ttl time.Duration) *Memo { return &Memo{c: c, ttl: ttl} }

// memoResult is a ToolResult with the fields Vapi never sees.
type memoResult struct {
	vapi.ToolResult
	Outcome    string `json:"o"`
	Status     int    `json:"s"`
	DurationUS int64  `json:"d"`
}

// Recall implements dispatch.ResultMemo: one round trip.
func (m *Memo) Recall(ctx context.Context, callID string, ids []string) (map[string]vapi.ToolResult, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if !m.c.Up() {
		return nil, errDown
	}
	vals, err := m.c.rdb.HMGet(ctx, m.c.key("m", callID), ids...).Result()
	if err != nil {
		m.c.failed(err)
		return nil, err
	}
	var out map[string]vapi.ToolResult
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		plain, err := m.c.seal.openBytes([]byte(s), callID+"\x00"+ids[i])
		if err != nil {
			continue // not ours to read: the tool runs again (same Idempotency-Key)
		}
		var r memoResult
		if json.Unmarshal(plain, &r) != nil {
			continue
		}
		r.ToolResult.Outcome, r.ToolResult.Status, r.ToolResult.Duration = r.Outcome, r.Status, time.Duration(r.DurationUS)*time.Microsecond
		if out == nil {
			out = make(map[string]vapi.ToolResult, len(ids))
		}
		out[ids[i]] = r.ToolResult
	}
	return out, nil
}

// Keep implements dispatch.ResultMemo: one round trip.
func (m *Memo) Keep(ctx context.Context, callID string, results []vapi.ToolResult) error {
	if !m.c.Up() {
		return errDown
	}
	var fields []any
	for _, r := range results {
		if r.ToolCallID == "" || r.Status == 0 {
			continue
		}
		b, err := json.Marshal(memoResult{ToolResult: r, Outcome: r.Outcome, Status: r.Status, DurationUS: r.Duration.Microseconds()})
		if err != nil {
			return err
		}
		fields = append(fields, r.ToolCallID, m.c.seal.sealBytes(b, callID+"\x00"+r.ToolCallID))
	}
	if len(fields) == 0 {
		return nil
	}
	k := m.c.key("m", callID)
	_, err := m.c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, fields...)
		p.PExpire(ctx, k, m.ttl)
		return nil
	})
	m.c.failed(err)
	return err
}
