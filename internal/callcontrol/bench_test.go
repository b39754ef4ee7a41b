package callcontrol

import (
	"testing"
)

// BenchmarkSend posts a say to the local stand-in for Vapi's control
// endpoint (keep-alive connection, bearer key): the client's own cost plus
// a loopback HTTP round trip.
func BenchmarkSend(b *testing.B) {
	srv := newControlServer(b, nil)
	cfg := testConfig(srv)
	cfg.BearerKey = testKey
	c := mustNew(b, cfg, Deps{})
	u := srv.controlURL()
	m := must(Say("Your table for four is booked for eight o'clock.", false))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Send(b.Context(), u, m); err != nil {
			b.Fatal(err)
		}
	}
}
