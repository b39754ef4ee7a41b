package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/logkey"
)

// RESTConfig is vapi.phone_call_control: the Twilio account whose calls
// voicegate forwards or hangs up when Vapi delegates it (phone-call-control
// messages). Off while AccountSid is empty.
type RESTConfig struct {
	AccountSid string `yaml:"account_sid"`
	// AuthToken (or AuthTokenFile) authenticates the REST calls; never
	// printed.
	AuthToken     confval.Secret `yaml:"auth_token"`
	AuthTokenFile string         `yaml:"auth_token_file"`
	// APIBaseURL is Twilio's REST API (default https://api.twilio.com;
	// http only on loopback, for a local stand-in).
	APIBaseURL string           `yaml:"api_base_url"`
	Timeout    confval.Duration `yaml:"timeout"`
	// Retries on a connection that failed before sending, 429 and 5xx.
	Retries int `yaml:"retries"`
}

// Defaults of the REST client.
const (
	DefaultAPIBaseURL  = "https://api.twilio.com"
	DefaultRESTTimeout = 5 * time.Second
)

// Enabled reports whether phone-call control is configured.
func (c RESTConfig) Enabled() bool { return c.AccountSid != "" }

// Complete fills the defaults.
func (c *RESTConfig) Complete() {
	if c.APIBaseURL == "" {
		c.APIBaseURL = DefaultAPIBaseURL
	}
	if c.Timeout == 0 {
		c.Timeout = confval.Duration(DefaultRESTTimeout)
	}
}

// Resolve reads the token file.
func (c *RESTConfig) Resolve(readFile func(string) ([]byte, error)) []string {
	if c.AuthTokenFile == "" {
		return nil
	}
	if c.AuthToken.Value != "" {
		return []string{"auth_token_file: set auth_token or auth_token_file, not both"}
	}
	b, err := readFile(c.AuthTokenFile)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return []string{fmt.Sprintf("auth_token_file: %v", err)}
	}
	c.AuthToken.Value = strings.TrimSpace(string(b))
	return nil
}

// Validate returns the section's problems, each starting with its field.
func (c RESTConfig) Validate() []string {
	if !c.Enabled() {
		if c.AuthToken.Value != "" || c.AuthTokenFile != "" {
			return []string{"account_sid: required when an auth token is set"}
		}
		return nil
	}
	var probs []string
	if !accountSid.MatchString(c.AccountSid) {
		probs = append(probs, "account_sid: not a Twilio account SID (AC followed by 32 hex digits)")
	}
	if c.AuthToken.Value == "" {
		probs = append(probs, "auth_token: required (auth_token: ${TWILIO_AUTH_TOKEN}, or auth_token_file)")
	}
	u, err := url.Parse(c.APIBaseURL)
	switch {
	case err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/"):
		probs = append(probs, fmt.Sprintf("api_base_url: %q is not a base URL such as https://api.twilio.com", c.APIBaseURL))
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())):
		probs = append(probs, "api_base_url: must be https (http only on a loopback address, for a local stand-in)")
	}
	if c.Timeout.D() <= 0 || c.Timeout.D() > 30*time.Second {
		probs = append(probs, "timeout: must be between 1ms and 30s")
	}
	if c.Retries < 0 || c.Retries > 5 {
		probs = append(probs, "retries: must be between 0 and 5")
	}
	return probs
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// REST updates live Twilio calls (forward with TwiML, hang up).
type REST struct {
	cfg    RESTConfig
	client *http.Client
	log    *slog.Logger
}

// NewREST builds the client of a validated, enabled configuration.
func NewREST(c RESTConfig, log *slog.Logger) *REST {
	return &REST{cfg: c, log: log, client: &http.Client{
		Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext, TLSHandshakeTimeout: 3 * time.Second,
			MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Destination is where a call is forwarded: a number (and the extension
// to dial once it answers) or a SIP URI.
type Destination struct {
	Type      string `json:"type"`
	Number    string `json:"number"`
	Extension string `json:"extension"`
	SipURI    string `json:"sipUri"`
	CallerID  string `json:"callerId"`
}

type numberNoun struct {
	// SendDigits are played as DTMF tones when the number answers (an
	// extension).
	SendDigits string `xml:"sendDigits,attr,omitempty"`
	Number     string `xml:",chardata"`
}

// sendDigits is what Twilio's sendDigits accepts: digits, * and #, and w
// for a half-second pause.
var sendDigits = regexp.MustCompile(`^[0-9*#w]{1,32}$`)

type dialTo struct {
	XMLName  struct{}    `xml:"Dial"`
	CallerID string      `xml:"callerId,attr,omitempty"`
	Number   *numberNoun `xml:"Number,omitempty"`
	Sip      *sipNoun    `xml:"Sip,omitempty"`
}

// ForwardTwiML is the TwiML that forwards a call to d.
func ForwardTwiML(raw json.RawMessage) (string, error) {
	var d Destination
	if json.Unmarshal(raw, &d) != nil {
		return "", errors.New("the destination is not an object")
	}
	v := dialTo{CallerID: d.CallerID}
	switch {
	case d.Type == "number" && e164.MatchString(d.Number):
		if d.Extension != "" && !sendDigits.MatchString(d.Extension) {
			return "", errors.New("the destination's extension is not digits, *, # and w (a pause)")
		}
		v.Number = &numberNoun{Number: d.Number, SendDigits: d.Extension}
	case d.Type == "sip" && strings.HasPrefix(d.SipURI, "sip:") && !strings.ContainsAny(d.SipURI, " \r\n"):
		v.Sip = &sipNoun{URI: d.SipURI}
	default:
		return "", errors.New("the destination is neither a number in E.164 nor a sip: URI")
	}
	return string(render(v)), nil
}

// Forward points call sid at TwiML; HangUp ends it.
func (r *REST) Forward(ctx context.Context, sid, twiml string) error {
	return r.update(ctx, sid, url.Values{"Twiml": {twiml}})
}

// HangUp ends call sid.
func (r *REST) HangUp(ctx context.Context, sid string) error {
	return r.update(ctx, sid, url.Values{"Status": {"completed"}})
}

// update posts to Calls/{sid}.json, retrying a request that never reached
// Twilio, 429 and 5xx (an update is idempotent: the same TwiML or status).
func (r *REST) update(ctx context.Context, sid string, form url.Values) error {
	if !callSidRE.MatchString(sid) {
		return errors.New("not a Twilio call SID")
	}
	target := strings.TrimRight(r.cfg.APIBaseURL, "/") + "/2010-04-01/Accounts/" + r.cfg.AccountSid + "/Calls/" + sid + ".json"
	body := form.Encode()
	var last error
	for attempt := 0; attempt <= r.cfg.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		actx, cancel := context.WithTimeout(ctx, r.cfg.Timeout.D())
		req, err := http.NewRequestWithContext(actx, http.MethodPost, target, strings.NewReader(body))
		if err != nil {
			cancel()
			return err
		}
		req.SetBasicAuth(r.cfg.AccountSid, r.cfg.AuthToken.Value)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := r.client.Do(req)
		if err != nil {
			cancel()
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // the URL holds the account SID only, but keep errors short
			}
			last = fmt.Errorf("twilio call update: %w", err)
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cancel()
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return nil
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			last = fmt.Errorf("twilio call update: status %d", resp.StatusCode)
			r.log.Debug("twilio call update retry", logkey.Status, resp.StatusCode)
			continue
		default:
			return &PermanentError{Status: resp.StatusCode}
		}
	}
	return last
}

// callSidRE is a Twilio call SID: CA and 32 hex digits.
var callSidRE = regexp.MustCompile(`^CA[0-9a-fA-F]{32}$`)

// IsCallSid reports whether s is a Twilio call SID.
func IsCallSid(s string) bool { return callSidRE.MatchString(s) }

// PermanentError is Twilio refusing an update (4xx other than 429: the
// call is over, or not the account's): retrying cannot help.
type PermanentError struct{ Status int }

func (e *PermanentError) Error() string {
	return fmt.Sprintf("twilio call update refused: status %d", e.Status)
}
