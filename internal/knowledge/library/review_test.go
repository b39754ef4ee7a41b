package library_test

import (
	"fmt"
	"strings"
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

