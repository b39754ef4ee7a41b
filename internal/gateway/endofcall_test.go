package gateway_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/config"
)

// sdkReport returns the SDK-shaped end-of-call report fixture for call id,
// with its fields changed by edit (a new body each time: the same one
// twice would be a replay).
func sdkReport(t *testing.T, id string, edit func(m map[string]any)) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/vapi/end-of-call-report-sdk.json")
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	m := env["message"]
	m["call"].(map[string]any)["id"] = id
	if edit != nil {
		edit(m)
	}
	out, _ := json.Marshal(env)
	return string(out)
}

// TestEndOfCallReportTypedFieldsStored: an end-of-call report in the SDK's
// shape is kept whole in the call's sealed record; its total cost (the
// report's, else the sum of its costs items) is the call's cost, and its
// success evaluation and recording consent go into the call's timeline —
// metadata. The summary, structured data, transcript and recording URLs
// are in no log line and in no file under data_dir in clear.
func TestEndOfCallReportTypedFieldsStored(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Vapi.MaxBodyBytes = 64 << 10 })
	ctx := context.Background()
	e.mustSend(sdkReport(t, "eoc1", nil))
	e.mustSend(sdkReport(t, "eoc2", func(m map[string]any) {
		delete(m, "cost") // the items' sum stands in
		m["analysis"].(map[string]any)["successEvaluation"] = "The caller, reachable at +1 415 555 0123, was satisfied with the outcome."
		delete(m, "compliance")
	}))
	e.mustSend(sdkReport(t, "eoc3", func(m map[string]any) {
		m["costs"] = "a lot" // dropped: the total stands
		m["analysis"] = map[string]any{"successEvaluation": "Excellent"}
	}))
	e.mustSend(sdkReport(t, "eoc4", func(m map[string]any) {
		m["analysis"].(map[string]any)["successEvaluation"] = "+14155550199" // short, but a number
	}))
	for id, want := range map[string]float64{"eoc1": 0.1484, "eoc2": 0.1484, "eoc3": 0.1484, "eoc4": 0.1484} {
		r, _, err := e.app.Store.Call(ctx, id)
		if err != nil || r.Cost == nil || *r.Cost < want-1e-9 || *r.Cost > want+1e-9 || r.EndedReason != "customer-ended-call" || r.Duration == nil || *r.Duration != 89.5 {
			t.Errorf("%s: %+v %v, want cost %v", id, r, err, want)
		}
	}
	for id, want := range map[string]string{
		"eoc1": `vapi end-of-call-report successEvaluation="true" recordingConsent="verbal"`,
		"eoc2": `vapi end-of-call-report successEvaluation=(in the sealed record)`,
		"eoc3": `vapi end-of-call-report successEvaluation="Excellent" recordingConsent="verbal"`,
		"eoc4": `vapi end-of-call-report successEvaluation=(in the sealed record) recordingConsent="verbal"`,
	} {
		if got := strings.Join(e.timeline(id), "|"); got != want {
			t.Errorf("%s timeline %q, want %q", id, got, want)
		}
	}
	if got := e.metric(`voicegate_dropped_fields_total{field="costs",type="end-of-call-report"}`); got != "1" {
		t.Errorf("the malformed costs counted %q, want 1", got)
	}
	// The whole report is in the sealed record.
	recs, err := e.app.Records.Store().CallRecords(ctx, "eoc1")
	if err != nil || len(recs) != 1 {
		t.Fatalf("records %d %v", len(recs), err)
	}
	b, err := e.app.Records.Open(ctx, recs[0])
	if err != nil || !strings.Contains(string(b), "move her appointment to Friday") || !strings.Contains(string(b), "7a1f9c2e-recording-stereo.wav") {
		t.Fatalf("the record does not open to the report: %v %.200s", err, b)
	}
	personal := []string{"move her appointment", "2026-03-06", "recording-stereo.wav", "I'd like to move", "555 0123", "5550199"}
	logs := e.logs.String()
	for _, p := range personal {
		if strings.Contains(logs, p) {
			t.Errorf("the logs carry %q", p)
		}
	}
	err = filepath.WalkDir(e.app.Config.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		for _, p := range personal {
			if strings.Contains(string(b), p) {
				t.Errorf("%s holds %q in clear", path, p)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
