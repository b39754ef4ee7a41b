package twilio

import (
	"encoding/xml"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"
)

// TwiML is built with encoding/xml from typed values: every value is
// escaped by the encoder, never concatenated into markup.

type twimlResponse struct {
	XMLName xml.Name `xml:"Response"`
	Verbs   []any
}

type sayVerb struct {
	XMLName  xml.Name `xml:"Say"`
	Voice    string   `xml:"voice,attr,omitempty"`
	Language string   `xml:"language,attr,omitempty"`
	Text     string   `xml:",chardata"`
}

type hangupVerb struct {
	XMLName xml.Name `xml:"Hangup"`
}

type dialVerb struct {
	XMLName xml.Name `xml:"Dial"`
	Sip     sipNoun  `xml:"Sip"`
}

type sipNoun struct {
	URI string `xml:",chardata"`
}

type connectVerb struct {
	XMLName xml.Name   `xml:"Connect"`
	Stream  streamNoun `xml:"Stream"`
}

type streamNoun struct {
	URL        string      `xml:"url,attr"`
	Parameters []parameter `xml:"Parameter"`
}

type parameter struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// hangUp is the answer when nothing else can be rendered.
var hangUp = []byte(xml.Header + "<Response><Hangup></Hangup></Response>")

// render encodes a TwiML response.
func render(verbs ...any) []byte {
	b, err := xml.Marshal(twimlResponse{Verbs: verbs})
	if err != nil {
		// Only the typed values above are marshalled: this cannot fail,
		// but a caller still never hears silence without an end.
		return hangUp
	}
	return append([]byte(xml.Header), b...)
}

// sayAndHangUp speaks msg and ends the call.
func sayAndHangUp(msg, voice, language string) []byte {
	return render(sayVerb{Voice: voice, Language: language, Text: msg}, hangupVerb{})
}

// callValues are what placeholders stand for in one call.
type callValues struct {
	CallSid, AccountSid, From, To string
}

func (v callValues) expand(s string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	return strings.NewReplacer("{CallSid}", v.CallSid, "{AccountSid}", v.AccountSid, "{From}", v.From, "{To}", v.To).Replace(s)
}

// maxHeaderValue caps a SIP header's value (a {From} of a SIP caller can
// be long), and maxSipURI the whole URI: Twilio refuses one past 1,024
// characters (error 21227), so headers that do not fit are left out.
const (
	maxHeaderValue = 128
	maxSipURI      = 1000
)

// dialSip connects the call to a SIP URI; the headers go in the URI's
// header part (sip:user@host?X-Name=value&...), each value percent-escaped,
// as Twilio reads custom SIP headers.
func dialSip(a *SipAnswer, v callValues) []byte {
	uri := a.URI
	names := make([]string, 0, len(a.Headers))
	for n := range a.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	sep := "?"
	for _, n := range names {
		val := v.expand(a.Headers[n])
		if len(val) > maxHeaderValue {
			cut := maxHeaderValue
			for cut > 0 && !utf8.RuneStart(val[cut]) {
				cut-- // not in the middle of a character
			}
			val = val[:cut]
		}
		part := sep + n + "=" + strings.ReplaceAll(url.QueryEscape(val), "+", "%20")
		if len(uri)+len(part) > maxSipURI {
			continue
		}
		uri += part
		sep = "&"
	}
	return render(dialVerb{Sip: sipNoun{URI: uri}})
}

// connectStream connects the call's audio to a WebSocket.
func connectStream(a *StreamAnswer, v callValues) []byte {
	s := streamNoun{URL: a.URL}
	names := make([]string, 0, len(a.Parameters))
	for n := range a.Parameters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s.Parameters = append(s.Parameters, parameter{Name: n, Value: v.expand(a.Parameters[n])})
	}
	return render(connectVerb{Stream: s})
}

// Answer read back: what simulate and the tests check an answer with.

// TwiML is a TwiML answer as read back: its verbs, as far as voicegate
// writes them.
type TwiML struct {
	XMLName xml.Name  `xml:"Response"`
	Say     []string  `xml:"Say"`
	Hangup  *struct{} `xml:"Hangup"`
	Dial    *struct {
		Sip string `xml:"Sip"`
	} `xml:"Dial"`
	Connect *struct {
		Stream struct {
			URL    string      `xml:"url,attr"`
			Params []parameter `xml:"Parameter"`
		} `xml:"Stream"`
	} `xml:"Connect"`
}

// ReadTwiML decodes an answer; an error says it is not TwiML (quoting at
// most its first 80 bytes).
func ReadTwiML(b []byte) (TwiML, error) {
	var d TwiML
	if err := xml.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("the answer is not TwiML: %.80s", b)
	}
	return d, nil
}

// Param returns the value of the stream parameter name ("" if none).
func (t TwiML) Param(name string) string {
	if t.Connect == nil {
		return ""
	}
	for _, p := range t.Connect.Stream.Params {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}
