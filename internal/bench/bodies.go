package bench

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Body is one message of a workload, unsigned: for benchmarks that call
// the handler directly (internal/gateway's state benchmarks) with the same
// mix the load generator sends.
type Body struct {
	Kind string // "status-update", "transcript-partial", ... (the report's types)
	Data []byte
}

// Bodies renders n bodies of w's mix (a Vapi mix) as Run would send them:
// w.Calls calls interleaved, each replaced by a fresh one when it ends,
// every body unique. w.CallPrefix names the calls (default: from the
// clock).
func Bodies(w Workload, n int, seed uint64) ([]Body, error) {
	if w.Mix == "twilio" {
		return nil, fmt.Errorf("bench.Bodies renders Vapi's mixes, not %q", w.Mix)
	}
	if w.Calls <= 0 {
		w.Calls = 32
	}
	if w.ToolName == "" {
		w.ToolName = "getAppointment"
	}
	if w.CallPrefix == "" {
		w.CallPrefix = fmt.Sprintf("bench-%x", time.Now().UnixNano())
	}
	b := &builder{w: w, now: time.Now(), rng: rand.New(rand.NewPCG(seed, 7))}
	reqs := b.build(n, nil)
	out := make([]Body, len(reqs))
	for i, r := range reqs {
		out[i] = Body{Kind: kindNames[r.kind], Data: r.raw}
	}
	return out, nil
}

// SelfCPU returns this process's user+system CPU time (zero where it is not
// measured).
func SelfCPU() time.Duration { return selfCPU() }

// SelfCPUTimes returns this process's user and system CPU time apart
// (zero where they are not measured).
func SelfCPUTimes() (user, sys time.Duration) { return selfCPUTimes() }
