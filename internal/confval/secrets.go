package confval

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
)

// NewSecret returns a random 32-byte secret, hex encoded.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails on supported platforms (Go 1.24+ crashes instead)
	return hex.EncodeToString(b)
}

// WeakSecret says why a shared secret must not be used, or "" when it may.
//
// Threat: a secret copied from an example, a placeholder left in place, or a
// value typed by hand (one repeated character, an alphabet run) is a
// credential anyone can guess. Random secrets — 32 bytes from a generator,
// hex or base64 — pass every rule here with overwhelming probability (the
// likeliest refusal, a run of a third of the length, has odds below 1 in
// 10^12 for 32 hex characters).
func WeakSecret(s string) string {
	lower := strings.ToLower(s)
	for _, p := range knownPlaceholders {
		if lower == p {
			return "it is a published example value"
		}
	}
	for _, w := range placeholderWords {
		if strings.Contains(lower, w) {
			return "it looks like a placeholder (contains \"" + w + "\")"
		}
	}
	for _, w := range typedWords {
		if strings.Contains(s, w) {
			return "it looks like a placeholder (contains \"" + w + "\")"
		}
	}
	if distinct(s) < 5 {
		return "it has fewer than 5 distinct characters"
	}
	// A run of 8 is rare in a random secret, but not negligible in a long
	// one (about 1 in 2.5 million 64-character hex secrets has one): the
	// bar rises with the length, to a third of it.
	if n, kind := longestRun(s); n >= max(8, len(s)/3) {
		return "it contains a run of " + strconv.Itoa(n) + " " + kind + " characters"
	}
	if p := period(s); p > 0 {
		return "it repeats a " + strconv.Itoa(p) + "-character pattern"
	}
	return ""
}

// period returns the length of the shortest pattern that s repeats (at
// least twice, as in "passwordpassword"), or 0.
func period(s string) int {
	for p := 1; p <= len(s)/2; p++ {
		i := p
		for i < len(s) && s[i] == s[i-p] {
			i++
		}
		if i == len(s) {
			return p
		}
	}
	return 0
}

// knownPlaceholders are values published in voicegate's examples and docs,
// lower-cased.
var knownPlaceholders = []string{
	"retired-secret-0000000000", "bearer-token-000000000000", "legacy-secret-00000000000", "signature-secret-000000000",
	"bench-tq8zr3km7wx2pn9lv4hs", // the benchmark secret BENCHMARKS.md once printed
}

// placeholderWords are words a generated secret does not contain, in any
// case (7 letters or more: a 7-letter word turns up, case-insensitively, in
// about one random base64 secret in 10^9).
var placeholderWords = []string{"changeme", "change-me", "change_me", "placeholder", "replace-me", "replace_me", "your-secret", "your_secret", "example",
	"password", "passw0rd", "letmein"}

// typedWords are shorter runs typed on a keyboard, matched as typed (lower
// case), which keeps their odds in random base64 near one in 10^9 too.
var typedWords = []string{"qwerty", "asdfgh"}

func distinct(s string) int {
	var seen [256]bool
	n := 0
	for i := 0; i < len(s); i++ {
		if !seen[s[i]] {
			seen[s[i]] = true
			n++
		}
	}
	return n
}

// longestRun returns the longest run of identical characters or of
// consecutive ascending or descending ones ("abcdefgh", "98765432").
func longestRun(s string) (int, string) {
	best, kind := 1, "repeated"
	same, up, down := 1, 1, 1
	for i := 1; i < len(s); i++ {
		a, b := s[i-1], s[i]
		same, up, down = next(same, a == b), next(up, b == a+1), next(down, b+1 == a)
		if same > best {
			best, kind = same, "repeated"
		}
		if up > best || down > best {
			best, kind = max(up, down), "consecutive"
		}
	}
	return best, kind
}

func next(n int, cont bool) int {
	if cont {
		return n + 1
	}
	return 1
}
