package twilio

import (
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/confval"
)

func TestForwardTwiML(t *testing.T) {
	for dest, want := range map[string]string{
		`{"type":"number","number":"+15550007777","callerId":"+15550001111"}`:                       `<Response><Dial callerId="+15550001111"><Number>+15550007777</Number></Dial></Response>`,
		`{"type":"sip","sipUri":"sip:agent@example.com?x=<b>&y=1"}`:                                 `<Response><Dial><Sip>sip:agent@example.com?x=&lt;b&gt;&amp;y=1</Sip></Dial></Response>`,
		`{"type":"number","number":"+15550007777","extension":"ww123#"}`:                            `<Response><Dial><Number sendDigits="ww123#">+15550007777</Number></Dial></Response>`,
		`{"type":"number","number":"+15550007777","extension":"ext. 123"}`:                          "",
		`{"type":"number","number":"+15550007777","extension":"123456789012345678901234567890123"}`: "",
		`{"type":"number","number":"555"}`:                                                          "",
		`{"type":"sip","sipUri":"http://x"}`:                                                        "",
		`{"type":"assistant"}`:                                                                      "",
		`"x"`:                                                                                       "",
	} {
		got, err := ForwardTwiML([]byte(dest))
		if (want == "") != (err != nil) || !strings.HasSuffix(got, want) {
			t.Errorf("%s: %q %v, want %q", dest, got, err, want)
		}
	}
}

func TestRESTConfigValidate(t *testing.T) {
	ok := RESTConfig{AccountSid: "AC0123456789abcdef0123456789abcdef", AuthToken: confval.Secret{Value: "t"}}
	ok.Complete()
	for name, c := range map[string]struct {
		mut  func(*RESTConfig)
		want string
	}{
		"ok":            {func(*RESTConfig) {}, ""},
		"off":           {func(c *RESTConfig) { *c = RESTConfig{} }, ""},
		"token only":    {func(c *RESTConfig) { *c = RESTConfig{AuthToken: confval.Secret{Value: "t"}} }, "account_sid: "},
		"bad sid":       {func(c *RESTConfig) { c.AccountSid = "AC12" }, "account_sid: "},
		"no token":      {func(c *RESTConfig) { c.AuthToken.Value = "" }, "auth_token: "},
		"http remote":   {func(c *RESTConfig) { c.APIBaseURL = "http://api.twilio.com" }, "api_base_url: "},
		"http loopback": {func(c *RESTConfig) { c.APIBaseURL = "http://127.0.0.1:8080" }, ""},
		"path":          {func(c *RESTConfig) { c.APIBaseURL = "https://api.twilio.com/2010-04-01" }, "api_base_url: "},
		"retries":       {func(c *RESTConfig) { c.Retries = 9 }, "retries: "},
	} {
		cfg := ok
		c.mut(&cfg)
		got := strings.Join(cfg.Validate(), "\n")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}
