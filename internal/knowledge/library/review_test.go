package library_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/voicegate/voicegate/internal/knowledge/library"
	"github.com/voicegate/voicegate/internal/knowledge/library/librarytest"
)

// Regression tests of the adversarial review of the document store.

// TestReviewQueryKeepsLatestWords: the query is the latest user messages,
// oldest first; when they hold more than MaxQueryTerms distinct words the
// ones kept must be the latest (the caller's question), not the oldest.
func TestReviewQueryKeepsLatestWords(t *testing.T) {
	for _, b := range librarytest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			p := b.Open(t, nil)
			if _, err := p.Library.Add(ctx, "h", "en", "billing.md", []byte(refunds), library.Markdown); err != nil {
				t.Fatal(err)
			}
			var older []string
			for i := range library.MaxQueryTerms + 10 {
				older = append(older, fmt.Sprintf("filler%03d", i))
			}
			q := strings.Join(older, " ") + " ... so when do I get my refund?"
			res, err := p.Library.Search(ctx, "h", "en", q, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) == 0 || !strings.Contains(res[0].Content, "Refunds") {
				t.Fatalf("the latest words were dropped from the query: %+v", res)
			}
		})
	}
}

// TestReviewConcurrentDifferentDocuments: processes adding different
// documents of one base at once (kb add of two directories, or two
// operators) must all succeed: the term counts they share are updated in
// an order that cannot deadlock.
func TestReviewConcurrentDifferentDocuments(t *testing.T) {
	vocab := make([]string, 400)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("word%c%c", 'a'+i%26, 'a'+i/26)
	}
	for _, b := range librarytest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			p := b.Open(t, nil)
			for round := range 3 {
				var wg sync.WaitGroup
				errs := make(chan error, 8)
				for i := range 8 {
					words := append([]string(nil), vocab...)
					r := rand.New(rand.NewPCG(uint64(round), uint64(i)))
					r.Shuffle(len(words), func(a, b int) { words[a], words[b] = words[b], words[a] })
					doc := strings.Join(words, " ")
					wg.Go(func() {
						_, err := p.Library.Add(ctx, "h", "en", fmt.Sprintf("doc%d.txt", i), []byte(doc), library.Text)
						errs <- err
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
				}
			}
		})
	}
}

// redirectStore answers a search of any base with the candidates of base
// "h": an index row moved to another base in the database.
type redirectStore struct{ library.Store }

func (s redirectStore) MatchPassages(ctx context.Context, base string, terms []string, limit int) (library.Match, error) {
	return s.Store.MatchPassages(ctx, "h", terms, limit)
}

// TestReviewPassageOfAnotherBase: a passage is sealed under its base; a
// search of another base must never answer it, even if the index says
// so (the base is in the passage's AAD precisely so that it cannot be
// moved).
func TestReviewPassageOfAnotherBase(t *testing.T) {
	for _, b := range librarytest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			p := b.Open(t, nil)
			if _, err := p.Library.Add(ctx, "h", "en", "billing.md", []byte(refunds), library.Markdown); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Library.Add(ctx, "public", "en", "hours.txt", []byte(hours), library.Text); err != nil {
				t.Fatal(err)
			}
			l := library.New(library.Deps{Store: redirectStore{p.Store}, Keys: p.Keys, LookupKey: p.Keys.LookupKey()})
			res, _ := l.Search(ctx, "public", "en", "refund card", 3)
			for _, r := range res {
				if strings.Contains(r.Content, "Refunds") {
					t.Fatalf("a passage of base h answered for base public: %+v", r)
				}
			}
		})
	}
}

// TestReviewTermsHoldNoWordOrder: the index needs which terms a passage
// holds and how often, not their order; kept in order, the terms column
// is the document's text under a word-substitution cipher (bigram
// statistics, or one known public document, read the rest).
func TestReviewTermsHoldNoWordOrder(t *testing.T) {
	for _, b := range librarytest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			p := b.Open(t, nil)
			p.Library.Add(ctx, "h", "en", "a.txt", []byte("alpha beta gamma delta alpha"), library.Text)
			p.Library.Add(ctx, "h", "en", "b.txt", []byte("delta alpha gamma alpha beta"), library.Text)
			m, err := p.Store.MatchPassages(ctx, "h", library.TermsOf(p.Keys.LookupKey(), []string{"alpha"}), 10)
			if err != nil || len(m.Candidates) != 2 {
				t.Fatal(m, err)
			}
			if m.Candidates[0].Terms != m.Candidates[1].Terms {
				t.Fatalf("the index keeps the words' order:\n%s\n%s", m.Candidates[0].Terms, m.Candidates[1].Terms)
			}
		})
	}
}

// TestReviewCandidatesRareTerm: beyond CandidateLimit matching passages
// the database chooses the candidates; its choice must not drop the
// passage holding the query's rare word in favour of passages repeating
// its common one (PostgreSQL's ts_rank knows no document frequency).
func TestReviewCandidatesRareTerm(t *testing.T) {
	for _, b := range librarytest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			p := b.Open(t, nil)
			var doc strings.Builder
			for i := range library.CandidateLimit + 200 {
				fmt.Fprintf(&doc, "# Section %d\n\nAn insurance claim, another insurance claim.\n\n", i)
			}
			if _, err := p.Library.Add(ctx, "h", "en", "policies.md", []byte(doc.String()), library.Markdown); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Library.Add(ctx, "h", "en", "dental.txt", []byte("The dentist visits on Tuesdays."), library.Text); err != nil {
				t.Fatal(err)
			}
			res, err := p.Library.Search(ctx, "h", "en", "an insurance claim for the dentist", 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) == 0 || res[0].Document != "dental.txt" {
				top := "none"
				if len(res) > 0 {
					top = res[0].Document
				}
				t.Fatalf("the passage with the rare word was not a candidate: top %s", top)
			}
		})
	}
}
