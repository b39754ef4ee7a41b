package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/voicegate/voicegate/internal/twilio"
)

const twilioUsage = `usage: voicegate twilio sign   --url URL [--param NAME=VALUE]... [--form-file FILE | --body-file FILE] [--token-env NAME | --token TOKEN] [-v]
       voicegate twilio verify --url URL [--param NAME=VALUE]... [--form-file FILE | --body-file FILE] --signature SIG [--token-env NAME | --token TOKEN]... [-v]

Computes or checks an X-Twilio-Signature offline: no configuration, no server.
--url is the full URL Twilio requested (scheme, host, port, path and query,
exactly as configured in Twilio). A form POST's parameters come from --param
(decoded values) or --form-file (the raw body); a JSON request's URL carries
bodySHA256 and its raw body comes from --body-file. The auth token comes from
--token-env NAME (or $TWILIO_AUTH_TOKEN), or --token, which leaves it in your
shell history. verify exits 0 when the signature is valid, 1 when it is not
(and prints what was signed for each URL variant tried), 2 on a usage mistake.`

// errSignatureNotValid is verify's verdict "not valid" (exit 1); the
// details are on stdout.
var errSignatureNotValid = errors.New("twilio verify: signature not valid")

// runTwilio runs voicegate twilio sign|verify.
func runTwilio(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &UsageError{Msg: "twilio needs sign or verify\n" + twilioUsage}
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, twilioUsage)
		return nil
	case "sign", "verify":
	default:
		return &UsageError{Msg: fmt.Sprintf("unknown twilio command %q\n%s", args[0], twilioUsage)}
	}
	verify := args[0] == "verify"
	fs := newFlagSet("twilio "+args[0], stderr)
	rawURL := fs.String("url", "", "the full URL Twilio requested, as configured in Twilio (required)")
	var params []twilio.Param
	fs.Var(paramFlag{&params}, "param", "a POST parameter, `NAME=VALUE` with the value decoded (repeat for each parameter, and for each value of a repeated name)")
	formFile := fs.String("form-file", "", "the raw application/x-www-form-urlencoded body of a form POST (instead of, or besides, --param)")
	bodyFile := fs.String("body-file", "", "the raw body of a JSON request (its URL carries bodySHA256)")
	var tokens []namedToken
	repeat := ""
	if verify {
		repeat = "; repeat --token-env and --token to try several tokens"
	}
	var tokenErr error
	fs.Var(&tokenFlag{list: &tokens, getenv: getenv, env: true, err: &tokenErr}, "token-env", "read the auth token from environment variable `NAME` (default TWILIO_AUTH_TOKEN"+repeat+")")
	fs.Var(&tokenFlag{list: &tokens, err: &tokenErr}, "token", "the auth `TOKEN` itself (prefer --token-env: a token on the command line stays in shell history)")
	verbose := fs.Bool("v", false, "also print the signed string")
	sig := new(string)
	if verify {
		sig = fs.String("signature", "", "the X-Twilio-Signature header received (required)")
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, twilioUsage)
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cmd := "twilio " + args[0]
	if tokenErr != nil {
		return &UsageError{Msg: cmd + ": " + tokenErr.Error()}
	}
	if *rawURL == "" {
		return &UsageError{Msg: cmd + " needs --url (the full URL Twilio requested)"}
	}
	if len(twilio.URLVariants(*rawURL)) < 2 {
		return &UsageError{Msg: fmt.Sprintf("%s --url %q: want the full URL Twilio requested, scheme://host[:port]/path?query", cmd, *rawURL)}
	}
	if verify && *sig == "" {
		return &UsageError{Msg: cmd + " needs --signature (the X-Twilio-Signature header received)"}
	}
	if len(tokens) == 0 {
		if getenv("TWILIO_AUTH_TOKEN") == "" {
			return &UsageError{Msg: cmd + " needs the auth token: --token-env NAME, $TWILIO_AUTH_TOKEN, or --token"}
		}
		tokens = append(tokens, namedToken{label: "$TWILIO_AUTH_TOKEN", value: getenv("TWILIO_AUTH_TOKEN")})
	}
	if !verify && len(tokens) > 1 {
		return &UsageError{Msg: cmd + " signs with one token: give one --token-env or --token"}
	}
	if *formFile != "" {
		b, err := os.ReadFile(*formFile)
		if err != nil {
			return &UsageError{Msg: fmt.Sprintf("%s --form-file: %v", cmd, err)}
		}
		vals, err := url.ParseQuery(string(b))
		if err != nil {
			return &UsageError{Msg: fmt.Sprintf("%s --form-file %s: not an application/x-www-form-urlencoded body: %v", cmd, *formFile, err)}
		}
		params = twilio.AppendValues(params, vals)
	}
	var body []byte
	if *bodyFile != "" {
		if len(params) > 0 {
			return &UsageError{Msg: cmd + ": a JSON request (--body-file) has no form parameters (--param, --form-file): its signature covers the URL alone"}
		}
		b, err := os.ReadFile(*bodyFile)
		if err != nil {
			return &UsageError{Msg: fmt.Sprintf("%s --body-file: %v", cmd, err)}
		}
		body = b
	}
	_, isJSON := twilio.BodySHA256(*rawURL)
	if isJSON && len(params) > 0 {
		return &UsageError{Msg: fmt.Sprintf("%s: the URL carries bodySHA256, so it is a JSON request whose signature covers the URL alone: drop --param/--form-file and give the body with --body-file", cmd)}
	}
	if verify {
		if body != nil && !isJSON {
			return &UsageError{Msg: fmt.Sprintf("%s: --body-file is for a JSON request, whose URL carries bodySHA256 (for this body: bodySHA256=%s); for a form POST give its parameters with --param or --form-file", cmd, twilio.BodyHash(body))}
		}
		if isJSON && body == nil {
			return &UsageError{Msg: cmd + ": the URL carries bodySHA256: give the raw body with --body-file"}
		}
		return twilioVerify(stdout, *rawURL, params, body, *sig, tokens, *verbose)
	}
	return twilioSign(stdout, stderr, cmd, *rawURL, params, body, tokens[0], *verbose)
}

// twilioSign prints the signature of a request. Given a JSON body and a URL
// without bodySHA256, it signs the URL Twilio would call: with the body's
// hash appended.
func twilioSign(stdout, stderr io.Writer, cmd, rawURL string, params []twilio.Param, body []byte, tok namedToken, verbose bool) error {
	u := rawURL
	if body != nil {
		bh := twilio.BodyHash(body)
		hash, isJSON := twilio.BodySHA256(rawURL)
		switch {
		case !isJSON:
			base, frag, hasFrag := strings.Cut(u, "#")
			sep := "?"
			if strings.Contains(base, "?") {
				sep = "&"
			}
			u = base + sep + twilio.BodyHashParam + "=" + bh
			if hasFrag {
				u += "#" + frag
			}
			fmt.Fprintf(stderr, "voicegate %s: a JSON request's URL carries the body's SHA-256; the URL Twilio would call:\n%s\n", cmd, u)
		case hash != bh:
			return &UsageError{Msg: fmt.Sprintf("%s: the URL's bodySHA256 is %s, but the SHA-256 of --body-file is %s", cmd, hash, bh)}
		}
	}
	canonical := twilio.Canonical(u, params)
	signature := twilio.Sign(tok.value, canonical)
	if !verbose {
		fmt.Fprintln(stdout, signature)
		return nil
	}
	fmt.Fprintf(stdout, "URL:           %s\n", u)
	if body != nil {
		fmt.Fprintf(stdout, "body SHA-256:  %s\n", twilio.BodyHash(body))
	}
	fmt.Fprintf(stdout, "signed string: %s\n", strconv.Quote(canonical))
	fmt.Fprintf(stdout, "signature:     %s\n", signature)
	return nil
}

// namedToken is an auth token and how the user gave it: a label safe to
// print ("$TWILIO_AUTH_TOKEN", "--token #2"), never the token.
type namedToken struct{ label, value string }

// tokenFlag collects --token and --token-env in the order given.
type tokenFlag struct {
	list   *[]namedToken
	getenv func(string) string
	env    bool
	n      int
	// err is the first problem, reported after parsing: the flag package
	// quotes the value of a flag whose Set fails, and a token given to
	// --token-env by mistake must not be printed.
	err *error
}

func (f *tokenFlag) String() string { return "" }

// envName is a conventional environment variable name: a token (lower-case
// hex for Twilio's) never looks like one, so only such a name is printed.
var envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// Set never fails and never echoes a token (see err).
func (f *tokenFlag) Set(s string) error {
	f.n++
	fail := func(msg string) error {
		if *f.err == nil {
			*f.err = errors.New(msg)
		}
		return nil
	}
	if f.env {
		switch {
		case s == "":
			return fail("--token-env wants the name of an environment variable")
		case !envName.MatchString(s):
			return fail("--token-env wants the NAME of an environment variable (upper case, digits, _), not a token: the value given is not printed")
		}
		v := f.getenv(s)
		if v == "" {
			return fail(fmt.Sprintf("--token-env: $%s is empty or unset", s))
		}
		*f.list = append(*f.list, namedToken{label: "$" + s, value: v})
		return nil
	}
	if s == "" {
		return fail("--token: empty token")
	}
	label := "--token"
	if f.n > 1 {
		label = fmt.Sprintf("--token #%d", f.n)
	}
	*f.list = append(*f.list, namedToken{label: label, value: s})
	return nil
}

// paramFlag collects --param NAME=VALUE.
type paramFlag struct{ list *[]twilio.Param }

func (f paramFlag) String() string { return "" }

func (f paramFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return errors.New("want NAME=VALUE")
	}
	*f.list = append(*f.list, twilio.Param{Name: name, Value: value})
	return nil
}

// twilioVerify checks sig with the same Verifier the webhook uses and, when
// it is not valid, prints what was signed for each URL variant, any
// near-miss that the signature does match, and hints.
func twilioVerify(w io.Writer, rawURL string, params []twilio.Param, body []byte, sig string, tokens []namedToken, verbose bool) error {
	values := make([]string, len(tokens))
	for i, t := range tokens {
		values[i] = t.value
	}
	v, err := twilio.NewVerifier(values)
	if err != nil {
		return err
	}
	i, verr := v.Verify(&twilio.Request{URL: rawURL, Params: params, Body: body, Signature: sig})
	signed := params
	if body != nil {
		signed = nil
	}
	variants := twilio.URLVariants(rawURL)
	if verr == nil || errors.Is(verr, twilio.ErrBodyHashMismatch) {
		// The URL variant that matched (and, with ErrBodyHashMismatch, for
		// which Verify names no token, the token), recomputed for the report.
		find := func(k int) (string, bool) {
			for _, u := range variants {
				if twilio.Sign(tokens[k].value, twilio.Canonical(u, signed)) == sig {
					return u, true
				}
			}
			return "", false
		}
		k := i
		if k < 0 {
			for k = 0; k < len(tokens)-1; k++ {
				if _, ok := find(k); ok {
					break
				}
			}
		}
		which, _ := find(k)
		tok := tokens[k]
		if verr == nil {
			fmt.Fprintf(w, "valid: signed with the token from %s over %s\n", tok.label, variantName(rawURL, which))
			if verbose {
				fmt.Fprintf(w, "signed string: %s\n", strconv.Quote(twilio.Canonical(which, signed)))
				if body != nil {
					fmt.Fprintf(w, "body SHA-256:  %s (matches the URL's bodySHA256)\n", twilio.BodyHash(body))
				}
			}
			return nil
		}
		hash, _ := twilio.BodySHA256(rawURL)
		fmt.Fprintf(w, "NOT VALID: the signature over the URL is valid (token from %s, %s), but the body does not match the URL's bodySHA256.\n\n", tok.label, variantName(rawURL, which))
		fmt.Fprintf(w, "  bodySHA256 in the URL: %s\n", hash)
		fmt.Fprintf(w, "  SHA-256 of the body:   %s (%d bytes)\n\n", twilio.BodyHash(body), len(body))
		fmt.Fprintln(w, "The body is not the bytes Twilio sent: it was changed after Twilio hashed it (JSON re-serialised, whitespace,\n"+
			"line endings or charset changed, or a body re-built from a parsed object). Check the raw bytes as received.")
		if hash != strings.ToLower(hash) && strings.ToLower(hash) == twilio.BodyHash(body) {
			fmt.Fprintln(w, "The URL's bodySHA256 is upper-case hex; Twilio writes, and its libraries compare, lower-case.")
		}
		for _, eol := range []string{"\r\n", "\n"} {
			if trimmed, ok := bytes.CutSuffix(body, []byte(eol)); ok && twilio.BodyHash(trimmed) == hash {
				fmt.Fprintf(w, "It matches without the body's final %s: the file gained a line ending (an editor, or echo instead of printf).\n", strconv.Quote(eol))
				break
			}
		}
		return errSignatureNotValid
	}
	reportMismatch(w, rawURL, signed, body != nil, sig, tokens, verr)
	return errSignatureNotValid
}

// reportMismatch explains a signature that no token produces: the
// parameters as signed, each URL variant's signed string and the
// signature each token gives it, any near miss the signature does match,
// and what to check.
func reportMismatch(w io.Writer, rawURL string, signed []twilio.Param, isJSON bool, sig string, tokens []namedToken, verr error) {
	switch {
	case errors.Is(verr, twilio.ErrMalformedSignature):
		fmt.Fprintf(w, "NOT VALID: the signature %s is not the base64 of an HMAC-SHA1 (28 characters ending in \"=\").\n", strconv.Quote(sig))
		if t := strings.Trim(sig, " \t\r\n\"'"); t != sig {
			fmt.Fprintln(w, "It has surrounding spaces or quotes: pass the header value alone.")
		}
	default:
		fmt.Fprintf(w, "NOT VALID: the signature %s matches no token over any URL variant.\n", sig)
		for _, p := range twilioProbes(rawURL, signed) {
			for _, u := range twilio.URLVariants(p.url) {
				c := twilio.Canonical(u, p.params)
				for _, t := range tokens {
					if twilio.Sign(t.value, c) == sig {
						fmt.Fprintf(w, "\nIt DOES match (token from %s) if %s\n  signed string: %s\n", t.label, p.what, strconv.Quote(c))
					}
				}
			}
		}
	}
	fmt.Fprintln(w)
	if !isJSON {
		if len(signed) == 0 {
			fmt.Fprintln(w, "No parameters: the signature covers the URL alone.")
		} else {
			fmt.Fprintln(w, "Parameters, in the order they are signed (name, then value):")
			distinct := twilio.SignedParams(signed)
			for _, p := range distinct {
				fmt.Fprintf(w, "  %s = %s\n", strconv.Quote(p.Name), strconv.Quote(p.Value))
			}
			if n := len(signed) - len(distinct); n > 0 {
				fmt.Fprintf(w, "  (%d repeated name=value pair(s) given: each distinct pair is signed once)\n", n)
			}
		}
	} else {
		fmt.Fprintln(w, "A JSON request (the URL carries bodySHA256): the signature covers the URL alone.")
	}
	for _, u := range twilio.URLVariants(rawURL) {
		fmt.Fprintf(w, "\n%s:\n", capitalize(variantName(rawURL, u)))
		c := twilio.Canonical(u, signed)
		fmt.Fprintf(w, "  signed string: %s\n", strconv.Quote(c))
		for _, t := range tokens {
			fmt.Fprintf(w, "  signature:     %s  (token from %s)\n", twilio.Sign(t.value, c), t.label)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, twilioHints(rawURL, signed, isJSON))
}

// variantName says how a URL variant differs from the URL as given.
func variantName(rawURL, u string) string {
	switch {
	case u == rawURL:
		return "the URL as given"
	case len(u) > len(rawURL):
		return "the URL with the default port added"
	}
	return "the URL without its port"
}

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// twilioProbe is a near miss: a change a proxy, a framework or a typo
// commonly makes to the URL or the parameters.
type twilioProbe struct {
	what   string
	url    string
	params []twilio.Param
}

// twilioProbes lists the near misses worth trying for a request. They are
// never accepted — only reported, to show where the URL or parameters
// differ from what Twilio signed.
func twilioProbes(rawURL string, params []twilio.Param) []twilioProbe {
	var ps []twilioProbe
	add := func(what, u string, p []twilio.Param) {
		if u != rawURL || !slices.Equal(p, params) {
			ps = append(ps, twilioProbe{what, u, p})
		}
	}
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil
	}
	switch strings.ToLower(scheme) {
	case "https":
		add("the URL starts with http:// instead of https://", "http://"+rest, params)
	case "http":
		add("the URL starts with https:// instead of http://", "https://"+rest, params)
	}
	pathEnd := len(rawURL)
	if i := strings.IndexAny(rawURL, "?#"); i >= 0 {
		pathEnd = i
	}
	if strings.HasSuffix(rawURL[:pathEnd], "/") {
		add("the path has no trailing slash", rawURL[:pathEnd-1]+rawURL[pathEnd:], params)
	} else {
		add("the path ends with a slash", rawURL[:pathEnd]+"/"+rawURL[pathEnd:], params)
	}
	authEnd := len(scheme) + 3 + len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authEnd = len(scheme) + 3 + i
	}
	if lower := strings.ToLower(rawURL[:authEnd]) + rawURL[authEnd:]; lower != rawURL {
		add("the scheme and host are lower-case", lower, params)
	}
	if q := strings.IndexByte(rawURL, '?'); q >= 0 {
		query, frag, _ := strings.Cut(rawURL[q+1:], "#")
		if frag != "" {
			frag = "#" + frag
		}
		add("the URL has no query string", rawURL[:q]+frag, params)
		pairs := strings.Split(query, "&")
		if sorted := slices.Sorted(slices.Values(pairs)); !slices.Equal(sorted, pairs) {
			add("the query parameters are in alphabetical order", rawURL[:q+1]+strings.Join(sorted, "&")+frag, params)
		}
		reenc := make([]string, len(pairs))
		for i, p := range pairs {
			k, v, hasEq := strings.Cut(p, "=")
			uk, err1 := url.QueryUnescape(k)
			uv, err2 := url.QueryUnescape(v)
			if err1 != nil || err2 != nil {
				reenc = nil
				break
			}
			reenc[i] = url.QueryEscape(uk)
			if hasEq {
				reenc[i] += "=" + url.QueryEscape(uv)
			}
		}
		if reenc != nil {
			add("the query string is re-encoded (e.g. ' as %27, a space as +)", rawURL[:q+1]+strings.Join(reenc, "&")+frag, params)
		}
		swapped := strings.NewReplacer("'", "%27", "%27", "'").Replace(query)
		add("each ' in the query is %27, and each %27 is '", rawURL[:q+1]+swapped+frag, params)
		if len(params) > 0 {
			inQuery := map[twilio.Param]bool{}
			if vals, err := url.ParseQuery(query); err == nil {
				for k, vs := range vals {
					for _, v := range vs {
						inQuery[twilio.Param{Name: k, Value: v}] = true
					}
				}
			}
			var form []twilio.Param
			for _, p := range params {
				if !inQuery[p] {
					form = append(form, p)
				}
			}
			if len(form) < len(params) {
				add("the parameters that are also in the query string are left out (read the POST body only, not the query)", rawURL, form)
			}
		}
	}
	if len(params) > 0 {
		add("no parameters are signed (the URL alone, as for a GET)", rawURL, nil)
		trimmed := make([]twilio.Param, len(params))
		for i, p := range params {
			trimmed[i] = twilio.Param{Name: p.Name, Value: strings.TrimSpace(p.Value)}
		}
		add("the parameter values are trimmed of spaces", rawURL, trimmed)
	}
	return ps
}

// twilioHints explains what to check, with the hints this URL calls for
// first.
func twilioHints(rawURL string, params []twilio.Param, isJSON bool) string {
	var b strings.Builder
	b.WriteString("What to check:\n")
	u, err := url.Parse(rawURL)
	if err == nil {
		if strings.EqualFold(u.Scheme, "http") {
			b.WriteString("  - The URL is http://. Twilio calls the https:// URL it was configured with; behind a proxy that terminates\n" +
				"    TLS your app sees http://. Use the public URL.\n")
		}
		if h := u.Hostname(); internalHost(h) {
			fmt.Fprintf(&b, "  - The host %s looks internal. Twilio signs the public host it was configured with, not the address a\n"+
				"    load balancer or ingress forwards to.\n", h)
		}
		if p := u.Port(); p != "" && p != "443" && p != "80" {
			fmt.Fprintf(&b, "  - The URL has port %s. Unless Twilio was configured with that port, it is the port of a listener behind a\n"+
				"    proxy: the URL without it was tried too.\n", p)
		}
	}
	if !isJSON && len(params) == 0 {
		b.WriteString("  - No parameters were given. A POST is signed over its URL and every form parameter: pass them with --param\n" +
			"    or --form-file (a GET carries them in the URL's query string).\n")
	}
	b.WriteString("  - The URL must be exactly the one Twilio requested: scheme, host, port, path (with any prefix a proxy strips)\n" +
		"    and query string, byte for byte (not re-encoded, not re-ordered).\n")
	if !isJSON {
		b.WriteString("  - The parameters must be every POST parameter Twilio sent (it adds new ones), values untouched (not trimmed),\n" +
			"    and none from the query string.\n")
	}
	b.WriteString("  - The token must be the auth token of the account or sub-account that owns the number; a secondary token\n" +
		"    signs nothing until it is promoted.\n")
	return b.String()
}

// internalHost reports whether a host name is plainly not public: loopback,
// private or link-local addresses, and names used inside clusters.
func internalHost(h string) bool {
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()
	}
	h = strings.ToLower(h)
	if h == "localhost" || !strings.Contains(h, ".") {
		return true
	}
	for _, suffix := range []string{".localhost", ".local", ".internal", ".lan", ".svc", ".cluster.local", ".home.arpa"} {
		if strings.HasSuffix(h, suffix) {
			return true
		}
	}
	return false
}
