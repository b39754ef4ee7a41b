package bench

import (
	"net/http"
	"time"

	"github.com/voicegate/voicegate/internal/demoapi"
)

// APIHandler is the internal API that bench serves for tool calls: the demo
// appointments API, answering after delay (precisely: see preciseSleep).
func APIHandler(delay time.Duration) http.Handler {
	h := demoapi.Handler()
	if delay <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		preciseSleep(delay)
		h.ServeHTTP(w, r)
	})
}
