package gitops

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/voicegate/voicegate/internal/vapiapi"
)

// uuidRE is a Vapi id written in a file instead of a resource id: used as
// is.
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// credentials is the pseudo-kind of credential references: by name.
const credentials = "credentials"

// refFunc maps one reference — kind ("tools", "assistants", ...,
// "credentials") and the value written (a resource id, "## comment"
// stripped, or a Vapi id) — to the value to send; keep false drops it.
type refFunc func(kind, ref string) (val string, keep bool)

// cleanRef strips VapiAI/gitops' "## comment" from a reference.
func cleanRef(s string) string {
	s, _, _ = strings.Cut(s, "##")
	return strings.TrimSpace(s)
}

// walkRefs rewrites, in body (of kind kindDir), every reference between
// resources VapiAI/gitops resolves — toolIds, model.toolIds,
// artifactPlan.structuredOutputIds, hooks[].do[].toolId,
// destinations[].assistantId (handoff tools), members[].assistantId and
// members[].assistantDestinations[].assistantId (squads),
// assistant_ids/assistantIds (structured outputs; assistant_ids is sent as
// assistantIds), a phone number's assistantId and squadId — and every
// credentialId and credentialIds at any depth (credential names).
func walkRefs(kindDir string, body map[string]any, f refFunc) {
	list := func(m map[string]any, key, kind string) {
		arr, ok := m[key].([]any)
		if !ok {
			return
		}
		out := make([]any, 0, len(arr))
		for _, e := range arr {
			s, ok := e.(string)
			if !ok {
				out = append(out, e)
				continue
			}
			if v, keep := f(kind, cleanRef(s)); keep {
				out = append(out, v)
			}
		}
		m[key] = out
	}
	one := func(m map[string]any, key, kind string) {
		s, ok := m[key].(string)
		if !ok {
			return
		}
		if v, keep := f(kind, cleanRef(s)); keep {
			m[key] = v
		} else {
			delete(m, key)
		}
	}
	objects := func(v any) []map[string]any {
		arr, _ := v.([]any)
		var out []map[string]any
		for _, e := range arr {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	switch kindDir {
	case "assistants":
		list(body, "toolIds", "tools")
		if m, ok := body["model"].(map[string]any); ok {
			list(m, "toolIds", "tools")
		}
		if m, ok := body["artifactPlan"].(map[string]any); ok {
			list(m, "structuredOutputIds", "structuredOutputs")
		}
		for _, h := range objects(body["hooks"]) {
			for _, a := range objects(h["do"]) {
				one(a, "toolId", "tools")
			}
		}
	case "tools":
		for _, d := range objects(body["destinations"]) {
			one(d, "assistantId", "assistants")
		}
	case "squads":
		for _, m := range objects(body["members"]) {
			one(m, "assistantId", "assistants")
			for _, d := range objects(m["assistantDestinations"]) {
				one(d, "assistantId", "assistants")
			}
		}
	case "structuredOutputs":
		if v, ok := body["assistant_ids"]; ok {
			body["assistantIds"] = v
			delete(body, "assistant_ids")
		}
		list(body, "assistantIds", "assistants")
	case "phoneNumbers":
		one(body, "assistantId", "assistants")
		one(body, "squadId", "squads")
	}
	walkCredentials(body, f, 0)
}

func walkCredentials(v any, f refFunc, depth int) {
	if depth > 100 {
		return
	}
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			switch s := e.(type) {
			case string:
				if k == "credentialId" {
					if val, keep := f(credentials, cleanRef(s)); keep {
						t[k] = val
					} else {
						delete(t, k)
					}
				}
				continue
			case []any:
				if k == "credentialIds" {
					out := make([]any, 0, len(s))
					for _, c := range s {
						if cs, ok := c.(string); ok {
							if val, keep := f(credentials, cleanRef(cs)); keep {
								out = append(out, val)
							}
							continue
						}
						out = append(out, c)
					}
					t[k] = out
					continue
				}
			}
			walkCredentials(e, f, depth+1)
		}
	case []any:
		for _, e := range t {
			walkCredentials(e, f, depth+1)
		}
	}
}

// placeholder is what a plan shows for an id apply will know.
func placeholder(kind, id string) string {
	return "(" + kind + "/" + id + ": its id once apply creates it)"
}

// managedCredentialPlaceholder is what a plan shows for voicegate's
// managed webhook credential before it exists.
const managedCredentialPlaceholder = "(voicegate's webhook credential: created by apply)"

// isPlaceholder reports whether s is a plan's placeholder.
func isPlaceholder(s string) bool {
	return strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")") && (strings.Contains(s, ": its id once apply creates it") || s == managedCredentialPlaceholder)
}

// serverObjects calls f with every "server" object in v, at any depth,
// and its path.
func serverObjects(v any, path string, f func(path string, server map[string]any)) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if m, ok := e.(map[string]any); ok && k == "server" {
				f(p, m)
			}
			serverObjects(e, p, f)
		}
	case []any:
		for i, e := range t {
			serverObjects(e, path+"["+strconv.Itoa(i)+"]", f)
		}
	}
}

// isVoicegate reports whether a resource's own server is this voicegate.
func isVoicegate(body vapiapi.Resource, url string) bool {
	return url != "" && vapiapi.SameURL(body.String("server.url"), url)
}
