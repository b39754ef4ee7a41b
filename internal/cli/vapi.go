package cli

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
)

const vapiUsage = `voicegate vapi sign --config FILE --body-file FILE [--url URL] [--entry N]
voicegate vapi verify --config FILE --body-file FILE --header 'Name: value'... [--url URL] [--method POST] [--now RFC3339]
` + vapiOpsUsage

// errVapiNotValid is verify's verdict when no entry verifies (exit 1);
// the details are on stdout.
var errVapiNotValid = errors.New("vapi verify: no vapi.auth entry verifies the request")

// runVapi is the offline signature debugger for Vapi's webhooks: sign
// prints the headers an entry of vapi.auth expects for a body; verify says
// whether received headers verify against each entry and, when an HMAC
// does not match, shows the exact string the entry signs and tries the
// readings senders commonly use (payload order, timestamp unit, encoding,
// prefix) to say which one the sender used.
func runVapi(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &UsageError{Msg: "vapi needs sign, verify, plan or apply\n" + vapiUsage}
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, vapiUsage)
		return nil
	case "plan", "apply":
		return runVapiOps(ctx, args[0], args[1:], getenv, stdout, stderr)
	case "sign", "verify":
	default:
		return &UsageError{Msg: fmt.Sprintf("unknown vapi command %q\n%s", args[0], vapiUsage)}
	}
	verify := args[0] == "verify"
	fs := newFlagSet("vapi "+args[0], stderr)
	cfgPath := fs.String("config", "", "the configuration whose vapi.auth entries to use (required)")
	bodyFile := fs.String("body-file", "", "the raw request body (required)")
	rawURL := fs.String("url", "", "the URL the request was sent to, for a payload format with {url}")
	method := fs.String("method", http.MethodPost, "the request method, for a payload format with {method}")
	entry := fs.Int("entry", 0, "sign: the vapi.auth entry to sign with")
	nowFlag := fs.String("now", "", "verify: the time to check signed timestamps against (RFC 3339; default now)")
	var headers headerFlag
	fs.Var(&headers, "header", "verify: a header received, `'Name: value'` (repeat)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *cfgPath == "" || *bodyFile == "" || (verify && len(headers) == 0) {
		return &UsageError{Msg: "vapi " + args[0] + " needs --config and --body-file" + map[bool]string{true: " and --header", false: ""}[verify] + "\n" + vapiUsage}
	}
	cfg, err := config.LoadClient(*cfgPath, config.Options{Getenv: getenv})
	if err != nil {
		return err
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	now := time.Now()
	if *nowFlag != "" {
		if now, err = time.Parse(time.RFC3339, *nowFlag); err != nil {
			return &UsageError{Msg: "--now: " + err.Error()}
		}
	}
	entries := cfg.Vapi.Auth
	if !verify {
		if *entry < 0 || *entry >= len(entries) {
			return &UsageError{Msg: fmt.Sprintf("--entry %d: the configuration has %d vapi.auth entries", *entry, len(entries))}
		}
		s, err := auth.NewSigner(entries[*entry], now)
		if err != nil {
			return err
		}
		h := http.Header{}
		s.Sign(h, *method, *rawURL, body, now)
		for _, k := range slices.Sorted(maps.Keys(h)) {
			v := h.Get(k)
			if entries[*entry].Mode != auth.ModeHMAC {
				// A bearer token or static secret is the credential itself:
				// never printed.
				v = fmt.Sprintf("<the secret of vapi.auth[%d]>", *entry)
				if strings.HasPrefix(h.Get(k), "Bearer ") {
					v = "Bearer " + v
				}
			}
			fmt.Fprintf(stdout, "%s: %s\n", k, v)
		}
		return nil
	}
	h := http.Header{}
	for _, kv := range headers {
		h.Add(kv[0], kv[1])
	}
	ok := false
	for i, a := range entries {
		v, err := auth.NewVerifier(a)
		if err != nil {
			return err
		}
		verr := v.Verify(&auth.Request{Method: *method, URL: *rawURL, Header: h, Body: body}, now)
		if verr == nil {
			fmt.Fprintf(stdout, "vapi.auth[%d] (%s): verifies\n", i, a.Mode)
			ok = true
			continue
		}
		fmt.Fprintf(stdout, "vapi.auth[%d] (%s): does not verify: %s\n", i, a.Mode, auth.ReasonOf(verr))
		if r := auth.ReasonOf(verr); a.Mode == auth.ModeHMAC && (r == auth.ReasonMismatch || r == auth.ReasonMalformed) && h.Get(a.SignatureHeader) != "" {
			explainHMAC(stdout, a, h, *method, *rawURL, body)
		}
	}
	if !ok {
		return errVapiNotValid
	}
	return nil
}

// explainHMAC prints what entry a signs and which common reading, if any,
// produces the signature received.
func explainHMAC(w io.Writer, a auth.Config, h http.Header, method, url string, body []byte) {
	got := strings.TrimSpace(h.Get(a.SignatureHeader))
	ts := h.Get(a.TimestampHeaderName())
	fmt.Fprintf(w, "  signs %s over %s (%s", a.Algorithm, quoteFormat(a.PayloadFormat, ts, method, url, body), a.Encoding)
	if a.Prefix != "" {
		fmt.Fprintf(w, ", prefix %q", a.Prefix)
	}
	fmt.Fprintln(w, ")")
	tsVariants := []string{ts}
	if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
		if len(ts) >= 12 {
			tsVariants = append(tsVariants, strconv.FormatInt(n/1000, 10))
		} else {
			tsVariants = append(tsVariants, strconv.FormatInt(n*1000, 10))
		}
	}
	formats := []string{a.PayloadFormat, "{timestamp}.{body}", "{body}", "{timestamp}{body}", "{body}.{timestamp}", "{timestamp}:{body}"}
	for _, alg := range []string{a.Algorithm, "sha256", "sha1", "sha512"} {
		for _, f := range formats {
			for _, t := range tsVariants {
				for si, sec := range a.Secrets {
					key := []byte(sec.Value)
					if a.SecretBase64 {
						if k, err := base64.StdEncoding.DecodeString(sec.Value); err == nil {
							key = k
						}
					}
					sum := mac(alg, key, expand(f, t, method, url, body))
					if sum == nil {
						continue
					}
					for _, enc := range []string{"hex", "base64"} {
						s := hex.EncodeToString(sum)
						if enc == "base64" {
							s = base64.StdEncoding.EncodeToString(sum)
						}
						bare := got
						if i := strings.Index(bare, "="); i > 0 && i < 12 && !strings.HasSuffix(bare, "=") {
							bare = bare[i+1:]
						}
						if hmac.Equal([]byte(bare), []byte(s)) || hmac.Equal([]byte(got), []byte(s)) {
							fmt.Fprintf(w, "  the signature received matches %s over %s, %s, secret %d", alg, quoteFormat(f, t, method, url, body), enc, si)
							if t != ts {
								fmt.Fprintf(w, " with the timestamp in other units (%s)", t)
							}
							if bare != got {
								fmt.Fprintf(w, ", prefix %q", got[:len(got)-len(bare)])
							}
							fmt.Fprintln(w, ": set the entry's algorithm, payload_format, encoding and prefix to these")
							return
						}
					}
				}
			}
		}
	}
	fmt.Fprintln(w, "  no common reading matches: the secret differs, or the body was changed on the way (a proxy re-encoding JSON, a framework parsing it first)")
}

func mac(alg string, key, payload []byte) []byte {
	nh, err := auth.HashFunc(alg)
	if err != nil {
		return nil
	}
	m := hmac.New(nh, key)
	m.Write(payload)
	return m.Sum(nil)
}

func expand(f, ts, method, url string, body []byte) []byte {
	r := strings.NewReplacer("{timestamp}", ts, "{method}", method, "{url}", url)
	pre, post, _ := strings.Cut(f, "{body}")
	if !strings.Contains(f, "{body}") {
		return []byte(r.Replace(f))
	}
	return append(append([]byte(r.Replace(pre)), body...), r.Replace(post)...)
}

// quoteFormat shows a payload with its parts filled in, the body by its
// size (it may hold personal data).
func quoteFormat(f, ts, method, url string, body []byte) string {
	r := strings.NewReplacer("{timestamp}", ts, "{method}", method, "{url}", url, "{body}", fmt.Sprintf("<the %d-byte body>", len(body)))
	return strconv.Quote(r.Replace(f))
}

// headerFlag collects --header 'Name: value'.
type headerFlag [][2]string

func (h *headerFlag) String() string { return "" }
func (h *headerFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q is not 'Name: value'", s)
	}
	*h = append(*h, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	return nil
}
