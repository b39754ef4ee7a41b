package app

import (
	"context"
	"time"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/dispatch"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/redisstate"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/state"
	"github.com/voicegate/voicegate/internal/vapi"
)

// openState opens the state replicas share (state.driver): in the process
// (a.Sessions and a.Replay), or in Redis, with a.Sessions and a.Replay as
// the per-replica memory it falls back to while Redis is unreachable.
func (a *App) openState(cfg *config.Config, o Options) error {
	window, capacity := cfg.Vapi.Replay.Window.D(), cfg.Vapi.Replay.Capacity
	// A request's signature is checked when its headers are in; its body
	// may take up to the read timeout to arrive before the replay lookup.
	grace := cfg.Server.ReadTimeout.D()
	if !cfg.State.Shared() {
		a.Sessions = session.New(cfg.Sessions.TTL.D(), cfg.Sessions.Capacity, o.Now)
		a.Replay = replay.New(window, capacity)
		a.Replay.SetGrace(grace)
		a.Tracker, a.Guard = a.Sessions, a.Replay
		a.memo = dispatch.NewMemo(memoCapacity, o.Now)
		return nil
	}
	conn, err := redisstate.Open(cfg.State, redisstate.Options{Log: a.log.With(logkey.Component, "state"), Now: o.Now})
	if err != nil {
		return err
	}
	a.redis = conn
	if a.keys != nil {
		// Answers and tool results hold personal data: sealed in Redis
		// under a key derived from the keyring every replica shares.
		if err := conn.SealWith(a.keys.LookupKey()); err != nil {
			conn.Close()
			return err
		}
	} else {
		a.log.Warn("state: no records keyring (this store keeps no records): answers are stored in Redis in clear")
	}
	tracker := redisstate.NewTracker(conn, cfg.Sessions.TTL.D(), cfg.Sessions.Capacity, o.Now)
	guard := redisstate.NewGuard(conn, window, grace, capacity, tracker)
	a.redisTracker = tracker
	a.Sessions, a.Replay = tracker.Local(), guard.Local()
	a.Tracker, a.Guard = tracker, guard
	a.memo = fallbackMemo{redisstate.NewMemo(conn, dispatch.MemoTTL), dispatch.NewMemo(memoCapacity, o.Now)}
	return nil
}

// Redis returns the shared state's connection (nil with state.driver
// memory), for tests and measurements that count its round trips.
func (a *App) Redis() *redisstate.Conn { return a.redis }

// memoCapacity bounds the tool results a process keeps for redeliveries
// (each a tool's answer: at most tools' max response size, usually small).
const memoCapacity = 10_000

// fallbackMemo is Redis's memo, and this replica's while Redis is down.
type fallbackMemo struct {
	shared dispatch.ResultMemo
	local  *dispatch.Memo
}

func (m fallbackMemo) Recall(ctx context.Context, callID string, ids []string) (map[string]vapi.ToolResult, error) {
	kept, err := m.shared.Recall(ctx, callID, ids)
	local, _ := m.local.Recall(ctx, callID, ids)
	for id, r := range local {
		if _, ok := kept[id]; !ok {
			if kept == nil {
				kept = make(map[string]vapi.ToolResult, len(local))
			}
			kept[id] = r
		}
	}
	if err != nil && len(kept) > 0 {
		err = nil // what this replica kept is known
	}
	return kept, err
}

func (m fallbackMemo) Keep(ctx context.Context, callID string, results []vapi.ToolResult) error {
	if err := m.shared.Keep(ctx, callID, results); err != nil {
		return m.local.Keep(ctx, callID, results)
	}
	return nil
}

// observeState registers the state's metrics and logs the expiry of
// calls no end event closed.
func (a *App) observeState(o Options) {
	expired := func(id string, last session.State) {
		a.Metrics.SessionsExpired.Inc()
		dispatch.LogExpired(a.log, id, last, o.Now())
	}
	a.Sessions.OnExpire = func(s *session.Session) { expired(s.ID, s.State()) }
	if a.redisTracker != nil {
		a.redisTracker.OnExpire = expired
		a.Metrics.ObserveRedis(func() float64 {
			if a.redis.Up() {
				return 1
			}
			return 0
		}, func() float64 { return float64(a.replicas.Load()) })
	}
}

// sessionCount is voicegate_active_calls: the deployment's live calls
// (at the last sweep) with Redis, this process's otherwise.
func (a *App) sessionCount() float64 {
	if a.redisTracker != nil {
		return float64(a.redisTracker.Len())
	}
	return float64(a.Sessions.Len())
}

// localSideEffects is dispatch.Config.LocalSideEffects.
func localSideEffects(cfg *config.Config) bool { return cfg.State.OnUnavailable == state.Local }

// ReplicaHeartbeat is how often a replica notes itself in Redis; one not
// heard of for three of them is counted out.
const ReplicaHeartbeat = 2 * time.Second

// shareLimits makes the rate limits global across the replicas counted in
// Redis (state.driver redis): each enforces its share.
func (a *App) shareLimits(cfg *config.Config) {
	if a.redis == nil {
		return
	}
	a.redis.CountReplicas(cfg.Replica, ReplicaHeartbeat, func(n int) {
		a.replicas.Store(int64(n))
		a.Gateway.ShareLimits(n)
		a.log.Info("replicas counted: rate limits shared", logkey.Count, n)
	})
}
