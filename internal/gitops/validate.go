package gitops

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/vapiapi"
)

// Voicegate is this voicegate, which the files are checked against.
type Voicegate struct {
	// URL is the webhook URL Vapi calls (vapiapi.WebhookURL of
	// vapi.public_url and vapi.path; "" when public_url is not set: no
	// resource is then known to call this voicegate).
	URL string
	// ServerTimeout is vapi.server_timeout: voicegate answers within it.
	ServerTimeout time.Duration
	// Tools is voicegate's tools section.
	Tools []tools.Config
	// BargeIn is bargein.enabled: the engine reads transcript messages.
	BargeIn bool
}

// RequiredServerMessages are the messages voicegate needs from an
// assistant whose server it is (speech-update and transcript too when
// barge-in is on: the engine reads them).
func (v Voicegate) RequiredServerMessages() []string {
	req := []string{"tool-calls", "end-of-call-report", "status-update"}
	if v.BargeIn {
		req = append(req, "speech-update", "transcript") // the engine's input
	}
	return req
}

// vapiDefaultTimeout is server.timeoutSeconds when left out.
const vapiDefaultTimeout = 20

var functionNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Validate checks the files before any call to Vapi, and returns every
// problem, each naming its file and field:
//
//   - the fields Vapi requires (an assistant's name, a tool's type and
//     function.name, a squad's members, a structured output's name and
//     schema, a phone number's provider);
//   - references to resources that are neither in the files nor known
//     (known reports a resource voicegate has an id for);
//   - every server.url is https, every server.timeoutSeconds 1..300;
//   - an assistant or phone number whose server is this voicegate: its
//     server.timeoutSeconds (Vapi's default 20 when left out) is at least
//     vapi.server_timeout and above every tool's timeout, its server has a
//     backoffPlan with retries (so Vapi retries a webhook voicegate could
//     not store), and an assistant lists serverMessages with what
//     voicegate needs (RequiredServerMessages);
//   - a tool whose server is this voicegate is one of voicegate's tools,
//     with a server.timeoutSeconds above that tool's timeout.
func Validate(locals []*Local, known func(kind, id string) bool, v Voicegate) []string {
	var probs []string
	local := map[string]bool{}
	for _, l := range locals {
		local[l.Key()] = true
	}
	maxTool, maxToolName := time.Duration(0), ""
	byName := map[string]tools.Config{}
	for _, t := range v.Tools {
		byName[t.Name] = t
		if !t.Async && t.Timeout.D() > maxTool {
			maxTool, maxToolName = t.Timeout.D(), t.Name
		}
	}
	for _, l := range locals {
		add := func(field, format string, args ...any) {
			probs = append(probs, fmt.Sprintf("%s: %s: %s", l.Path, field, fmt.Sprintf(format, args...)))
		}
		b := l.Body
		switch l.Kind.Dir {
		case "assistants":
			if strings.TrimSpace(b.Name()) == "" {
				add("name", "required (voicegate finds an assistant it manages by name)")
			}
		case "tools":
			typ, _ := b["type"].(string)
			if typ == "" {
				add("type", "required (function, apiRequest, transferCall, handoff, ...)")
			}
			if typ == "function" && !functionNameRE.MatchString(b.String("function.name")) {
				add("function.name", "%q must match ^[a-zA-Z0-9_-]{1,64}$", b.String("function.name"))
			}
		case "squads":
			if m, ok := b["members"].([]any); !ok || len(m) == 0 {
				add("members", "required: at least one member")
			}
		case "structuredOutputs":
			if strings.TrimSpace(b.Name()) == "" {
				add("name", "required")
			}
			if _, ok := b["schema"].(map[string]any); !ok {
				add("schema", "required: a JSON Schema object")
			}
		case "phoneNumbers":
			if b.String("provider") == "" {
				add("provider", "required (vapi, twilio, vonage, telnyx, byo-phone-number): Vapi needs it on every update")
			}
		}
		for _, f := range []string{"id", "orgId", "createdAt", "updatedAt"} {
			if _, ok := b[f]; ok {
				add(f, "assigned by Vapi: leave it out of the file")
			}
		}
		// References.
		walkRefs(l.Kind.Dir, vapiapi.Clone(map[string]any(b)).(map[string]any), func(kind, ref string) (string, bool) {
			if kind == credentials || uuidRE.MatchString(ref) || isPlaceholder(ref) {
				return ref, true
			}
			if !local[kind+"/"+ref] && !known(kind, ref) {
				add("references", "%s %q is neither a file (%s/%s.yml) nor a resource voicegate knows", strings.TrimSuffix(kind, "s"), ref, kind, ref)
			}
			return ref, true
		})
		// Every server.
		serverObjects(map[string]any(b), "", func(p string, srv map[string]any) {
			if raw, ok := srv["url"]; ok {
				s, _ := raw.(string)
				u, err := url.Parse(s)
				if err != nil || u.Scheme != "https" || u.Host == "" {
					add(p+".url", "%q is not an https URL: Vapi sends calls' data to it", s)
				}
			}
			if raw, ok := srv["timeoutSeconds"]; ok {
				if n, ok := number(raw); !ok || n < 1 || n > 300 {
					add(p+".timeoutSeconds", "must be a number of seconds from 1 to 300")
				}
			}
		})
		if !isVoicegate(b, v.URL) {
			continue
		}
		timeout := float64(vapiDefaultTimeout)
		if n, ok := number(b["server"].(map[string]any)["timeoutSeconds"]); ok {
			timeout = n
		}
		switch l.Kind.Dir {
		case "assistants", "phoneNumbers":
			if v.ServerTimeout > 0 && time.Duration(timeout*float64(time.Second)) < v.ServerTimeout {
				add("server.timeoutSeconds", "%gs is shorter than vapi.server_timeout (%s): Vapi would give up before voicegate answers", timeout, v.ServerTimeout)
			}
			if maxTool > 0 && time.Duration(timeout*float64(time.Second)) <= maxTool {
				add("server.timeoutSeconds", "%gs is not above the timeout of voicegate's tool %s (%s): a slow answer would arrive after Vapi gave up", timeout, maxToolName, maxTool)
			}
			bp, ok := b["server"].(map[string]any)["backoffPlan"].(map[string]any)
			if !ok {
				add("server.backoffPlan", "required: without it Vapi never retries a webhook voicegate could not store (e.g. {type: exponential, maxRetries: 3, baseDelaySeconds: 1})")
			} else if n, ok := number(bp["maxRetries"]); !ok || n < 1 || n > 10 {
				add("server.backoffPlan.maxRetries", "must be from 1 to 10: with 0 Vapi does not retry")
			}
			if l.Kind.Dir != "assistants" {
				break
			}
			msgs, ok := b["serverMessages"].([]any)
			if !ok {
				add("serverMessages", "required: list what voicegate needs (%s); Vapi's default list changes over time", strings.Join(v.RequiredServerMessages(), ", "))
				break
			}
			have := map[string]bool{}
			for _, m := range msgs {
				if s, ok := m.(string); ok {
					have[s] = true
				}
			}
			var missing []string
			for _, m := range v.RequiredServerMessages() {
				if !have[m] {
					missing = append(missing, m)
				}
			}
			if len(missing) > 0 {
				why := ""
				if slices.Contains(missing, "transcript") || slices.Contains(missing, "speech-update") {
					why = " (speech-update and transcript: barge-in is on)"
				}
				add("serverMessages", "misses %s, which voicegate needs%s", strings.Join(missing, ", "), why)
			}
		case "tools":
			name := b.String("function.name")
			t, ok := byName[name]
			if !ok {
				names := make([]string, 0, len(byName))
				for n := range byName {
					names = append(names, n)
				}
				sort.Strings(names)
				add("function.name", "%q is not one of voicegate's tools (%s): voicegate would answer that it does not know it", name, strings.Join(names, ", "))
				break
			}
			if !t.Async && time.Duration(timeout*float64(time.Second)) <= t.Timeout.D() {
				add("server.timeoutSeconds", "%gs is not above the tool's timeout in voicegate (%s)", timeout, t.Timeout.D())
			}
		}
	}
	return probs
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil && !math.IsNaN(f)
}
