package bench

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
)

// Message kinds the workload sends; each has its own latency distribution.
const (
	kStatus = iota
	kSpeech
	kPartial
	kFinal
	kConversation
	kTool
	kReport
	// Twilio's webhooks (the twilio mix): the incoming call, a status
	// callback, and the final one (completed, which also ends the call).
	kTwilioVoice
	kTwilioStatus
	kTwilioFinal
	numKinds
)

// numVapiKinds are the kinds of Vapi's mixes.
const numVapiKinds = kTwilioVoice

var kindNames = [numKinds]string{"status-update", "speech-update", "transcript-partial", "transcript-final", "conversation-update", "tool-call", "end-of-call-report",
	"twilio-voice", "twilio-status", "twilio-status-final"}

// Mixes name the event mixes: Vapi's, and twilio (Twilio's voice
// webhook and status callbacks, which needs Options.Twilio).
var Mixes = []string{"realistic", "partials", "tools", "status", "twilio"}

// request is one pre-built, pre-signed HTTP/1.1 request.
type request struct {
	raw  []byte
	kind uint8
}

// Workload describes what to generate.
type Workload struct {
	Mix string
	// Calls is the number of concurrent calls whose events interleave.
	Calls int
	// ToolStyle is "tool-calls" (current) or "function-call" (legacy).
	ToolStyle string
	ToolName  string
	// CallPrefix makes call ids distinct between runs.
	CallPrefix string
}

// callState walks one simulated call through its script.
type callState struct {
	id   string
	step int
	turn int
	msgs int // conversation length so far
	// endless calls never end (the live-calls scale test keeps them open).
	endless bool
}

const turnsPerCall = 6

var phrases = []string{
	"I'd like to check my appointment", "can you move it to Friday morning", "yes that works for me",
	"actually wait I need to ask about billing", "what is my current balance", "thank you that is all",
}

// builder renders bodies and raw requests.
type builder struct {
	host, path string
	signer     *auth.Signer
	url        string
	now        time.Time
	seq        int64
	w          Workload
	rng        *rand.Rand
	hdr        http.Header
	// tw is the Twilio door (the twilio mix).
	tw *TwilioTarget
}

func (b *builder) next(cs *callState) (request, bool) {
	// The script of a call, as a list of steps per turn:
	// speech a-start, a-stop, u-start, partials x8, final, u-stop, conversation, [tool].
	if cs.step == 0 {
		cs.step++
		return b.status(cs, "ringing"), true
	}
	if cs.step == 1 {
		cs.step++
		return b.status(cs, "in-progress"), true
	}
	if cs.turn >= turnsPerCall && cs.endless {
		cs.turn, cs.msgs = 0, 0
	}
	if cs.turn >= turnsPerCall {
		switch cs.step {
		case 2:
			cs.step = 3
			return b.status(cs, "ended"), true
		case 3:
			cs.step = 4
			return b.report(cs), true
		}
		return request{}, false
	}
	const partials = 8
	s := cs.step - 2 // position within the turn
	turnLen := 6 + partials
	if b.w.Mix == "realistic" && cs.turn%3 == 2 {
		turnLen++
	}
	var r request
	switch {
	case s == 0:
		r = b.speech(cs, "assistant", "started")
	case s == 1:
		r = b.speech(cs, "assistant", "stopped")
	case s == 2:
		r = b.speech(cs, "user", "started")
	case s < 3+partials:
		r = b.transcript(cs, "partial", s-3)
	case s == 3+partials:
		r = b.transcript(cs, "final", partials)
	case s == 4+partials:
		r = b.speech(cs, "user", "stopped")
	case s == 5+partials:
		cs.msgs += 2
		r = b.conversation(cs)
	default:
		r = b.tool(cs)
	}
	cs.step++
	if cs.step-2 >= turnLen {
		cs.step = 2
		cs.turn++
	}
	return r, true
}

func (b *builder) open(t string) []byte {
	b.seq++
	out := make([]byte, 0, 512)
	out = append(out, `{"message":{"type":"`...)
	out = append(out, t...)
	out = append(out, `","timestamp":`...)
	out = strconv.AppendInt(out, b.now.UnixMilli()+b.seq, 10)
	return out
}

func (b *builder) close(body []byte, cs *callState) []byte {
	body = append(body, `,"call":{"id":"`...)
	body = append(body, cs.id...)
	body = append(body, `","orgId":"org-bench","type":"inboundPhoneCall","status":"in-progress","phoneNumberId":"pn-bench-0001","assistantId":"asst-bench-0001","customer":{"number":"+15550100001"}}}}`...)
	return body
}

func (b *builder) finish(body []byte, kind uint8) request {
	if b.signer == nil {
		return request{raw: body, kind: kind} // Bodies: the body alone
	}
	h := b.hdr
	clear(h)
	b.signer.Sign(h, http.MethodPost, b.url, body, b.now)
	raw := make([]byte, 0, len(body)+256)
	raw = append(raw, "POST "...)
	raw = append(raw, b.path...)
	raw = append(raw, " HTTP/1.1\r\nHost: "...)
	raw = append(raw, b.host...)
	raw = append(raw, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	raw = strconv.AppendInt(raw, int64(len(body)), 10)
	raw = append(raw, "\r\n"...)
	for k, vs := range h {
		for _, v := range vs {
			raw = append(raw, k...)
			raw = append(raw, ": "...)
			raw = append(raw, v...)
			raw = append(raw, "\r\n"...)
		}
	}
	raw = append(raw, "\r\n"...)
	raw = append(raw, body...)
	return request{raw: raw, kind: kind}
}

func quote(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

func (b *builder) status(cs *callState, st string) request {
	body := b.open("status-update")
	body = append(body, `,"status":`...)
	body = quote(body, st)
	if st == "ended" {
		body = append(body, `,"endedReason":"customer-ended-call"`...)
	}
	return b.finish(b.close(body, cs), kStatus)
}

func (b *builder) speech(cs *callState, role, st string) request {
	body := b.open("speech-update")
	body = append(body, `,"status":`...)
	body = quote(body, st)
	body = append(body, `,"role":`...)
	body = quote(body, role)
	body = append(body, `,"turn":`...)
	body = strconv.AppendInt(body, int64(cs.turn+1), 10)
	return b.finish(b.close(body, cs), kSpeech)
}

func (b *builder) transcript(cs *callState, tt string, upto int) request {
	p := phrases[(cs.turn+len(cs.id))%len(phrases)]
	// A partial grows word by word, as a recogniser's do.
	n := len(p) * (upto + 1) / 9
	if tt == "final" || n > len(p) {
		n = len(p)
	}
	kind := uint8(kPartial)
	t := "transcript"
	if tt == "final" {
		kind = kFinal
		if cs.turn%2 == 1 {
			t = `transcript[transcriptType=\"final\"]`
		}
	}
	body := b.open(t)
	body = append(body, `,"role":"user","transcriptType":`...)
	body = quote(body, tt)
	body = append(body, `,"transcript":`...)
	body = quote(body, p[:n])
	body = append(body, `,"isFiltered":false,"detectedThreats":[]`...)
	return b.finish(b.close(body, cs), kind)
}

func (b *builder) conversation(cs *callState) request {
	body := b.open("conversation-update")
	body = append(body, `,"messages":[`...)
	for i := 0; i < cs.msgs; i++ {
		if i > 0 {
			body = append(body, ',')
		}
		role := "bot"
		if i%2 == 1 {
			role = "user"
		}
		body = append(body, `{"role":"`...)
		body = append(body, role...)
		body = append(body, `","message":`...)
		body = quote(body, phrases[i%len(phrases)])
		body = append(body, `,"time":`...)
		body = strconv.AppendInt(body, b.now.UnixMilli()+int64(i)*1000, 10)
		body = append(body, `,"secondsFromStart":`...)
		body = strconv.AppendInt(body, int64(i*3), 10)
		body = append(body, '}')
	}
	body = append(body, ']')
	return b.finish(b.close(body, cs), kConversation)
}

func (b *builder) tool(cs *callState) request {
	if b.w.ToolStyle == "function-call" {
		body := b.open("function-call")
		body = append(body, `,"functionCall":{"name":`...)
		body = quote(body, b.w.ToolName)
		body = append(body, `,"parameters":{"date":"2026-12-01","name":"Alex"}}`...)
		return b.finish(b.close(body, cs), kTool)
	}
	body := b.open("tool-calls")
	id := "tc-" + strconv.FormatInt(b.seq, 36)
	body = append(body, `,"toolCallList":[{"id":"`...)
	body = append(body, id...)
	body = append(body, `","type":"function","function":{"name":`...)
	body = quote(body, b.w.ToolName)
	body = append(body, `,"arguments":"{\"date\":\"2026-12-01\",\"name\":\"Alex\"}"}}]`...)
	return b.finish(b.close(body, cs), kTool)
}

func (b *builder) report(cs *callState) request {
	body := b.open("end-of-call-report")
	body = append(body, `,"endedReason":"customer-ended-call","cost":0.042,"durationSeconds":73,"artifact":{"transcript":"AI: Hello. User: I'd like to check my appointment.","messages":[]},"analysis":{"summary":"Caller checked an appointment."}`...)
	return b.finish(b.close(body, cs), kReport)
}

// Build renders n requests: Calls concurrent calls interleaved round-robin,
// each replaced by a fresh call when it ends. Mixes other than "realistic"
// send only one kind on long-lived calls.
func (b *builder) build(n int, callIDs []string) []request {
	out := make([]request, 0, n)
	calls := make([]*callState, b.w.Calls)
	fresh := 0
	newCall := func(i int) *callState {
		if callIDs != nil {
			// Live calls start at a random point of their script, so that
			// however many there are, the events sent keep the mix's shape.
			turn := b.rng.IntN(turnsPerCall)
			return &callState{id: callIDs[i%len(callIDs)], step: 2 + b.rng.IntN(14), turn: turn, msgs: 2 * turn, endless: true}
		}
		fresh++
		if b.w.Mix == "twilio" {
			return &callState{id: twilioCallSid(b.w.CallPrefix, fresh)}
		}
		return &callState{id: fmt.Sprintf("%s-%08d", b.w.CallPrefix, fresh)}
	}
	for i := range calls {
		calls[i] = newCall(i)
	}
	for i := 0; len(out) < n; i++ {
		ci := i % len(calls)
		cs := calls[ci]
		switch b.w.Mix {
		case "partials":
			cs.turn = b.rng.IntN(turnsPerCall)
			out = append(out, b.transcript(cs, "partial", b.rng.IntN(8)))
			continue
		case "tools":
			out = append(out, b.tool(cs))
			continue
		case "status":
			out = append(out, b.status(cs, "in-progress"))
			continue
		}
		next := b.next
		if b.w.Mix == "twilio" {
			next = b.nextTwilio
		}
		r, ok := next(cs)
		if !ok {
			calls[ci] = newCall(ci)
			r, _ = next(calls[ci])
		}
		out = append(out, r)
	}
	return out
}
