package bench

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
)

// BareHandler is the baseline of issue 3's CPU target: a Go handler that
// only reads the body, checks an HMAC-SHA256 over "{timestamp}.{body}"
// (Vapi's default plan, the headers voicegate's default uses) and decodes
// the envelope's type — no timestamp window, replay check, session, storage
// or metrics. Driven by the same generator as voicegate, it measures what
// voicegate's real work costs on top of the unavoidable part.
func BareHandler(secret string) http.Handler {
	key := []byte(secret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		m := hmac.New(sha256.New, key)
		io.WriteString(m, r.Header.Get("X-Timestamp"))
		m.Write([]byte{'.'})
		m.Write(body)
		got, err := hex.DecodeString(r.Header.Get("X-Signature"))
		if err != nil || !hmac.Equal(got, m.Sum(nil)) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var env struct {
			Message struct {
				Type string `json:"type"`
			} `json:"message"`
		}
		if json.Unmarshal(body, &env) != nil || env.Message.Type == "" {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	})
}
