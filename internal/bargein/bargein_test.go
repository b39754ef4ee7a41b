package bargein

import (
	"regexp"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"os"
	"strings"
	"testing"
)

// TestPublicCorpus: the engine scores precision = recall = 1 on the public
// corpus, every case exactly right.
func TestPublicCorpus(t *testing.T) {
	f, err := os.Open("../../testdata/bargein/public.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out strings.Builder
	sc, err := DefaultPolicy().Eval(f, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d cases, %d exact; precision %.3f recall %.3f (TP %d FP %d FN %d)", sc.Cases, sc.ExactCases, sc.Precision(), sc.Recall(), sc.TruePos, sc.FalsePos, sc.FalseNeg)
	if sc.Precision() != 1 || sc.Recall() != 1 || sc.ExactCases != sc.Cases || sc.Cases < 100 {
		t.Fatalf("precision %.3f recall %.3f, %d of %d cases exact", sc.Precision(), sc.Recall(), sc.ExactCases, sc.Cases)
	}
}

func TestWords(t *testing.T) {
	for in, want := range map[string]string{
		"Wait—I need to":         "wait i need to",
		"That’s wrong...":        "that's wrong",
		"uh-huh, mm-hmm":         "uh huh mm hmm",
		"¿Perdón? [cough] okay!": "perdón \u2400noise okay",
		"'quoted' rock'n'roll":   "quoted rock'n'roll",
	} {
		if got := strings.Join(Words(in), " "); got != want {
			t.Errorf("Words(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecideRules(t *testing.T) {
	p := DefaultPolicy()
	var s State
	start := func(ts int64) {
		p.Decide(&s, Event{Type: "speech-update", Role: "assistant", Status: "started", Timestamp: ts, TimeKnown: true})
	}
	user := func(text string, ts int64) Decision {
		return p.Decide(&s, Event{Type: "transcript", Role: "user", TranscriptType: "partial", Transcript: text, Timestamp: ts, TimeKnown: true})
	}
	if d := user("wait wait", 10); d.Interrupt {
		t.Fatal("no assistant speaking: no decision")
	}
	start(100)
	for text, want := range map[string]bool{"uh-huh okay yeah": false, "[noise] um": false, "Friday": false, "stopwatch waiter nothing": true} {
		s.Decided = false
		if d := user(text, 150); d.Interrupt != want {
			t.Errorf("%q: %+v, want interrupt=%v", text, d, want)
		}
	}
	s.Decided = false
	if d := user("hold on", 50); d.Interrupt {
		t.Fatal("a stale partial decided")
	}
	if d := user("hold on", 150); !d.Interrupt || d.Reason() != "interruption phrase: hold on" {
		t.Fatalf("%+v", d)
	}
	if d := user("hold on please", 160); d.Interrupt {
		t.Fatal("a second interrupt in one turn")
	}
	start(200)
	if d := user("no", 210); !d.Interrupt {
		t.Fatal("a new turn opens a new window")
	}
}

// FuzzEval: no corpus line makes the engine panic, and every event gets a
// decision line.
func FuzzEval(f *testing.F) {
	f.Add(`{"id":"c","events":[{"message":{"type":"speech-update","role":"assistant","status":"started","timestamp":1},"expect":"none"},{"message":{"type":"transcript","role":"user","transcript":"wait [noise]—that’s wrong","timestamp":"1970-01-01T00:00:00.002"}}]}`)
	f.Add(`{"id":"x","events":[{"message":{"timestamp":{}}}]}`)
	f.Fuzz(func(t *testing.T, line string) {
		var out strings.Builder
		sc, err := DefaultPolicy().Eval(strings.NewReader(line), &out)
		if err == nil && strings.Count(out.String(), "\n") != sc.Events {
			t.Fatalf("%d events, %d decision lines", sc.Events, strings.Count(out.String(), "\n"))
		}
	})
}

// refWords is the policy's normalisation written plainly (regular
// expression, string rewriting): Words, which avoids copying, must agree.
func refWords(s string) []string {
	s = norm.NFC.String(s)
	s = strings.NewReplacer("’", "'", "ʼ", "'").Replace(s)
	s = regexp.MustCompile(`\[[^\[\]]*\]`).ReplaceAllString(s, " "+noiseWord+" ")
	s = strings.ToLower(s)
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == '\'' && i > 0 && i+1 < len(rs) && isAlnum(rs[i-1]) && isAlnum(rs[i+1]):
			b.WriteRune(r)
		case r == '\u2400':
			b.WriteRune(r)
		case isPunct(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return strings.Fields(b.String())
}

// FuzzWords: Words agrees with the plain rendering of the policy's
// normalisation.
func FuzzWords(f *testing.F) {
	for _, s := range []string{"Wait—I need to", "That’s wrong...", "uh-huh, mm-hmm", "¿Perdón? [cough] okay!", "'quoted' rock'n'roll",
		"a'[x]n", "[a [b] c]", "ÉCOLE d’été", "perdo\u0301n", "x' y 'z", "İstanbul"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, '\u2400') {
			return
		}
		got, want := strings.Join(Words(s), "|"), strings.Join(refWords(s), "|")
		if got != want {
			t.Fatalf("Words(%q) = %q, want %q", s, got, want)
		}
	})
}

// TestDecideAllocs: deciding on a transcript allocates nothing.
func TestDecideAllocs(t *testing.T) {
	p := DefaultPolicy()
	s := State{Speaking: true, WindowStart: 1, WindowKnown: true}
	e := Event{Type: "transcript", Role: "user", TranscriptType: "partial", Transcript: "Okay, but I think the date of birth is wrong", Timestamp: 2, TimeKnown: true}
	if n := testing.AllocsPerRun(100, func() {
		s.Decided = false
		p.Decide(&s, e)
	}); n != 0 {
		t.Fatalf("%v allocations per decision", n)
	}
}

func BenchmarkDecide(b *testing.B) {
	p := DefaultPolicy()
	s := State{Speaking: true, WindowStart: 1, WindowKnown: true}
	e := Event{Type: "transcript", Role: "user", TranscriptType: "partial", Transcript: "Okay, but I think the date of birth is wrong", Timestamp: 2, TimeKnown: true}
	b.ReportAllocs()
	for b.Loop() {
		s.Decided = false
		p.Decide(&s, e)
	}
}

// TestPolicyRules: each rule of bargein-policy.md, one row per reading.
// Every row starts a fresh call whose assistant started at t=1000 (unless
// the row's events say otherwise) and checks the last event's decision.
func TestPolicyRules(t *testing.T) {
	type ev struct {
		typ, role, status, tt, text string
		ts                          int64 // 0: missing
	}
	started := ev{typ: "speech-update", role: "assistant", status: "started", ts: 1000}
	stopped := ev{typ: "speech-update", role: "assistant", status: "stopped", ts: 1500}
	user := func(text string, ts int64) ev {
		return ev{typ: "transcript", role: "user", tt: "partial", text: text, ts: ts}
	}
	for _, c := range []struct {
		rule   string
		events []ev
		want   Code
	}{
		{"1: nothing before the assistant speaks", []ev{user("wait a second", 900)}, CodeNotSpeaking},
		{"1: at the window's timestamp", []ev{started, user("stop", 1000)}, CodePhrase},
		{"1: only user transcripts", []ev{started, {typ: "transcript", role: "assistant", tt: "partial", text: "stop now", ts: 1100}}, CodeIgnored},
		{"2: spoken before the window (stale)", []ev{started, user("stop", 999)}, CodeStale},
		{"2: arrives after the assistant stopped", []ev{started, stopped, user("stop", 1200)}, CodeNotSpeaking},
		{"3: a phrase anywhere, as whole words", []ev{started, user("I think, hold on", 1100)}, CodePhrase},
		{"3: no phrase inside a word", []ev{started, user("stopwatch", 1100)}, CodeTooFew},
		{"4: backchannels and fillers only", []ev{started, user("uh-huh, okay yeah mm-hmm [cough]", 1100)}, CodeBackchannel},
		{"5: two content words", []ev{started, user("my birthday", 1100)}, CodeContent},
		{"5: one content word", []ev{started, user("okay Tuesday", 1100)}, CodeTooFew},
		{"6: one decision per window", []ev{started, user("stop", 1100), user("stop it now", 1200)}, CodeRepeat},
		{"6: a new window decides again", []ev{started, user("stop", 1100), {typ: "speech-update", role: "assistant", status: "started", ts: 1300}, user("no", 1400)}, CodePhrase},
		{"6: user-interrupted does not open the rule", []ev{started, {typ: "user-interrupted"}, user("wait", 1100)}, CodePhrase},
		{"7: a final counts like a partial", []ev{started, {typ: FinalType, role: "user", text: "no thanks", ts: 1100}}, CodePhrase},
		{"timestamps: missing on the transcript", []ev{started, user("stop", 0)}, CodeNoTimestamp},
		{"timestamps: missing on the window", []ev{{typ: "speech-update", role: "assistant", status: "started"}, user("stop", 1100)}, CodeNoTimestamp},
		{"user speech-update: voice activity only", []ev{started, {typ: "speech-update", role: "user", status: "started", ts: 1100}}, CodeIgnored},
		{"accents matter", []ev{started, user("perdon", 1100)}, CodeTooFew},
		{"the longest phrase first", []ev{started, user("that is wrong", 1100)}, CodePhrase},
	} {
		t.Run(c.rule, func(t *testing.T) {
			p := DefaultPolicy()
			var s State
			var d Decision
			for _, e := range c.events {
				d = p.Decide(&s, Event{Type: e.typ, Role: e.role, Status: e.status, TranscriptType: e.tt, Transcript: e.text, Timestamp: e.ts, TimeKnown: e.ts != 0})
			}
			if d.Code != c.want || d.Interrupt != (c.want == CodePhrase || c.want == CodeContent) {
				t.Fatalf("decision %+v (%s), want %s", d, d.Reason(), c.want)
			}
		})
	}
}
