package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/voicegate/voicegate/internal/twilio"
)

// TwilioTarget is the Twilio door the twilio mix loads: requests go to the
// server's address (Options.URL) plus the paths, signed for PublicBaseURL
// plus the same paths, as Twilio signs the URL it is configured with (a
// TLS-terminating proxy would be in front).
type TwilioTarget struct {
	PublicBaseURL         string
	VoicePath, StatusPath string
	// Token is the auth token the requests are signed with.
	Token string
	// Number is the called number (To).
	Number string
}

// twilioCallSid is a call SID as Twilio writes them ("CA" and 32 hex
// digits), distinct between runs (prefix) and calls (n).
func twilioCallSid(prefix string, n int) string {
	h := sha256.Sum256([]byte(prefix))
	return fmt.Sprintf("CA%s%08x", hex.EncodeToString(h[:12]), n)
}

// The caller (a 555-01xx number, reserved for fiction) and the account.
const (
	benchCaller  = "+15550100001"
	benchAccount = "ACbe0c0000000000000000000000000000"
)

// nextTwilio walks a call through Twilio's webhooks: the incoming call
// (ringing), the status callback when it is answered (in-progress), and
// the final one (completed, with its duration).
func (b *builder) nextTwilio(cs *callState) (request, bool) {
	cs.step++
	switch cs.step {
	case 1:
		return b.twilioVoice(cs), true
	case 2:
		return b.twilioStatus(cs, "in-progress", kTwilioStatus), true
	case 3:
		return b.twilioStatus(cs, "completed", kTwilioFinal), true
	}
	return request{}, false
}

// twilioVoice is "A call comes in": the parameters Twilio sends for an
// inbound call (those of internal/twilio's verification benchmark).
func (b *builder) twilioVoice(cs *callState) request {
	form := url.Values{
		"AccountSid": {benchAccount}, "ApiVersion": {"2010-04-01"}, "CallSid": {cs.id}, "CallStatus": {"ringing"},
		"Called": {b.tw.Number}, "CalledCountry": {"US"}, "Caller": {benchCaller}, "CallerCountry": {"US"},
		"Direction": {"inbound"}, "From": {benchCaller}, "To": {b.tw.Number},
		"CallToken": {`{"parentCallInfoToken":"eyJhbGciOiJFUzI1NiJ9"}`},
	}
	return b.finishForm(b.tw.VoicePath, form, kTwilioVoice)
}

// twilioStatus is a status callback; each one's Timestamp differs (one
// second per request), as a real call's do.
func (b *builder) twilioStatus(cs *callState, status string, kind uint8) request {
	b.seq++
	form := url.Values{
		"AccountSid": {benchAccount}, "ApiVersion": {"2010-04-01"}, "CallSid": {cs.id}, "CallStatus": {status},
		"Called": {b.tw.Number}, "Caller": {benchCaller}, "Direction": {"inbound"}, "From": {benchCaller}, "To": {b.tw.Number},
		"CallbackSource": {"call-progress-events"}, "SequenceNumber": {strconv.Itoa(cs.step - 2)},
		"Timestamp": {b.now.Add(time.Duration(b.seq) * time.Second).UTC().Format(time.RFC1123Z)},
	}
	if status == "completed" {
		form.Set("CallDuration", "73")
		form.Set("Duration", "2")
	}
	return b.finishForm(b.tw.StatusPath, form, kind)
}

// finishForm renders a form POST to path, signed for the public URL, with
// an idempotency token of its own (Twilio's retries would share it).
func (b *builder) finishForm(path string, form url.Values, kind uint8) request {
	b.seq++
	body := form.Encode()
	sig := twilio.Sign(b.tw.Token, twilio.Canonical(b.tw.PublicBaseURL+path, twilio.AppendValues(nil, form)))
	raw := make([]byte, 0, len(body)+384)
	raw = append(raw, "POST "...)
	raw = append(raw, path...)
	raw = append(raw, " HTTP/1.1\r\nHost: "...)
	raw = append(raw, b.host...)
	raw = append(raw, "\r\nUser-Agent: TwilioProxy/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "...)
	raw = strconv.AppendInt(raw, int64(len(body)), 10)
	raw = append(raw, "\r\n"+twilio.SignatureHeader+": "...)
	raw = append(raw, sig...)
	raw = append(raw, "\r\n"+twilio.IdempotencyHeader+": "...)
	raw = append(raw, benchAccount+"-"...)
	raw = append(raw, b.w.CallPrefix...)
	raw = append(raw, '-')
	raw = strconv.AppendInt(raw, b.seq, 10)
	raw = append(raw, "\r\n\r\n"...)
	raw = append(raw, body...)
	return request{raw: raw, kind: kind}
}
