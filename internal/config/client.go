package config

import (
	"fmt"
	"maps"
	"slices"

	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/knowledge"
	"github.com/voicegate/voicegate/internal/knowledge/library"
	"go.yaml.in/yaml/v3"
)

// clientKeys are the vapi keys a client of the deployment needs.
var clientKeys = map[string]bool{"auth": true, "max_body_bytes": true, "path": true, "public_url": true}

// LoadClient reads the file at path for a client of the deployment
// (simulate, voicegate-bench): only what signing a request needs — the
// first credential with its first secret, the path, public URL and body
// cap of the vapi section — is expanded, decoded and checked. ${ENV} references elsewhere (a tool's token) need
// not be set where the client runs.
func LoadClient(path string, opt Options) (*Config, error) {
	opt = opt.withDefaults()
	raw, err := opt.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseClient(raw, opt)
}

// ParseClient is LoadClient on bytes.
func ParseClient(raw []byte, opt Options) (*Config, error) {
	opt = opt.withDefaults()
	verr := &ValidationError{}
	cfg, missing := decode(raw, pruneToClient, opt, verr)
	if cfg == nil {
		return nil, verr
	}
	defer reportUnexpanded(verr, missing)
	v := &cfg.Vapi
	if len(v.Auth) == 0 {
		verr.add("vapi.auth", "no credential configured: a client signs with the first entry")
	}
	for i := range v.Auth {
		v.Auth[i].Complete()
		probs, _ := v.Auth[i].Validate(opt.Now())
		verr.section(fmt.Sprintf("vapi.auth[%d]", i), probs)
	}
	if err := verr.orNil(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadStorage reads only what an operator command on the stored data
// needs — data_dir, storage and records — expanded, decoded, resolved and
// checked as serve does; the rest of the file (credentials, tools, their
// variables) is not read.
func LoadStorage(path string, opt Options) (*Config, error) {
	return loadData(path, opt, keepKeys("data_dir", "storage", "records"), nil)
}

// loadData reads path for an operator command on the stored data: the
// document pruned to what the command reads, then data_dir, storage and
// records checked, then check's own (nil: none).
func loadData(path string, opt Options, prune func(*yaml.Node), check func(*Config, *ValidationError)) (*Config, error) {
	opt = opt.withDefaults()
	raw, err := opt.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	verr := &ValidationError{}
	cfg, missing := decode(raw, prune, opt, verr)
	if cfg != nil {
		if cfg.DataDir == "" {
			verr.add("data_dir", "must not be empty")
		}
		verr.section("records", cfg.Records.Resolve(opt.Getenv))
		verr.section("storage", cfg.Storage.Validate())
		verr.section("records", cfg.Records.Validate())
		if check != nil {
			check(cfg, verr)
		}
	}
	reportUnexpanded(verr, missing)
	if err := verr.orNil(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadWebhookSources reads only the webhooks' source allowlists —
// vapi.allow_from and twilio.allow_from — for voicegate netpolicy; the rest
// of the file (credentials and their variables) is not read.
func LoadWebhookSources(path string, opt Options) (vapi, twilio []string, err error) {
	opt = opt.withDefaults()
	raw, err := opt.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	verr := &ValidationError{}
	cfg, missing := decode(raw, keepPaths(map[string][]string{"vapi": {"allow_from"}, "twilio": {"allow_from"}}), opt, verr)
	if cfg != nil {
		verr.section("vapi.allow_from", cfg.Vapi.AllowFrom.Validate())
		verr.section("twilio.allow_from", cfg.Twilio.AllowFrom.Validate())
	}
	reportUnexpanded(verr, missing)
	if err := verr.orNil(); err != nil {
		return nil, nil, err
	}
	return cfg.Vapi.AllowFrom, cfg.Twilio.AllowFrom, nil
}

// keepPaths returns a prune that keeps, of each top-level key named, only
// the listed keys of its mapping.
func keepPaths(paths map[string][]string) func(doc *yaml.Node) {
	return func(doc *yaml.Node) {
		var kept []*yaml.Node
		for i := 0; i+1 < len(doc.Content); i += 2 {
			sub, ok := paths[doc.Content[i].Value]
			v := unalias(doc.Content[i+1])
			if !ok || v.Kind != yaml.MappingNode {
				continue
			}
			m := &yaml.Node{Kind: v.Kind, Tag: v.Tag, Line: v.Line, Column: v.Column}
			for j := 0; j+1 < len(v.Content); j += 2 {
				if slices.Contains(sub, v.Content[j].Value) {
					m.Content = append(m.Content, v.Content[j], unalias(v.Content[j+1]))
				}
			}
			kept = append(kept, doc.Content[i], m)
		}
		doc.Content = kept
	}
}

// keepKeys returns a prune that keeps only the given top-level keys.
func keepKeys(keys ...string) func(doc *yaml.Node) {
	return func(doc *yaml.Node) {
		var kept []*yaml.Node
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if slices.Contains(keys, doc.Content[i].Value) {
				kept = append(kept, doc.Content[i], unalias(doc.Content[i+1]))
			}
		}
		doc.Content = kept
	}
}

// pruneToClient keeps, of the document, only vapi's client keys (and of
// its credentials, the one a client signs with).
func pruneToClient(doc *yaml.Node) {
	keepKeys("vapi")(doc)
	for i := 0; i+1 < len(doc.Content); i += 2 {
		v := doc.Content[i+1]
		if v.Kind != yaml.MappingNode {
			continue
		}
		v = &yaml.Node{Kind: v.Kind, Tag: v.Tag, Line: v.Line, Column: v.Column, Content: v.Content}
		var vk []*yaml.Node
		for j := 0; j+1 < len(v.Content); j += 2 {
			if clientKeys[v.Content[j].Value] {
				val := unalias(v.Content[j+1])
				if v.Content[j].Value == "auth" {
					val = firstCredential(val)
				}
				vk = append(vk, v.Content[j], val)
			}
		}
		v.Content = vk
		doc.Content[i+1] = v
	}
}

// unalias returns what an alias (*name) stands for, so that a kept value
// survives the pruning of the key that held its anchor.
func unalias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		c := *n.Alias
		c.Anchor = ""
		return &c
	}
	return n
}

// firstCredential keeps, of the auth list, the entry a client signs with —
// the first — and of its secrets the first: the variables of the other
// entries and rotation secrets need not be set where the client runs.
func firstCredential(auth *yaml.Node) *yaml.Node {
	if auth.Kind != yaml.SequenceNode || len(auth.Content) == 0 {
		return auth
	}
	seq := *auth
	entry := *unalias(auth.Content[0])
	seq.Content = []*yaml.Node{&entry}
	if entry.Kind == yaml.MappingNode {
		entry.Content = append([]*yaml.Node(nil), entry.Content...)
		for i := 0; i+1 < len(entry.Content); i += 2 {
			if entry.Content[i].Value == "secrets" {
				secrets := *unalias(entry.Content[i+1])
				if secrets.Kind == yaml.SequenceNode && len(secrets.Content) > 1 {
					secrets.Content = secrets.Content[:1]
				}
				entry.Content[i+1] = &secrets
			}
		}
	}
	return &seq
}

// LoadBargein reads only the bargein section, for voicegate bargein eval;
// the rest of the file is not read.
func LoadBargein(path string, opt Options) (*bargein.Config, error) {
	opt = opt.withDefaults()
	raw, err := opt.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	verr := &ValidationError{}
	cfg, missing := decode(raw, keepKeys("bargein"), opt, verr)
	if cfg != nil {
		verr.section("bargein", cfg.Bargein.Validate())
	}
	reportUnexpanded(verr, missing)
	if err := verr.orNil(); err != nil {
		return nil, err
	}
	return &cfg.Bargein, nil
}

// LoadKnowledge reads what voicegate kb needs: data_dir, storage, records
// and vapi.knowledge_base's bases (of a search API base, only that it is
// one: its URL and secrets are not read).
func LoadKnowledge(path string, opt Options) (*Config, error) {
	return loadData(path, opt, pruneToKnowledge, func(cfg *Config, verr *ValidationError) {
		cfg.Vapi.KnowledgeBase.Complete()
		kb := cfg.Vapi.KnowledgeBase
		for _, name := range slices.Sorted(maps.Keys(kb.Bases)) {
			if err := knowledge.CheckBaseName(name); err != nil {
				verr.add("vapi.knowledge_base.bases."+name, "%s", err)
			}
			if err := library.CheckLanguage(kb.Bases[name].Language); err != nil {
				verr.add("vapi.knowledge_base.bases."+name+".language", "%s", err)
			}
		}
	})
}

// pruneToKnowledge keeps data_dir, storage, records and
// vapi.knowledge_base.bases, each search_api replaced by {}.
func pruneToKnowledge(doc *yaml.Node) {
	keepKeys("data_dir", "storage", "records", "vapi")(doc)
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "vapi" {
			continue
		}
		vapi := unalias(doc.Content[i+1])
		kb := child(vapi, "knowledge_base")
		if kb == nil {
			doc.Content[i+1] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			continue
		}
		bases := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if b := child(kb, "bases"); b != nil && b.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(b.Content); j += 2 {
				base := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
				if v := unalias(b.Content[j+1]); v.Kind == yaml.MappingNode {
					for k := 0; k+1 < len(v.Content); k += 2 {
						switch v.Content[k].Value {
						case "language":
							base.Content = append(base.Content, v.Content[k], unalias(v.Content[k+1]))
						case "search_api":
							if unalias(v.Content[k+1]).Tag != "!!null" {
								base.Content = append(base.Content, v.Content[k], &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"})
							}
						}
					}
				}
				bases.Content = append(bases.Content, b.Content[j], base)
			}
		}
		kbKey := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "knowledge_base"}
		basesKey := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "bases"}
		doc.Content[i+1] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{kbKey,
			{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{basesKey, bases}}}}
	}
}

// child is the value of key in mapping m (nil: none).
func child(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return unalias(m.Content[i+1])
		}
	}
	return nil
}

// LoadSecrets reads what voicegate secrets needs: data_dir, storage,
// records, and of vapi the managed auth entry, the API, the public URL and
// path, and the rotation (the other auth entries' secrets are not read).
func LoadSecrets(path string, opt Options) (*Config, error) {
	return loadData(path, opt, pruneToSecrets, func(cfg *Config, verr *ValidationError) {
		for i := range cfg.Vapi.Auth {
			cfg.Vapi.Auth[i].Complete()
		}
		cfg.Vapi.Rotation.Complete()
		cfg.Vapi.API.Complete()
		verr.section("vapi.api", cfg.Vapi.API.Resolve(opt.Getenv, opt.ReadFile))
		verr.section("vapi.api", cfg.Vapi.API.Validate())
		verr.section("vapi.rotation", cfg.Vapi.Rotation.Validate())
		if len(cfg.Vapi.Auth) == 0 {
			verr.add("vapi.auth", "no entry is managed: mark one managed: true (voicegate then keeps its secret)")
		}
	})
}

// pruneToSecrets keeps data_dir, storage, records, and of vapi the
// managed auth entry, api, public_url, path and rotation.
func pruneToSecrets(doc *yaml.Node) {
	keepKeys("data_dir", "storage", "records", "vapi")(doc)
	keepVapi(doc, "auth", "api", "public_url", "path", "rotation")
}

// keepVapi keeps, of the vapi section, the keys given — and of its auth
// entries the managed one only (the others' secrets are not read).
func keepVapi(doc *yaml.Node, keys ...string) {
	if v := child(doc, "vapi"); v != nil && v.Kind == yaml.MappingNode {
		var kept []*yaml.Node
		for i := 0; i+1 < len(v.Content); i += 2 {
			if slices.Contains(keys, v.Content[i].Value) {
				kept = append(kept, v.Content[i], v.Content[i+1])
			}
		}
		v.Content = kept
	}
	if auth := child(child(doc, "vapi"), "auth"); auth != nil && auth.Kind == yaml.SequenceNode {
		var kept []*yaml.Node
		for _, e := range auth.Content {
			if m := child(unalias(e), "managed"); m != nil && m.Value == "true" {
				kept = append(kept, e)
			}
		}
		auth.Content = kept
	}
}
