package library_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/knowledge/library"
	"github.com/voicegate/voicegate/internal/knowledge/library/librarytest"
)

var ctx = context.Background()

const refunds = `# Billing

## Refunds

Refunds for cancelled appointments are paid back to the card used within five working days.

## Parking

The car park behind the clinic is free for patients; the Zanzibar lot is for staff.
`

const hours = `Opening hours

The clinic opens at 8:00 on weekdays and closes at 18:00. On Saturdays the café is open until noon.
`

// TestStoreSuite runs the library's promises on SQLite and PostgreSQL.
func TestStoreSuite(t *testing.T) {
	for _, b := range librarytest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Run("AddSearchListRemove", func(t *testing.T) {
				p := b.Open(t, nil)
				l := p.Library
				a, err := l.Add(ctx, "handbook", "en", "billing.md", []byte(refunds), library.Markdown)
				if err != nil || a.Passages != 2 || a.Replaced {
					t.Fatalf("add: %+v %v", a, err)
				}
				if _, err := l.Add(ctx, "handbook", "en", "hours.txt", []byte(hours), library.Text); err != nil {
					t.Fatal(err)
				}
				// Another base's document is never found from this one.
				if _, err := l.Add(ctx, "other", "en", "billing.md", []byte("Refunds of cancelled appointments: never."), library.Text); err != nil {
					t.Fatal(err)
				}
				res, err := l.Search(ctx, "handbook", "en", "I cancelled my appointment, when do I get a refund?", 3)
				if err != nil || len(res) == 0 {
					t.Fatalf("search: %v %v", res, err)
				}
				top := res[0]
				if !strings.HasPrefix(top.Content, "Billing › Refunds\n") || top.Document != "billing.md" || top.Similarity <= 0 || top.Similarity >= 1 {
					t.Fatalf("top result: %+v", top)
				}
				if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(top.UUID) {
					t.Fatalf("uuid %q", top.UUID)
				}
				for _, r := range res {
					if strings.Contains(r.Content, "never") {
						t.Fatalf("a passage of another base: %+v", r)
					}
				}
				// Accents and stemming: "cafes" finds "café".
				if res, _ := l.Search(ctx, "handbook", "en", "are the cafes open", 1); len(res) != 1 || res[0].Document != "hours.txt" {
					t.Fatalf("cafe: %+v", res)
				}
				// Only stop words or unknown words: nothing.
				for _, q := range []string{"", "and the of it", "xylophone"} {
					if res, err := l.Search(ctx, "handbook", "en", q, 3); err != nil || len(res) != 0 {
						t.Fatalf("%q: %+v %v", q, res, err)
					}
				}
				if res, err := l.Search(ctx, "nobase", "en", "refund", 3); err != nil || len(res) != 0 {
					t.Fatalf("unknown base: %+v %v", res, err)
				}
				list, err := l.List(ctx, "")
				if err != nil || len(list) != 3 {
					t.Fatalf("list: %+v %v", list, err)
				}
				if list[0].Base != "handbook" || list[0].Name != "billing.md" || list[1].Name != "hours.txt" || list[2].Base != "other" {
					t.Fatalf("list order: %+v", list)
				}
				// Replacing a document drops its old passages.
				a, err = l.Add(ctx, "handbook", "en", "billing.md", []byte("## Fees\n\nA missed appointment costs 20 pounds."), library.Markdown)
				if err != nil || !a.Replaced || a.Passages != 1 {
					t.Fatalf("replace: %+v %v", a, err)
				}
				if res, _ := l.Search(ctx, "handbook", "en", "refund card", 3); len(res) != 0 {
					t.Fatalf("old passages still found: %+v", res)
				}
				if res, _ := l.Search(ctx, "handbook", "en", "missed appointments", 3); len(res) != 1 || !strings.Contains(res[0].Content, "20 pounds") {
					t.Fatalf("new passage: %+v", res)
				}
				if ok, err := l.Remove(ctx, "handbook", "billing.md"); !ok || err != nil {
					t.Fatalf("remove: %v %v", ok, err)
				}
				if ok, err := l.Remove(ctx, "handbook", "billing.md"); ok || err != nil {
					t.Fatalf("remove again: %v %v", ok, err)
				}
				if res, _ := l.Search(ctx, "handbook", "en", "missed appointments fees", 3); len(res) != 0 {
					t.Fatalf("removed passages found: %+v", res)
				}
				if list, _ := l.List(ctx, "handbook"); len(list) != 1 || list[0].Name != "hours.txt" {
					t.Fatalf("list after remove: %+v", list)
				}
			})
			t.Run("TermCounts", func(t *testing.T) {
				// The counts BM25 reads follow adds, replacements and
				// removals exactly.
				p := b.Open(t, nil)
				l := p.Library
				for i := range 4 {
					doc := fmt.Sprintf("alpha beta\n\nalpha gamma %d\n\ndelta", i)
					if _, err := l.Add(ctx, "b", "en", fmt.Sprintf("d%d.txt", i), []byte(doc), library.Text); err != nil {
						t.Fatal(err)
					}
				}
				l.Add(ctx, "b", "en", "d0.txt", []byte("alpha"), library.Text) // replaces
				l.Remove(ctx, "b", "d1.txt")
				all, err := p.Store.MatchPassages(ctx, "b", allTerms(t, p), 1000)
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]int{}
				length := 0
				for _, c := range all.Candidates {
					ts := strings.Fields(c.Terms)
					length += len(ts)
					for _, tm := range library.Distinct(ts) {
						want[tm]++
					}
				}
				if all.Passages != len(all.Candidates) || fmt.Sprint(all.DF) != fmt.Sprint(want) {
					t.Fatalf("counts: %d passages, %d candidates; df %v, want %v", all.Passages, len(all.Candidates), all.DF, want)
				}
				if mean := float64(length) / float64(all.Passages); all.MeanTerms < mean-1e-9 || all.MeanTerms > mean+1e-9 {
					t.Fatalf("mean terms %v, want %v", all.MeanTerms, mean)
				}
				for _, d := range []string{"d0.txt", "d2.txt", "d3.txt"} {
					l.Remove(ctx, "b", d)
				}
				if m, _ := p.Store.MatchPassages(ctx, "b", allTerms(t, p), 1000); m.Passages != 0 || len(m.DF) != 0 {
					t.Fatalf("after removing all: %+v", m)
				}
			})
			t.Run("NothingInClear", func(t *testing.T) {
				p := b.Open(t, nil)
				if _, err := p.Library.Add(ctx, "handbook", "en", "zanzibar-secret.md", []byte(refunds), library.Markdown); err != nil {
					t.Fatal(err)
				}
				docs, err := p.Store.ListDocuments(ctx, "")
				if err != nil || len(docs) != 1 {
					t.Fatal(docs, err)
				}
				m, err := p.Store.MatchPassages(ctx, "handbook", allTerms(t, p), 100)
				if err != nil || len(m.Candidates) != 2 {
					t.Fatal(m, err)
				}
				for _, c := range m.Candidates {
					if !regexp.MustCompile(`^[a-p]{16}( [a-p]{16})*$`).MatchString(c.Terms) {
						t.Fatalf("terms are not keyed hashes: %q", c.Terms)
					}
				}
				sealed, err := p.Store.Passages(ctx, []library.PassageRef{m.Candidates[0].PassageRef, m.Candidates[1].PassageRef})
				if err != nil || len(sealed) != 2 {
					t.Fatal(sealed, err)
				}
				for _, s := range sealed {
					if strings.Contains(string(s.Payload), "appointments") || strings.Contains(string(s.Name), "zanzibar") {
						t.Fatal("a passage or name in clear")
					}
				}
				if b.Name == "sqlite" {
					p.Store.(interface{ Close() error }).Close()
					for _, f := range []string{"voicegate.db", "voicegate.db-wal"} {
						raw, _ := os.ReadFile(filepath.Join(p.Dir, f))
						for _, w := range []string{"Zanzibar", "zanzibar", "appointments", "Refunds"} {
							if strings.Contains(string(raw), w) {
								t.Fatalf("%q in clear in %s", w, f)
							}
						}
					}
				}
			})
			t.Run("TamperedPassage", func(t *testing.T) {
				// A passage's ciphertext moved to another passage does not
				// open: the search fails, it never answers the wrong text.
				p := b.Open(t, nil)
				p.Library.Add(ctx, "h", "en", "a.md", []byte(refunds), library.Markdown)
				st := swapStore{Store: p.Store}
				l := library.New(library.Deps{Store: st, Keys: p.Keys, LookupKey: p.Keys.LookupKey()})
				if _, err := l.Search(ctx, "h", "en", "refunds parking", 3); err == nil {
					t.Fatal("a swapped passage opened")
				}
			})
			t.Run("RotateRewrapRetire", func(t *testing.T) {
				clock := time.Now()
				p := b.Open(t, func() time.Time { return clock })
				for i := range library.RewrapBatch/100 + 3 {
					if _, err := p.Library.Add(ctx, "h", "en", fmt.Sprint(i, ".txt"), []byte(hours), library.Text); err != nil {
						t.Fatal(err)
					}
				}
				old := p.Keys.Current()
				if _, err := p.Keys.Rotate(); err != nil {
					t.Fatal(err)
				}
				if err := p.Library.CheckRetire(ctx, old); !errors.Is(err, library.ErrKeyInUse) {
					t.Fatalf("retire before rewrap: %v", err)
				}
				n, err := p.Library.Rewrap(ctx, nil)
				if err != nil || n != library.RewrapBatch/100+3 {
					t.Fatalf("rewrap: %d %v", n, err)
				}
				if err := p.Library.CheckRetire(ctx, old); err != nil {
					t.Fatal(err)
				}
				clock = clock.Add(envelope.RetireAfter + time.Second)
				if err := p.Keys.Retire(old); err != nil {
					t.Fatal(err)
				}
				if res, err := p.Library.Search(ctx, "h", "en", "saturday opening", 1); err != nil || len(res) != 1 {
					t.Fatalf("search after retire: %v %v", res, err)
				}
				if list, err := p.Library.List(ctx, "h"); err != nil || len(list) != library.RewrapBatch/100+3 {
					t.Fatalf("list after retire: %d %v", len(list), err)
				}
			})
			t.Run("ConcurrentAdds", func(t *testing.T) {
				// Processes adding the same document at once leave one.
				p := b.Open(t, nil)
				var wg sync.WaitGroup
				errs := make(chan error, 8)
				for i := range 8 {
					wg.Go(func() {
						_, err := p.Library.Add(ctx, "h", "en", "same.txt", []byte(fmt.Sprint(hours, i)), library.Text)
						errs <- err
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				if list, _ := p.Library.List(ctx, "h"); len(list) != 1 {
					t.Fatalf("%d documents", len(list))
				}
				if m, _ := p.Store.MatchPassages(ctx, "h", allTerms(t, p), 100); m.Passages != 1 {
					t.Fatalf("%d passages", m.Passages)
				}
			})
		})
	}
}

// allTerms are the terms of every word the tests' documents use.
func allTerms(t *testing.T, p librarytest.Parts) []string {
	t.Helper()
	return library.Distinct(library.TermsOf(p.Keys.LookupKey(), library.Words("en", refunds+hours+" alpha beta gamma delta 0 1 2 3")))
}

// swapStore answers each passage with the next one's payload.
type swapStore struct{ library.Store }

func (s swapStore) Passages(ctx context.Context, refs []library.PassageRef) ([]library.SealedPassage, error) {
	ps, err := s.Store.Passages(ctx, refs)
	if len(ps) > 1 {
		ps[0].Payload, ps[1].Payload = ps[1].Payload, ps[0].Payload
	}
	return ps, err
}

// question is one of the labelled set's.
type question struct {
	Question string `json:"question"`
	Document string `json:"document"`
	Passage  string `json:"passage"`
}

// TestRecall measures retrieval on the labelled set in testdata (six
// documents of fictional organisations, sixty questions phrased as a
// caller would say them, each labelled with the passage that answers it):
// recall@3 is the share of questions whose passage is among the first
// three answered. Both stores rank the same way.
func TestRecall(t *testing.T) {
	var qs []question
	raw, err := os.ReadFile("testdata/questions.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &qs); err != nil || len(qs) < 50 {
		t.Fatalf("questions: %d %v", len(qs), err)
	}
	var tops [][]string
	// One keyring for both: the same terms, the same ties.
	keys, err := envelope.LoadFile(filepath.Join(t.TempDir(), "keyring.json"), rand.Reader, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range librarytest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			p := b.Open(t, nil)
			p.Library = library.New(library.Deps{Store: p.Store, Keys: keys, LookupKey: keys.LookupKey()})
			addTestdata(t, p.Library)
			hit1, hit3 := 0, 0
			var top []string
			for _, q := range qs {
				res, err := p.Library.Search(ctx, "kb", "en", q.Question, 3)
				if err != nil {
					t.Fatal(err)
				}
				found := -1
				for i, r := range res {
					top = append(top, fmt.Sprintf("%s#%d", r.Document, r.Passage))
					if found < 0 && r.Document == q.Document && strings.Contains(r.Content, q.Passage) {
						found = i
					}
				}
				top = append(top, "|")
				if found == 0 {
					hit1++
				}
				if found >= 0 {
					hit3++
				} else if testing.Verbose() {
					t.Logf("missed: %q (%s)", q.Question, q.Document)
				}
			}
			r1, r3 := float64(hit1)/float64(len(qs)), float64(hit3)/float64(len(qs))
			t.Logf("recall@1 %.2f, recall@3 %.2f over %d questions", r1, r3, len(qs))
			if r3 < MinRecall3 {
				t.Fatalf("recall@3 %.2f, below %.2f", r3, MinRecall3)
			}
			tops = append(tops, top)
		})
	}
	if len(tops) == 2 && strings.Join(tops[0], " ") != strings.Join(tops[1], " ") {
		t.Fatalf("the stores rank differently:\n%v\n%v", tops[0], tops[1])
	}
}

// MinRecall3 is the floor the labelled set must keep (0.75 measured:
// the misses are a caller's words the documents do not use — "settee",
// "the tip", "pills" — which full-text search cannot bridge).
const MinRecall3 = 0.72

func addTestdata(t testing.TB, l *library.Library) {
	t.Helper()
	files, _ := filepath.Glob("testdata/docs/*")
	sort.Strings(files)
	if len(files) < 5 {
		t.Fatalf("testdata: %v", files)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		format, err := library.FormatOf(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Add(ctx, "kb", "en", filepath.Base(f), raw, format); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkSearch: one knowledge-base-request's search (the query's words,
// the index lookup, BM25, opening the passages answered) over the
// labelled set's documents, and over thirty copies of them (about 2,500
// passages), on both stores; the queries are the labelled questions in
// turn.
func BenchmarkSearch(b *testing.B) {
	var qs []question
	raw, _ := os.ReadFile("testdata/questions.json")
	json.Unmarshal(raw, &qs)
	for _, be := range librarytest.Backends() {
		for _, copies := range []int{1, 30} {
			b.Run(fmt.Sprintf("%s/copies=%d", be.Name, copies), func(b *testing.B) {
				p := be.Open(b, nil)
				files, _ := filepath.Glob("testdata/docs/*")
				for c := range copies {
					for _, f := range files {
						doc, _ := os.ReadFile(f)
						format, _ := library.FormatOf(f)
						if _, err := p.Library.Add(ctx, "kb", "en", fmt.Sprint(c, "-", filepath.Base(f)), doc, format); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				i := 0
				for b.Loop() {
					if _, err := p.Library.Search(ctx, "kb", "en", qs[i%len(qs)].Question, 3); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkAdd: adding one document of the labelled set (split, sealed,
// indexed, term counts), replacing its earlier version.
func BenchmarkAdd(b *testing.B) {
	doc, _ := os.ReadFile("testdata/docs/clinic_patient_handbook.md")
	for _, be := range librarytest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			p := be.Open(b, nil)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Library.Add(ctx, "kb", "en", "clinic.md", doc, library.Markdown); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRemoveShreds: a removed (or replaced) document cannot be read back
// from a copy of the database taken before — a backup, a dead row — even
// with the keyring: its data key is bound to a secret kept outside the
// database (the erasure store), destroyed by the removal, as a call's
// records are by a purge.
func TestRemoveShreds(t *testing.T) {
	for _, b := range librarytest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			p := b.Open(t, nil)
			l := p.Library
			if _, err := l.Add(ctx, "h", "en", "refunds.md", []byte(refunds), library.Markdown); err != nil {
				t.Fatal(err)
			}
			// The "backup": the rows as stored.
			docs, _ := p.Store.ListDocuments(ctx, "h")
			m, _ := p.Store.MatchPassages(ctx, "h", allTerms(t, p), 100)
			var refs []library.PassageRef
			for _, c := range m.Candidates {
				refs = append(refs, c.PassageRef)
			}
			sealed, _ := p.Store.Passages(ctx, refs)
			if len(docs) != 1 || len(sealed) != 2 {
				t.Fatalf("%d documents, %d passages", len(docs), len(sealed))
			}
			if ok, err := l.Remove(ctx, "h", "refunds.md"); !ok || err != nil {
				t.Fatalf("remove: %v %v", ok, err)
			}
			// The backup restored.
			var ps []library.StoredPassage
			for _, s := range sealed {
				for _, c := range m.Candidates {
					if c.PassageRef == s.PassageRef {
						ps = append(ps, library.StoredPassage{Seq: s.Seq, Terms: strings.Fields(c.Terms), Payload: s.Payload})
					}
				}
			}
			if _, err := p.Store.PutDocument(ctx, docs[0], ps); err != nil {
				t.Fatal(err)
			}
			if _, err := l.List(ctx, "h"); err == nil {
				t.Fatal("a removed document's name opened from a restored copy")
			}
			if res, err := l.Search(ctx, "h", "en", "refunds cancelled appointments", 3); err == nil {
				t.Fatalf("a removed document's passages opened from a restored copy: %v", res)
			}
		})
	}
}
