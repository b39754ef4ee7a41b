package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// vapiOpsKeys are the vapi keys voicegate vapi plan|apply reads.
var vapiOpsKeys = []string{"api", "public_url", "path", "server_timeout", "auth", "rotation"}

// LoadVapiOps reads what voicegate vapi plan|apply needs: data_dir,
// storage and records (the store keeping the ids, the keyring sealing the
// managed secret), bargein (whether transcript messages are needed), the
// tools (without their headers, whose variables need not be set where the
// command runs) and, of vapi, the API, the public URL, path and server
// timeout, the managed auth entry and the rotation.
func LoadVapiOps(path string, opt Options) (*Config, error) {
	opt = opt.withDefaults()
	return loadData(path, opt, pruneToVapiOps, func(cfg *Config, verr *ValidationError) {
		for i := range cfg.Vapi.Auth {
			cfg.Vapi.Auth[i].Complete()
		}
		for i := range cfg.Tools {
			cfg.Tools[i].Complete()
			verr.section(fmt.Sprintf("tools[%d]", i), cfg.Tools[i].Resolve(opt.Getenv, opt.ReadFile))
		}
		cfg.Vapi.Rotation.Complete()
		cfg.Vapi.API.Complete()
		verr.section("vapi.api", cfg.Vapi.API.Resolve(opt.Getenv, opt.ReadFile))
		verr.section("vapi", cfg.Vapi.Settings.Validate())
		verr.section("vapi.api", cfg.Vapi.API.Validate())
		verr.section("vapi.rotation", cfg.Vapi.Rotation.Validate())
		verr.section("bargein", cfg.Bargein.Validate())
		cfg.validateTools(verr, opt)
	})
}

// pruneToVapiOps keeps what LoadVapiOps reads: of vapi its keys above (of
// auth the managed entry), of each tool everything but its headers.
func pruneToVapiOps(doc *yaml.Node) {
	keepKeys("data_dir", "storage", "records", "bargein", "tools", "vapi")(doc)
	keepVapi(doc, vapiOpsKeys...)
	if tools := child(doc, "tools"); tools != nil && tools.Kind == yaml.SequenceNode {
		for i, e := range tools.Content {
			t := unalias(e)
			if t.Kind != yaml.MappingNode {
				continue
			}
			c := &yaml.Node{Kind: t.Kind, Tag: t.Tag, Line: t.Line, Column: t.Column}
			for j := 0; j+1 < len(t.Content); j += 2 {
				if t.Content[j].Value != "headers" {
					c.Content = append(c.Content, t.Content[j], t.Content[j+1])
				}
			}
			tools.Content[i] = c
		}
	}
}
