package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/postgres/pgtest"
)

// TestKnowledgeBase: on SQLite and on PostgreSQL, an operator adds the
// labelled set's documents with the real binary's kb add while serve
// runs; a signed knowledge-base-request of each assistant is answered
// from its base — the passage that answers the caller first, within the
// budget — and the documents never reach the log; a document removed is
// no longer answered, without a restart.
func TestKnowledgeBase(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			const secret = "e2e-kb-Lq2Vn8Rt4Wx7Zp3K"
			dir := t.TempDir()
			dataDir := filepath.Join(dir, "data")
			storage := ""
			if store == "postgres" {
				storage = fmt.Sprintf("storage: {driver: postgres, postgres_url: %q}\n", pgtest.URL(t))
			}
			cfgPath := filepath.Join(dir, "voicegate.yaml")
			os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
%slog: {level: debug, redact_pii: false}
server: {shutdown_delay: 0s}
vapi:
  auth: [{mode: hmac, secrets: ["${E2E_SECRET}"]}]
  knowledge_base:
    bases:
      clinic: {language: en}
      bank: {}
    default: clinic
    assistants: {asst-bank: bank, asst-quiet: ""}
    max_documents: 2
    max_bytes: 1500
`, dataDir, storage)), 0o600)
			env := []string{"E2E_SECRET=" + secret}
			p := start(t, env, "serve", "--config", cfgPath)
			docs := filepath.Join("..", "..", "internal", "knowledge", "library", "testdata", "docs")
			for base, files := range map[string][]string{
				"clinic": {"clinic_patient_handbook.md", "pharmacy_and_prescriptions.txt"},
				"bank":   {"bank_card_services_faq.md", "bank_payments_and_direct_debits.txt"},
			} {
				args := []string{"kb", "add", base, "--config", cfgPath}
				for _, f := range files {
					args = append(args, filepath.Join(docs, f))
				}
				if out, err := run(t, env, args...); err != nil || strings.Count(out, "added ") != 2 {
					t.Fatalf("kb add %s: %v\n%s", base, err, out)
				}
			}
			vapi := newVapiSender(t, p, secret)
			ask := func(assistant, question string) []struct {
				Content    string  `json:"content"`
				Similarity float64 `json:"similarity"`
				UUID       string  `json:"uuid"`
			} {
				t.Helper()
				q, _ := json.Marshal(question)
				body := fmt.Sprintf(`{"message":{"type":"knowledge-base-request","timestamp":%d,"call":{"id":"kb-e2e","orgId":"org","assistantId":%q},
					"messages":[],"messagesOpenAIFormatted":[{"role":"assistant","content":"Hello, how can I help?"},{"role":"user","content":%s}]}}`, vapi.timestamp(), assistant, q)
				code, out := vapi.post([]byte(body))
				var resp struct {
					Documents []struct {
						Content    string  `json:"content"`
						Similarity float64 `json:"similarity"`
						UUID       string  `json:"uuid"`
					} `json:"documents"`
				}
				if code != 200 || json.Unmarshal([]byte(out), &resp) != nil || resp.Documents == nil {
					t.Fatalf("%s %q: %d %s", assistant, question, code, out)
				}
				return resp.Documents
			}
			got := ask("asst-bank", "Hi, I think I lost my debit card, how do I stop it?")
			total := 0
			for _, d := range got {
				total += len(d.Content)
			}
			if len(got) == 0 || len(got) > 2 || total > 1500 || !strings.Contains(got[0].Content, "lost or stolen") || got[0].Similarity <= 0 {
				t.Fatalf("bank: %+v", got)
			}
			got = ask("asst-clinic", "how do I get my prescription repeated?")
			if len(got) == 0 || !strings.Contains(strings.ToLower(got[0].Content), "repeat prescription") {
				t.Fatalf("clinic (the default base): %+v", got)
			}
			if got := ask("asst-quiet", "how do I get my prescription repeated?"); len(got) != 0 {
				t.Fatalf("an assistant without a base: %+v", got)
			}
			if out, err := run(t, env, "kb", "remove", "bank", "bank_card_services_faq.md", "--config", cfgPath); err != nil {
				t.Fatalf("kb remove: %v\n%s", err, out)
			}
			for _, d := range ask("asst-bank", "Hi, I think I lost my debit card, how do I stop it?") {
				if strings.Contains(d.Content, "lost or stolen") {
					t.Fatalf("a removed document answered: %+v", d)
				}
			}
			logs := p.stop(t)
			for _, leak := range []string{"lost or stolen", "debit card", "prescription"} {
				if strings.Contains(logs, leak) {
					t.Fatalf("%q reached the log", leak)
				}
			}
			if !strings.Contains(logs, `"knowledge-base-request"`) {
				t.Fatalf("the requests were not logged at all:\n%s", logs)
			}
		})
	}
}
