package gitops

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/voicegate/voicegate/internal/vapiapi"
)

// GenerateTools describes, as Vapi tools, the tools voicegate serves (its
// tools section), so that what the model is offered and what voicegate
// answers cannot drift apart: each is a function tool named as in the
// config (its id in the files is the name too), with its description and
// its JSON Schema as parameters, served by this voicegate
// (server.timeoutSeconds: vapi.server_timeout, whole seconds up).
//
// Every generated tool has async: false, a voicegate async tool too:
// voicegate answers such a call at once with its holding phrase and
// delivers the result later; with Vapi's async: true Vapi would not wait
// for that answer and the model would never hear the holding phrase.
func GenerateTools(v Voicegate) ([]*Local, error) {
	if v.URL == "" {
		return nil, errors.New("--tools-from-config needs vapi.public_url: the URL Vapi calls for the tools")
	}
	var out []*Local
	for _, t := range v.Tools {
		params := any(map[string]any{"type": "object", "properties": map[string]any{}})
		if t.Schema != nil {
			b, err := json.Marshal(t.Schema)
			if err != nil {
				return nil, fmt.Errorf("tool %s: schema: %w", t.Name, err)
			}
			if params, err = vapiapi.Decode(b); err != nil {
				return nil, fmt.Errorf("tool %s: schema: %w", t.Name, err)
			}
		}
		fn := map[string]any{"name": t.Name, "parameters": params}
		if t.Description != "" {
			fn["description"] = t.Description
		}
		secs := int64(math.Ceil(v.ServerTimeout.Seconds()))
		if secs < 1 {
			secs = vapiDefaultTimeout
		}
		body := vapiapi.Resource{
			"type":     "function",
			"async":    false,
			"function": fn,
			"server":   map[string]any{"url": v.URL, "timeoutSeconds": json.Number(fmt.Sprint(secs))},
		}
		out = append(out, &Local{Kind: mustKind("tools"), ID: t.Name, Path: "tools: " + t.Name + " (voicegate config)", Body: body, Generated: true})
	}
	return out, nil
}

func mustKind(dir string) Kind {
	k, ok := kindByDir(dir)
	if !ok {
		panic("gitops: no kind " + dir)
	}
	return k
}
