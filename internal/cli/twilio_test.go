package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The Twilio vectors (twilio-node and twilio-go test suites), auth token 12345.
const (
	twBase    = "https://mycompany.com/myapp.php?foo=1&bar=2"
	twSig     = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
	twSig443  = "kvajT1Ptam85bY51eRf/AJRuM3w="
	twBody    = `{"property": "value", "boolean": true}`
	twHash    = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	twJSONSig = "a9nBmqA0ju/hNViExpshrM61xv4="
	// twSecret is a token no output may ever contain.
	twSecret = "s3cr3t-TOKEN-never-printed"
)

var twParams = []string{
	"--param", "CallSid=CA1234567890ABCDE", "--param", "Caller=+14158675309", "--param", "Digits=1234",
	"--param", "From=+14158675309", "--param", "To=+18005551212",
}

func twArgs(args ...string) []string {
	return append(append([]string{"twilio"}, args...), twParams...)
}

// TestTwilioCommand: exit codes and output of sign and verify, for each
// outcome and each usage mistake; the token never appears in any output.
func TestTwilioCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	body := write("body.json", twBody)
	bodyNL := write("body-nl.json", twBody+"\n")
	form := write("form.txt", "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212")
	badForm := write("bad-form.txt", "a=%zz")
	jsonURL := twBase + "&bodySHA256=" + twHash
	env := map[string]string{"TWILIO_AUTH_TOKEN": "12345", "TW_TOKEN": "12345", "TW_OLD": "old-token", "TW_SECRET": twSecret, "TW_EMPTY": ""}
	getenv := func(k string) string { return env[k] }

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		out      []string // substrings of stdout
		errOut   []string // substrings of stderr
		exactOut string   // whole stdout, when set
	}{
		{name: "sign", args: twArgs("sign", "--url", twBase), exactOut: twSig + "\n"},
		{name: "sign with --token-env", args: twArgs("sign", "--url", twBase, "--token-env", "TW_TOKEN"), exactOut: twSig + "\n"},
		{name: "sign with --token", args: twArgs("sign", "--url", twBase, "--token", "12345"), exactOut: twSig + "\n"},
		{name: "sign a :443 URL", args: twArgs("sign", "--url", "https://mycompany.com:443/myapp.php?foo=1&bar=2"), exactOut: twSig443 + "\n"},
		{name: "sign repeated values", args: []string{"twilio", "sign", "--url", twBase,
			"--param", "MessagingBinding.Address=+1415xxxxxxx", "--param", "MessagingBinding.Address=+1325xxxxxxx"},
			exactOut: "83O6e2vORAoJHUNzJjDWN1jz+BA=\n"},
		{name: "sign a form file", args: []string{"twilio", "sign", "--url", twBase, "--form-file", form}, exactOut: twSig + "\n"},
		{name: "sign -v", args: twArgs("sign", "-v", "--url", twBase), out: []string{
			"URL:           " + twBase + "\n",
			`signed string: "` + twBase + `CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309To+18005551212"`,
			"signature:     " + twSig + "\n"}},
		{name: "sign JSON: bodySHA256 added", args: []string{"twilio", "sign", "--url", twBase, "--body-file", body},
			exactOut: twJSONSig + "\n", errOut: []string{jsonURL + "\n"}},
		{name: "sign JSON: bodySHA256 added before a fragment", args: []string{"twilio", "sign", "--url", "https://mycompany.com/myapp.php#top", "--body-file", body},
			errOut: []string{"https://mycompany.com/myapp.php?bodySHA256=" + twHash + "#top\n"}},
		{name: "sign JSON, URL with bodySHA256", args: []string{"twilio", "sign", "--url", jsonURL, "--body-file", body}, exactOut: twJSONSig + "\n"},
		{name: "sign JSON URL alone", args: []string{"twilio", "sign", "--url", jsonURL}, exactOut: twJSONSig + "\n"},

		{name: "verify valid", args: twArgs("verify", "--url", twBase, "--signature", twSig),
			exactOut: "valid: signed with the token from $TWILIO_AUTH_TOKEN over the URL as given\n"},
		{name: "verify valid with :443 added", args: twArgs("verify", "--url", twBase, "--signature", twSig443),
			out: []string{"valid: signed with the token from $TWILIO_AUTH_TOKEN over the URL with the default port added"}},
		{name: "verify valid, non-default port removed", args: twArgs("verify", "--url", "https://mycompany.com:8443/myapp.php?foo=1&bar=2", "--signature", twSig),
			out: []string{"over the URL without its port"}},
		{name: "verify rotation: second token", args: twArgs("verify", "--url", twBase, "--signature", twSig, "--token-env", "TW_OLD", "--token-env", "TW_TOKEN"),
			out: []string{"valid: signed with the token from $TW_TOKEN over the URL as given"}},
		{name: "verify rotation: --token labels", args: twArgs("verify", "--url", twBase, "--signature", twSig, "--token", "old", "--token", "12345"),
			out: []string{"token from --token #2"}},
		{name: "verify -v", args: twArgs("verify", "-v", "--url", twBase, "--signature", twSig),
			out: []string{`signed string: "` + twBase + `CallSid`}},
		{name: "verify JSON", args: []string{"twilio", "verify", "--url", jsonURL, "--body-file", body, "--signature", twJSONSig},
			out: []string{"valid: signed with the token from $TWILIO_AUTH_TOKEN over the URL as given"}},

		{name: "verify mismatch: every variant and hint", args: twArgs("verify", "--url", "http://10.0.0.7:3000/myapp.php?foo=1&bar=2", "--signature", twSig), code: 1,
			out: []string{
				"NOT VALID: the signature " + twSig + " matches no token over any URL variant.",
				`"CallSid" = "CA1234567890ABCDE"`,
				"The URL as given:\n  signed string: \"http://10.0.0.7:3000/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDE",
				"The URL without its port:\n  signed string: \"http://10.0.0.7/myapp.php?foo=1&bar=2CallSid",
				"(token from $TWILIO_AUTH_TOKEN)",
				"The URL is http://", "The host 10.0.0.7 looks internal", "The URL has port 3000",
			},
			errOut: []string{"signature not valid"}},
		{name: "verify mismatch: http instead of https found", args: twArgs("verify", "--url", "http://mycompany.com/myapp.php?foo=1&bar=2", "--signature", twSig), code: 1,
			out: []string{"It DOES match (token from $TWILIO_AUTH_TOKEN) if the URL starts with https:// instead of http://\n  signed string: \"https://mycompany.com/myapp.php"}},
		{name: "verify mismatch: query parameter in the form found", args: twArgs("verify", "--url", twBase, "--param", "foo=1", "--signature", twSig), code: 1,
			out: []string{"It DOES match", "parameters that are also in the query string are left out"}},
		{name: "verify mismatch: trimmed value found", args: []string{"twilio", "verify", "--url", twBase, "--signature", twSig,
			"--param", "CallSid=CA1234567890ABCDE ", "--param", "Caller=+14158675309", "--param", "Digits=1234", "--param", "From=+14158675309", "--param", "To=+18005551212"}, code: 1,
			out: []string{"It DOES match", "values are trimmed", `"CallSid" = "CA1234567890ABCDE "`}},
		{name: "verify valid: a repeated pair is signed once", args: twArgs("verify", "--url", twBase, "--param", "Digits=1234", "--signature", twSig),
			out: []string{"valid:"}},
		{name: "verify mismatch: a repeated pair noted", args: twArgs("verify", "--url", "http://mycompany.com/myapp.php?foo=1&bar=2", "--param", "Digits=1234", "--signature", twSig), code: 1,
			out: []string{"It DOES match", "(1 repeated name=value pair(s) given: each distinct pair is signed once)"}},
		{name: "verify mismatch: no params", args: []string{"twilio", "verify", "--url", twBase, "--signature", twSig}, code: 1,
			out: []string{"No parameters: the signature covers the URL alone.", "No parameters were given"}},
		{name: "verify mismatch: both tokens listed", args: twArgs("verify", "--url", twBase, "--signature", twSig443[:5]+"A"+twSig443[6:], "--token-env", "TW_OLD", "--token-env", "TW_TOKEN"), code: 1,
			out: []string{"(token from $TW_OLD)", "(token from $TW_TOKEN)", "  signature:     " + twSig443 + "  (token from $TW_TOKEN)"}},
		{name: "verify malformed", args: twArgs("verify", "--url", twBase, "--signature", `"`+twSig+`"`), code: 1,
			out: []string{"is not the base64 of an HMAC-SHA1", "surrounding spaces or quotes", "signature:     " + twSig}},
		{name: "verify JSON body changed", args: []string{"twilio", "verify", "--url", jsonURL, "--body-file", bodyNL, "--signature", twJSONSig}, code: 1,
			out: []string{"the signature over the URL is valid", "bodySHA256 in the URL: " + twHash, "It matches without the body's final \"\\n\""}},
		{name: "verify JSON signature wrong", args: []string{"twilio", "verify", "--url", jsonURL, "--body-file", body, "--signature", twSig}, code: 1,
			out: []string{"A JSON request (the URL carries bodySHA256): the signature covers the URL alone."}},

		{name: "no subcommand", args: []string{"twilio"}, code: 2, errOut: []string{"twilio needs sign or verify"}},
		{name: "unknown subcommand", args: []string{"twilio", "check"}, code: 2, errOut: []string{`unknown twilio command "check"`}},
		{name: "no --url", args: twArgs("sign"), code: 2, errOut: []string{"needs --url"}},
		{name: "relative --url", args: twArgs("verify", "--url", "/myapp.php?foo=1", "--signature", twSig), code: 2, errOut: []string{"want the full URL"}},
		{name: "no --signature", args: twArgs("verify", "--url", twBase), code: 2, errOut: []string{"needs --signature"}},
		{name: "no token", args: twArgs("sign", "--url", twBase, "--token-env", "TW_EMPTY"), code: 2, errOut: []string{"$TW_EMPTY is empty or unset"}},
		{name: "empty --token", args: twArgs("sign", "--url", twBase, "--token", ""), code: 2, errOut: []string{"empty token"}},
		{name: "two tokens to sign with", args: twArgs("sign", "--url", twBase, "--token-env", "TW_TOKEN", "--token-env", "TW_OLD"), code: 2, errOut: []string{"signs with one token"}},
		{name: "--param without =", args: twArgs("sign", "--url", twBase, "--param", "CallSid"), code: 2, errOut: []string{"want NAME=VALUE"}},
		{name: "stray argument", args: twArgs("sign", "--url", twBase, "extra"), code: 2, errOut: []string{"unexpected arguments"}},
		{name: "missing file", args: []string{"twilio", "sign", "--url", twBase, "--form-file", filepath.Join(dir, "nope")}, code: 2, errOut: []string{"--form-file"}},
		{name: "bad form file", args: []string{"twilio", "sign", "--url", twBase, "--form-file", badForm}, code: 2, errOut: []string{"not an application/x-www-form-urlencoded body"}},
		{name: "body with params", args: twArgs("sign", "--url", twBase, "--body-file", body), code: 2, errOut: []string{"has no form parameters"}},
		{name: "params on a JSON URL", args: twArgs("sign", "--url", jsonURL), code: 2, errOut: []string{"drop --param"}},
		{name: "verify body without bodySHA256", args: []string{"twilio", "verify", "--url", twBase, "--body-file", body, "--signature", twJSONSig}, code: 2,
			errOut: []string{"bodySHA256=" + twHash}},
		{name: "verify bodySHA256 without body", args: []string{"twilio", "verify", "--url", jsonURL, "--signature", twJSONSig}, code: 2, errOut: []string{"give the raw body with --body-file"}},
		{name: "sign bodySHA256 not the body's", args: []string{"twilio", "sign", "--url", jsonURL, "--body-file", bodyNL}, code: 2, errOut: []string{"but the SHA-256 of --body-file is"}},
		{name: "help", args: []string{"twilio", "help"}, out: []string{"usage: voicegate twilio sign"}},
		{name: "sign -h", args: []string{"twilio", "sign", "-h"}, errOut: []string{"usage: voicegate twilio sign", "-token-env NAME"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, getenv, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.exactOut != "" && out != tc.exactOut {
				t.Errorf("stdout\n got %q\nwant %q", out, tc.exactOut)
			}
			for _, s := range tc.out {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tc.errOut {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
		})
	}
}

// TestTwilioNeverPrintsToken: whatever the outcome, the token is in no
// output — the signed strings, the hints and the errors name it by where
// it came from.
func TestTwilioNeverPrintsToken(t *testing.T) {
	getenv := func(k string) string {
		if k == "TW_SECRET" {
			return twSecret
		}
		return ""
	}
	for _, args := range [][]string{
		twArgs("sign", "-v", "--url", twBase, "--token-env", "TW_SECRET"),
		twArgs("sign", "-v", "--url", twBase, "--token", twSecret),
		twArgs("verify", "-v", "--url", twBase, "--signature", twSig, "--token-env", "TW_SECRET"),
		twArgs("verify", "-v", "--url", twBase, "--signature", twSig, "--token", twSecret),
		twArgs("verify", "--url", twBase, "--signature", "bad", "--token", twSecret),
		twArgs("verify", "--url", twBase, "--token", twSecret),
		twArgs("sign", "--url", twBase, "--token", twSecret, "--token", twSecret),
		twArgs("sign", "--url", twBase, "--token", twSecret, "--bogus"),
		// The token given to --token-env by mistake: the flag package would
		// quote a failing flag's value.
		twArgs("verify", "--url", twBase, "--signature", twSig, "--token-env", twSecret),
		twArgs("sign", "--url", twBase, "--token-env", twSecret),
	} {
		out, errOut, code := runCLI(t, getenv, args...)
		if strings.Contains(out, twSecret) || strings.Contains(errOut, twSecret) {
			t.Errorf("%v (exit %d) printed the token:\n%s\n%s", args, code, out, errOut)
		}
	}
}
