package dispatch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/predial"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/webhook"
)

// downCounter is a database that cannot count attempts.
type downCounter struct{}

func (downCounter) Take(context.Context, string, string, int) (bool, error) {
	return false, errors.New("database is locked")
}

// TestPredialCountFailureIs503: when the day's attempts cannot be counted,
// campaign.predial is a 503 (Vapi records a pre-dial failure: the call is
// not placed), never an eligibility that was not checked; nothing is
// audited as decided.
func TestPredialCountFailureIs503(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC) }
	rules, err := predial.New(predial.Config{MaxAttemptsPerDay: 3}, []byte("k"), nil, now, downCounter{})
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	m := metrics.New(func() float64 { return 0 }, func() float64 { return 0 }, func() float64 { return 0 })
	d, err := New(Config{AssistantRequest: DefaultAssistantRequestConfig(), ServerTimeout: 20 * time.Second, Handoff: DefaultHandoffConfig()},
		Deps{Sessions: session.New(time.Hour, 100, now), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m, Now: now,
			Predial: rules, Audit: func(string, string, string) { audited++ }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Handle(context.Background(), review12Decode(t, `{"message":{"type":"campaign.predial","campaignId":"c1","contact":{"number":"+12125550100"}}}`))
	var we *webhook.Error
	if !errors.As(err, &we) || we.Status != http.StatusServiceUnavailable {
		t.Fatalf("answered %v, want a 503", err)
	}
	if audited != 0 {
		t.Fatal("an undecided pre-dial was audited")
	}
	// A number no attempt is counted for (none) still gets its answer.
	reply, err := d.Handle(context.Background(), review12Decode(t, `{"message":{"type":"campaign.predial","campaignId":"c1","contact":{}}}`))
	if err != nil || string(reply.Body) != `{"eligible":true}` {
		t.Fatalf("no number: %s %v", reply.Body, err)
	}
}
