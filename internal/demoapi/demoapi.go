// Package demoapi provides a tiny stand-in for an internal appointments API.
// serve --dev mounts it so that a newcomer sees a tool call answered end to
// end, and bench serves it so that a benchmark needs nothing else.
package demoapi

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// Path is where serve --dev mounts the demo API.
const Path = "/dev/internal/appointments"

// Handler answers POST {"name"?, "date"?} with a fixed appointment.
// A "delay_ms" argument (0–2000) makes it answer late, for tests of timeouts.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var args struct {
			Name    string `json:"name"`
			Date    string `json:"date"`
			DelayMs int    `json:"delay_ms"`
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil || (len(body) > 0 && json.Unmarshal(body, &args) != nil) {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		if args.DelayMs > 0 && args.DelayMs <= 2000 {
			select {
			case <-time.After(time.Duration(args.DelayMs) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		date := args.Date
		if date == "" {
			date = "2026-12-01"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"appointment": map[string]any{"date": date, "time": "10:30", "with": "Dr. Rivera", "status": "confirmed"},
		})
	})
}
