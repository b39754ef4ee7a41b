package library_test

import (
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

