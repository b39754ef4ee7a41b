package bench

import (
	"encoding/json"
	"testing"
)

// Bodies renders the realistic mix as the generator sends it: valid JSON,
// every body unique, the types in the mix's proportions.
func TestBodiesRealisticMix(t *testing.T) {
	const n = 20_000
	bs, err := Bodies(Workload{Mix: "realistic", Calls: 32, CallPrefix: "t"}, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != n {
		t.Fatalf("%d bodies, want %d", len(bs), n)
	}
	seen := make(map[string]bool, n)
	count := map[string]int{}
	for _, b := range bs {
		if seen[string(b.Data)] {
			t.Fatalf("a body repeats: %s", b.Data)
		}
		seen[string(b.Data)] = true
		var m struct {
			Message struct {
				Type string `json:"type"`
				Call struct {
					ID string `json:"id"`
				} `json:"call"`
			} `json:"message"`
		}
		if err := json.Unmarshal(b.Data, &m); err != nil || m.Message.Type == "" || m.Message.Call.ID == "" {
			t.Fatalf("not a Vapi message (%v): %s", err, b.Data)
		}
		count[b.Kind]++
	}
	for kind, want := range map[string]float64{"transcript-partial": 0.53, "speech-update": 0.27, "tool-call": 0.02, "end-of-call-report": 0.01} {
		if got := float64(count[kind]) / n; got < want*0.8 || got > want*1.2 {
			t.Errorf("%s: %.3f of the mix, want about %.2f (%v)", kind, got, want, count)
		}
	}
}

func TestBodiesRefusesTwilio(t *testing.T) {
	if _, err := Bodies(Workload{Mix: "twilio"}, 10, 1); err == nil {
		t.Fatal("the twilio mix was rendered as Vapi bodies")
	}
}
