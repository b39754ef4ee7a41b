package vapi

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// TestEndOfCallReportSDKShape: an end-of-call report as Vapi's server SDK
// (@vapi-ai/server-sdk 2.0.1, ServerMessageEndOfCallReport with Analysis,
// Compliance, Artifact.recording and the costs items) decodes into typed
// fields, nothing dropped.
func TestEndOfCallReportSDKShape(t *testing.T) {
	m, err := Decode(fixture(t, "end-of-call-report-sdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Dropped) != 0 {
		t.Fatalf("dropped %q from the SDK's shape", m.Dropped)
	}
	if c, ok := m.TotalCost(); !ok || c != 0.1484 {
		t.Errorf("total cost %v %v, want the report's cost 0.1484", c, ok)
	}
	var types []string
	for _, c := range m.Costs {
		if c.Cost == nil {
			t.Errorf("cost item %q without its cost", c.Type)
		}
		types = append(types, c.Type)
	}
	if want := []string{"transport", "transcriber", "model", "voice", "vapi", "voicemail-detection", "analysis", "knowledge-base"}; !slices.Equal(types, want) {
		t.Errorf("cost items %q, want %q", types, want)
	}
	if m.SummaryText() != "Jane Roe asked to move her appointment to Friday; it was moved." || m.SuccessEvaluation() != "true" {
		t.Errorf("analysis %+v", m.Analysis)
	}
	if sd := m.Analysis.StructuredData; string(sd["appointmentMoved"]) != "true" || string(sd["newDate"]) != `"2026-03-06"` {
		t.Errorf("structured data %s", sd)
	}
	if rc := m.RecordingConsent(); rc == nil || rc.Type != "verbal" || rc.GrantedAt != "2026-03-02T14:01:45.000Z" {
		t.Errorf("recording consent %+v", rc)
	}
	// artifact.recording before the artifact's older URLs.
	if mono, stereo := m.RecordingURLs(); mono != "https://storage.vapi.ai/7a1f9c2e-recording-mono.wav" || stereo != "https://storage.vapi.ai/7a1f9c2e-recording-stereo.wav" {
		t.Errorf("recordings %s %s", mono, stereo)
	}
	if r := m.Artifact.Recording; r.Mono.AssistantURL == "" || r.Mono.CustomerURL == "" || m.Artifact.StereoRecordingURL == "" {
		t.Errorf("recording %+v", r)
	}
	if d, ok := m.Duration(); !ok || d != 89.5 {
		t.Errorf("duration %v %v", d, ok)
	}
}

// TestEndOfCallReportOlderShapes: the cost from the costs items when the
// report has no total; the recordings from the artifact's URLs, or from
// the message (the older report), as are the summary.
func TestEndOfCallReportOlderShapes(t *testing.T) {
	m, err := Decode([]byte(`{"message":{"type":"end-of-call-report","costs":[{"type":"model","cost":0.25},{"type":"vapi","cost":0.5},{"type":"voice"}],` +
		`"artifact":{"recordingUrl":"https://r/mono.wav","stereoRecordingUrl":"https://r/stereo.wav"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := m.TotalCost(); !ok || c != 0.75 {
		t.Errorf("total from the items: %v %v, want 0.75", c, ok)
	}
	if mono, stereo := m.RecordingURLs(); mono != "https://r/mono.wav" || stereo != "https://r/stereo.wav" {
		t.Errorf("artifact URLs: %s %s", mono, stereo)
	}
	old, err := Decode([]byte(`{"message":{"type":"end-of-call-report","summary":"short","recordingUrl":"https://r/old.wav","stereoRecordingUrl":"https://r/old-stereo.wav"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if mono, stereo := old.RecordingURLs(); mono != "https://r/old.wav" || stereo != "https://r/old-stereo.wav" || old.SummaryText() != "short" {
		t.Errorf("older report: %s %s %q", mono, stereo, old.SummaryText())
	}
	if _, ok := old.TotalCost(); ok || old.SuccessEvaluation() != "" || old.RecordingConsent() != nil {
		t.Error("a report without them has a cost, an evaluation or a consent")
	}
}

// TestEndOfCallReportMalformedFieldsDropped: a malformed costs, analysis,
// compliance or recording field is dropped — absent, not zero — and
// named by its schema path, each of them; the rest of the report is used.
func TestEndOfCallReportMalformedFieldsDropped(t *testing.T) {
	cases := []struct {
		name, fields string
		dropped      []string
		check        func(m *Message) bool
	}{
		{"costs not a list", `"cost":0.5,"costs":"a lot"`, []string{"costs"},
			func(m *Message) bool { c, ok := m.TotalCost(); return ok && c == 0.5 && m.Costs == nil }},
		{"an item's cost a string: the others summed", `"costs":[{"type":"model","cost":"0.1"},{"type":"voice","cost":0.2}]`, []string{"costs.cost"},
			func(m *Message) bool {
				c, ok := m.TotalCost()
				return ok && math.Abs(c-0.2) < 1e-9 && m.Costs[0].Cost == nil
			}},
		{"total cost a string: the items summed", `"cost":"0.3","costs":[{"type":"model","cost":0.25}]`, []string{"cost"},
			func(m *Message) bool { c, ok := m.TotalCost(); return ok && c == 0.25 }},
		{"analysis fields", `"analysis":{"summary":5,"structuredData":"text","successEvaluation":{"score":8}}`,
			[]string{"analysis.structuredData", "analysis.successEvaluation", "analysis.summary"},
			func(m *Message) bool {
				return m.Analysis != nil && m.Analysis.StructuredData == nil && m.SuccessEvaluation() == "" && m.SummaryText() == ""
			}},
		{"analysis a string, summary on the message kept", `"summary":"old","analysis":"none"`, []string{"analysis"},
			func(m *Message) bool { return m.Analysis == nil && m.SummaryText() == "old" }},
		{"compliance", `"compliance":{"recordingConsent":"yes"}`, []string{"compliance.recordingConsent"},
			func(m *Message) bool { return m.RecordingConsent() == nil }},
		{"recording", `"artifact":{"transcript":"AI: hi","recordingUrl":"https://r/m.wav","recording":{"stereoUrl":7,"mono":{"combinedUrl":["x"]}}}`,
			[]string{"artifact.recording.mono.combinedUrl", "artifact.recording.stereoUrl"},
			func(m *Message) bool {
				mono, stereo := m.RecordingURLs()
				return mono == "https://r/m.wav" && stereo == "" && m.Artifact.Transcript == "AI: hi"
			}},
		{"all at once", `"cost":true,"costs":[{"cost":"x"}],"analysis":{"successEvaluation":[]},"compliance":{"recordingConsent":{"type":1}},"artifact":{"recording":"x"},"stereoRecordingUrl":{}`,
			[]string{"analysis.successEvaluation", "artifact.recording", "compliance.recordingConsent.type", "cost", "costs.cost", "stereoRecordingUrl"},
			func(m *Message) bool { _, ok := m.TotalCost(); return !ok && m.Artifact.Recording == nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode([]byte(`{"message":{"type":"end-of-call-report","endedReason":"hangup","call":{"id":"c1"},` + c.fields + `}}`))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.Dropped, c.dropped) {
				t.Errorf("dropped %q, want %q", m.Dropped, c.dropped)
			}
			if m.EndedReason != "hangup" || m.CallID() != "c1" || !c.check(m) {
				t.Errorf("decoded %+v", m)
			}
			for _, f := range m.Dropped {
				if strings.Contains(f, "0.") || f == "other" {
					t.Errorf("label %q is not a schema path", f)
				}
			}
		})
	}
}
