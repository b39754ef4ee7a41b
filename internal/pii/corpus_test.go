package pii

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The labelled corpora (testdata/pii/README.md describes them):
// corpus.jsonl is what the rules were tuned on; heldout-round1.jsonl was
// written after a first round of tuning, measured once, and then showed
// three misses that were fixed by general rules; heldout.jsonl was written
// after the last rule change and was never used for tuning. heldout2.jsonl
// (internal/pii/testdata/README.md) was written before the rules for
// context after an SSN, answers on the line after a birth-date question
// and national ids were.
const (
	corpusFile   = "../../testdata/pii/corpus.jsonl"
	round1File   = "../../testdata/pii/heldout-round1.jsonl"
	heldoutFile  = "../../testdata/pii/heldout.jsonl"
	heldout2File = "testdata/heldout2.jsonl"
)

// span is a labelled finding: its text, located in the line.
type span struct {
	Kind Kind   `json:"kind"`
	Text string `json:"text"`
}

type labelledLine struct {
	Text  string `json:"text"`
	Spans []span `json:"spans"`
}

// readCorpus reads a corpus and turns each labelled span into a Finding: a
// span's text is found at its first occurrence after the previous span.
func readCorpus(tb testing.TB, name string) (texts []string, want [][]Finding) {
	tb.Helper()
	f, err := os.Open(filepath.FromSlash(name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var l labelledLine
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			tb.Fatalf("%s:%d: %v", name, n, err)
		}
		var fs []Finding
		from := 0
		for _, s := range l.Spans {
			switch s.Kind {
			case Phone, Email, SSN, Card, DOB:
			default:
				tb.Fatalf("%s:%d: unknown kind %q", name, n, s.Kind)
			}
			i := strings.Index(l.Text[from:], s.Text)
			if s.Text == "" || i < 0 {
				tb.Fatalf("%s:%d: span %q not found after offset %d", name, n, s.Text, from)
			}
			fs = append(fs, Finding{Kind: s.Kind, Start: from + i, End: from + i + len(s.Text)})
			from += i + len(s.Text)
		}
		texts = append(texts, l.Text)
		want = append(want, fs)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return texts, want
}

// score counts, per kind, the labelled spans, the findings, and the
// findings that match a label: exactly (same kind, same start and end) or
// by overlap (same kind, overlapping; each label matched once).
type score struct {
	labels, found, exact, overlap int
}

func (s score) precision(overlap bool) float64 { return ratio(s.matched(overlap), s.found) }
func (s score) recall(overlap bool) float64    { return ratio(s.matched(overlap), s.labels) }
func (s score) matched(overlap bool) int {
	if overlap {
		return s.overlap
	}
	return s.exact
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

var kinds = []Kind{Phone, Email, SSN, Card, DOB}

// evaluate runs Find on every line and scores it; misses lists the
// differences, for the test log. With stream, the lines are read in order
// by one Scanner, as `voicegate redact` reads a file: a line is read with
// the one before it as context.
func evaluate(texts []string, want [][]Finding, stream bool) (scores map[Kind]*score, misses []string) {
	scores = map[Kind]*score{}
	for _, k := range kinds {
		scores[k] = &score{}
	}
	var z Scanner
	for i, text := range texts {
		var got []Finding
		if stream {
			got = z.Find(text)
		} else {
			got = Find(text)
		}
		for _, w := range want[i] {
			scores[w.Kind].labels++
		}
		used := make([]bool, len(want[i]))
		for _, g := range got {
			s := scores[g.Kind]
			s.found++
			exact, overlap := false, false
			for j, w := range want[i] {
				if w.Kind != g.Kind || used[j] || w.End <= g.Start || g.End <= w.Start {
					continue
				}
				used[j], overlap = true, true
				exact = w.Start == g.Start && w.End == g.End
				break
			}
			if overlap {
				s.overlap++
			}
			if exact {
				s.exact++
			} else {
				misses = append(misses, fmt.Sprintf("line %d: found %s %q (exact label: %v)\n\t%s", i+1, g.Kind, text[g.Start:g.End], overlap, text))
			}
		}
		for j, w := range want[i] {
			if !used[j] {
				misses = append(misses, fmt.Sprintf("line %d: missed %s %q\n\t%s", i+1, w.Kind, text[w.Start:w.End], text))
			}
		}
	}
	return scores, misses
}

// table formats scores as the README shows them.
func table(scores map[Kind]*score) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| kind  | labels | found | precision | recall | precision (overlap) | recall (overlap) |\n")
	fmt.Fprintf(&b, "|-------|-------:|------:|----------:|-------:|--------------------:|-----------------:|\n")
	var all score
	for _, k := range kinds {
		s := scores[k]
		all.labels += s.labels
		all.found += s.found
		all.exact += s.exact
		all.overlap += s.overlap
		fmt.Fprintf(&b, "| %-5s | %6d | %5d | %9.3f | %6.3f | %19.3f | %16.3f |\n", k, s.labels, s.found,
			s.precision(false), s.recall(false), s.precision(true), s.recall(true))
	}
	fmt.Fprintf(&b, "| all   | %6d | %5d | %9.3f | %6.3f | %19.3f | %16.3f |\n", all.labels, all.found,
		all.precision(false), all.recall(false), all.precision(true), all.recall(true))
	return b.String()
}

// overall sums the scores of every kind.
func overall(scores map[Kind]*score) score {
	var all score
	for _, s := range scores {
		all.labels += s.labels
		all.found += s.found
		all.exact += s.exact
		all.overlap += s.overlap
	}
	return all
}

// modes are the two ways a corpus is read: each line alone (Find, as a
// log line or a JSON value is), and the lines in order through a Scanner
// (a file read line by line, a transcript's turns).
var modes = []struct {
	name   string
	stream bool
}{{"each line alone", false}, {"lines in order", true}}

// measure scores a corpus in both modes, logs the tables and the misses,
// and checks the bounds — minRecall per kind, minPrecision overall — in
// both modes, or with streamOnly only on the lines in order.
func measure(t *testing.T, name string, minLines int, minRecall map[Kind]float64, minPrecision float64, streamOnly bool) {
	texts, want := readCorpus(t, name)
	if len(texts) < minLines {
		t.Errorf("%s has %d lines, want at least %d", name, len(texts), minLines)
	}
	for _, m := range modes {
		scores, misses := evaluate(texts, want, m.stream)
		t.Logf("%s, %d lines, %s:\n%s", name, len(texts), m.name, table(scores))
		for _, miss := range misses {
			t.Log(miss)
		}
		if streamOnly && !m.stream {
			continue
		}
		for _, k := range kinds {
			if r := scores[k].recall(false); r < minRecall[k] {
				t.Errorf("%s: %s recall %.3f, want at least %.2f", m.name, k, r, minRecall[k])
			}
		}
		if p := overall(scores).precision(false); p < minPrecision {
			t.Errorf("%s: overall precision %.3f, want at least %.2f", m.name, p, minPrecision)
		}
	}
}

// TestCorpus measures precision and recall per kind on the tuning corpus,
// matching findings to labels exactly (same kind, same bytes), and fails
// below the bounds of issue 9.
func TestCorpus(t *testing.T) {
	minRecall := map[Kind]float64{Card: 0.98, SSN: 0.98, Phone: 0.95, Email: 0.95, DOB: 0.90}
	measure(t, corpusFile, 400, minRecall, 0.95, false)
}

// heldoutRecall is what the held-out corpora must reach: recall 0.90 (0.80
// for dates of birth), with precision 0.90 overall, matching exactly.
var heldoutRecall = map[Kind]float64{Card: 0.90, SSN: 0.90, Phone: 0.90, Email: 0.90, DOB: 0.80}

// TestHeldout measures the same on the held-out corpora, with looser
// bounds.
func TestHeldout(t *testing.T) {
	for _, name := range []string{heldoutFile, round1File} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			measure(t, name, 100, heldoutRecall, 0.90, false)
		})
	}
}

// TestHeldout2 measures heldout2.jsonl, written before the rules for the
// context after an SSN, answers on the line after a question and national
// ids (testdata/README.md). It is a conversation: 14 of its 128 labels
// need the line before, so only its lines read in order are held to the
// bounds.
func TestHeldout2(t *testing.T) {
	measure(t, heldout2File, 150, heldoutRecall, 0.90, true)
}
