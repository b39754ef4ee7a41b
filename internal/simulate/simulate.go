// Package simulate provides scripted, signed Vapi calls played against any
// voicegate (or other server-URL) deployment, as a smoke test: each step's
// HTTP status and latency is printed and checked against what a correct
// receiver answers.
//
// By default every request carries voicegate's dry-run marker (inside the
// signed body): voicegate answers it fully — authentication, decoding,
// routing, tool lookup and argument validation — without storing anything
// or calling an internal API, and says so in a response header that each
// step checks. Effects asks for a real call instead.
//
// The twilio scenarios play Twilio's part against the Twilio door: an
// incoming call, its status callbacks and retries, and the forged or
// altered requests a correct receiver refuses (twilio.go). That door has
// no dry run: a scenario that stores a call needs Effects.
package simulate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/confval"
)

// Scenarios lists the scenario names Run accepts: Vapi's, then Twilio's
// (which need Options.Twilio).
var Scenarios = []string{"call", "security", "all", "twilio-call", "twilio-security", "twilio"}

// Options configure a run.
type Options struct {
	URL      string
	Scenario string
	Auth     auth.Config // completed
	// Tool is the tool the call scenario calls, with ToolArgs (a JSON
	// object); empty skips the tool step.
	Tool     string
	ToolArgs json.RawMessage
	// Effects sends real requests: the call is stored and the tool's
	// internal API is called. Without it, every request is a dry run.
	Effects bool
	// MaxBody is the server's body cap; the security scenario sends one byte more.
	MaxBody int64
	// Twilio is the Twilio door the twilio scenarios play against; URL
	// is then the server's address, to which its paths are appended.
	Twilio  *Twilio
	Timeout time.Duration
	Client  *http.Client
	Now     func() time.Time
}

// Step is one request of a scenario and what came back.
type Step struct {
	Name    string
	Status  int
	Want    int
	Latency time.Duration
	Note    string
	Err     error
}

// Run plays the scenario, printing a line per step to out. It returns the
// steps and an error naming every step that did not get the expected answer.
func Run(ctx context.Context, o Options, out io.Writer) ([]Step, error) {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if IsTwilio(o.Scenario) {
		return runTwilio(ctx, o, out)
	}
	if len(o.ToolArgs) == 0 {
		o.ToolArgs = json.RawMessage("{}")
	}
	var args map[string]any
	if err := json.Unmarshal(o.ToolArgs, &args); err != nil || args == nil {
		return nil, fmt.Errorf("tool arguments must be a JSON object, like {\"date\":\"2026-12-01\"}")
	}
	signer, err := auth.NewSigner(o.Auth, o.Now())
	if err != nil {
		return nil, err
	}
	p := &player{o: o, signer: signer, callID: newID(), out: tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)}
	if o.Effects {
		fmt.Fprintf(out, "effects: the call is stored and tools call their internal APIs\n")
	} else {
		fmt.Fprintf(out, "dry run: voicegate answers every step without storing anything or calling an internal API (--effects for a real call)\n")
	}
	fmt.Fprintf(p.out, "STEP\tSTATUS\tWANT\tLATENCY\tNOTE\n")
	switch o.Scenario {
	case "", "call":
		p.call(ctx)
	case "security":
		p.security(ctx)
	case "all":
		p.call(ctx)
		p.callID = newID()
		p.security(ctx)
	default:
		return nil, fmt.Errorf("unknown scenario %q (known: %s)", o.Scenario, strings.Join(Scenarios, ", "))
	}
	return p.finish(out)
}

// finish prints the summary line and names the steps that failed.
func (p *player) finish(out io.Writer) ([]Step, error) {
	p.out.Flush()
	var failed []string
	for _, s := range p.steps {
		if s.Err != nil || s.Status != s.Want {
			failed = append(failed, s.Name)
		}
	}
	fmt.Fprintf(out, "%d of %d steps answered as expected\n", len(p.steps)-len(failed), len(p.steps))
	if len(failed) > 0 {
		return p.steps, fmt.Errorf("steps failed: %s", strings.Join(failed, ", "))
	}
	return p.steps, nil
}

type player struct {
	o Options
	// confirm: the next answer must carry the dry-run confirmation (false
	// for a replay, answered from the cache without its headers).
	confirm bool
	signer  *auth.Signer
	callID  string
	seq     int
	out     *tabwriter.Writer
	steps   []Step
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// msg builds a unique message body of type t with extra fields.
func (p *player) msg(t string, fields map[string]any) []byte {
	p.seq++
	m := map[string]any{
		"type":      t,
		"timestamp": p.o.Now().UnixMilli() + int64(p.seq),
		"call":      map[string]any{"id": p.callID, "orgId": "org-simulate", "type": "inboundPhoneCall", "phoneNumberId": "pn-simulate"},
	}
	for k, v := range fields {
		m[k] = v
	}
	env := map[string]any{"message": m}
	if !p.o.Effects {
		env["voicegate"] = map[string]any{"dryRun": true}
	}
	b, _ := json.Marshal(env)
	return b
}

type check func(body []byte) (note string, err error)

func (p *player) send(ctx context.Context, name string, body []byte, want int, sign func(h http.Header, body []byte), chk check) ([]byte, http.Header) {
	p.confirm = true
	defer func() { p.confirm = false }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.o.URL, bytes.NewReader(body))
	if err != nil {
		p.record(Step{Name: name, Want: want, Err: err})
		return nil, nil
	}
	req.Header.Set("Content-Type", "application/json")
	if sign == nil {
		p.signer.Sign(req.Header, http.MethodPost, p.o.URL, body, p.o.Now())
	} else {
		sign(req.Header, body)
	}
	return p.do(name, req, want, chk), req.Header
}

func (p *player) do(name string, req *http.Request, want int, chk check) []byte {
	start := time.Now()
	resp, err := p.o.Client.Do(req)
	st := Step{Name: name, Want: want, Latency: time.Since(start)}
	if err != nil {
		st.Err = err
		st.Note = err.Error()
		p.record(st)
		return nil
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	st.Latency = time.Since(start)
	st.Status = resp.StatusCode
	if chk != nil && resp.StatusCode == want {
		st.Note, st.Err = chk(rb)
		if st.Err != nil {
			st.Note = st.Err.Error()
		}
	}
	// A dry run that the server did not confirm may have had effects: an
	// older voicegate, or another receiver, ignores the marker.
	if st.Err == nil && !p.o.Effects && p.confirm && resp.StatusCode == http.StatusOK {
		if resp.Header.Get("X-Voicegate-Dry-Run") != "true" {
			st.Err = errors.New("the server did not confirm a dry run: it may have stored this or called a tool")
			st.Note = st.Err.Error()
		} else {
			st.Note = strings.TrimSuffix("dry run; "+st.Note, "; ")
		}
	}
	p.record(st)
	return rb
}

func (p *player) record(s Step) {
	p.steps = append(p.steps, s)
	mark := ""
	if s.Err != nil || s.Status != s.Want {
		mark = "FAIL "
	}
	fmt.Fprintf(p.out, "%s\t%d\t%d\t%.1fms\t%s%s\n", s.Name, s.Status, s.Want, float64(s.Latency.Microseconds())/1000, mark, s.Note)
}

func emptyObject(body []byte) (string, error) {
	if strings.TrimSpace(string(body)) != "{}" {
		return "", fmt.Errorf("want {}, got %.80s", body)
	}
	return "", nil
}

func (p *player) call(ctx context.Context) {
	ok := http.StatusOK
	p.send(ctx, "assistant-request", p.msg("assistant-request", map[string]any{
		"phoneNumber": map[string]any{"id": "pn-simulate", "number": "+15550100000"},
		"customer":    map[string]any{"number": "+15550100001"},
	}), ok, nil, func(b []byte) (string, error) {
		var r map[string]json.RawMessage
		if err := json.Unmarshal(b, &r); err != nil {
			return "", fmt.Errorf("answer is not JSON")
		}
		for _, k := range []string{"assistantId", "assistant", "squadId", "destination"} {
			if _, ok := r[k]; ok {
				return "answered with " + k, nil
			}
		}
		if e, ok := r["error"]; ok && len(e) > 2 {
			return "answered with a spoken error", nil
		}
		return "", errors.New("answer has no assistant, destination or error")
	})
	status := func(s string, extra map[string]any) {
		f := map[string]any{"status": s}
		for k, v := range extra {
			f[k] = v
		}
		p.send(ctx, "status-update "+s, p.msg("status-update", f), ok, nil, emptyObject)
	}
	speech := func(role, st string, turn int) {
		p.send(ctx, "speech-update "+role+" "+st, p.msg("speech-update", map[string]any{"role": role, "status": st, "turn": turn}), ok, nil, emptyObject)
	}
	transcript := func(typ, tt, text string) {
		p.send(ctx, "transcript "+tt, p.msg(typ, map[string]any{"role": "user", "transcriptType": tt, "transcript": text}), ok, nil, emptyObject)
	}
	status("ringing", nil)
	status("in-progress", nil)
	speech("assistant", "started", 1)
	speech("user", "started", 1) // the caller barges in while the assistant speaks
	transcript("transcript", "partial", "I'd like")
	transcript("transcript", "partial", "I'd like to check my")
	p.send(ctx, "user-interrupted", p.msg("user-interrupted", map[string]any{"turnId": "turn-1"}), ok, nil, emptyObject)
	speech("assistant", "stopped", 1)
	transcript(`transcript[transcriptType="final"]`, "final", "I'd like to check my appointment.")
	speech("user", "stopped", 1)
	if p.o.Tool == "" {
		fmt.Fprintf(p.out, "tool-calls\t-\t-\t-\tskipped: no --tool given\n")
	} else {
		p.toolCall(ctx)
	}
	p.send(ctx, "conversation-update", p.msg("conversation-update", map[string]any{
		"messages": []any{
			map[string]any{"role": "bot", "message": "Hello, how can I help?"},
			map[string]any{"role": "user", "message": "I'd like to check my appointment."},
		},
	}), ok, nil, emptyObject)
	status("ended", map[string]any{"endedReason": "customer-ended-call"})
	p.send(ctx, "end-of-call-report", p.msg("end-of-call-report", map[string]any{
		"endedReason": "customer-ended-call", "cost": 0.042, "durationSeconds": 73.5,
		"startedAt": p.o.Now().Add(-74 * time.Second).UTC().Format(time.RFC3339Nano), "endedAt": p.o.Now().UTC().Format(time.RFC3339Nano),
		"artifact": map[string]any{"transcript": "AI: Hello. User: I'd like to check my appointment.", "messages": []any{}},
		"analysis": map[string]any{"summary": "Caller checked an appointment."},
	}), ok, nil, emptyObject)
}

// toolCall calls the tool with the given arguments; the step fails unless
// the tool answers with a result (an error string fails it).
func (p *player) toolCall(ctx context.Context) {
	toolCallID := "call_" + newID()[:8]
	p.send(ctx, "tool-calls "+p.o.Tool, p.msg("tool-calls", map[string]any{
		"toolCallList": []any{map[string]any{"id": toolCallID, "type": "function", "function": map[string]any{"name": p.o.Tool, "arguments": string(p.o.ToolArgs)}}},
	}), http.StatusOK, nil, func(b []byte) (string, error) {
		var r struct {
			Results []struct {
				ToolCallID string `json:"toolCallId"`
				Result     string `json:"result"`
				Error      string `json:"error"`
			} `json:"results"`
		}
		if err := json.Unmarshal(b, &r); err != nil || len(r.Results) != 1 {
			return "", fmt.Errorf("want one result, got %.80s", b)
		}
		if r.Results[0].ToolCallID != toolCallID {
			return "", fmt.Errorf("toolCallId not echoed")
		}
		if r.Results[0].Error != "" {
			return "", fmt.Errorf("tool error: %.100s", r.Results[0].Error)
		}
		return "result " + truncate(r.Results[0].Result, 60), nil
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (p *player) security(ctx context.Context) {
	// A correctly signed request, then the same bytes and headers again.
	body := p.msg("status-update", map[string]any{"status": "in-progress"})
	first, hdr := p.send(ctx, "signed request", body, http.StatusOK, nil, nil)
	if hdr != nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.o.URL, bytes.NewReader(body))
		req.Header = hdr.Clone()
		p.do("byte-identical replay", req, http.StatusOK, func(b []byte) (string, error) {
			if !bytes.Equal(b, first) {
				return "", fmt.Errorf("replay answered differently")
			}
			return "answered from the replay cache", nil
		})
	}
	p.send(ctx, "unsigned", p.msg("status-update", map[string]any{"status": "in-progress"}), http.StatusUnauthorized, func(http.Header, []byte) {}, nil)
	wrong := p.o.Auth
	wrong.Secrets = []confval.Secret{{Value: "wrong-secret-wrong-secret-wrong"}}
	if ws, err := auth.NewSigner(wrong, p.o.Now()); err == nil {
		p.send(ctx, "wrong secret", p.msg("status-update", map[string]any{"status": "in-progress"}), http.StatusUnauthorized, func(h http.Header, b []byte) {
			ws.Sign(h, http.MethodPost, p.o.URL, b, p.o.Now())
		}, nil)
	}
	if p.o.Auth.Mode == auth.ModeHMAC && p.o.Auth.TimestampHeaderName() != "" {
		p.send(ctx, "stale timestamp (-10m)", p.msg("status-update", map[string]any{"status": "in-progress"}), http.StatusUnauthorized, func(h http.Header, b []byte) {
			p.signer.Sign(h, http.MethodPost, p.o.URL, b, p.o.Now().Add(-10*time.Minute))
		}, nil)
		p.send(ctx, "future timestamp (+10m)", p.msg("status-update", map[string]any{"status": "in-progress"}), http.StatusUnauthorized, func(h http.Header, b []byte) {
			p.signer.Sign(h, http.MethodPost, p.o.URL, b, p.o.Now().Add(10*time.Minute))
		}, nil)
	}
	if p.o.MaxBody > 0 {
		big := bytes.Repeat([]byte(" "), int(p.o.MaxBody)+1)
		copy(big, `{"message":{"type":"transcript"}}`)
		p.send(ctx, "oversized body", big, http.StatusRequestEntityTooLarge, nil, nil)
	}
	p.send(ctx, "invalid JSON", []byte(`{"message": {"type": "status-update",`), http.StatusBadRequest, nil, nil)
	p.send(ctx, "unknown message type", p.msg("some-future-type", nil), http.StatusOK, nil, emptyObject)
}
