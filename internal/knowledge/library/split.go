package library

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// Format is how a document's text is read.
type Format string

const (
	// Markdown: "#" headings name the sections; a passage never spans two
	// sections and carries its section's heading path.
	Markdown Format = "markdown"
	// Text: paragraphs separated by blank lines.
	Text Format = "text"
)

// FormatOf is the format of a file by its name's extension.
func FormatOf(name string) (Format, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".md", ".markdown":
		return Markdown, nil
	case ".txt", ".text":
		return Text, nil
	case ".pdf":
		return "", errors.New("PDF is not read (no well-kept pure-Go library extracts its text well): convert it first, for example pdftotext -layout FILE.pdf FILE.txt")
	}
	return "", fmt.Errorf("%q: not a Markdown (.md) or plain text (.txt) file", filepath.Base(name))
}

// Passage sizes, in bytes of text: a passage grows paragraph by paragraph
// up to TargetBytes; a paragraph longer than MaxBytes is cut at sentence
// ends.
const (
	TargetBytes = 900
	MaxBytes    = 1500
	// MaxDocumentBytes is the largest document read.
	MaxDocumentBytes = 8 << 20
	// MaxTitleBytes and MaxHeadingBytes bound a heading and the heading
	// path every passage of its section carries: a long heading would be
	// copied into each of thousands of passages.
	MaxTitleBytes   = 120
	MaxHeadingBytes = 300
	// MaxPassagesBytes bounds the passages of one document together
	// (their text and heading paths).
	MaxPassagesBytes = 2 * MaxDocumentBytes
)

// Section is one passage of a document: its heading path (Markdown) and
// text.
type Section struct {
	Heading string
	Text    string
}

// Content is what a passage answers: its heading path on the first line,
// then its text.
func (s Section) Content() string {
	if s.Heading == "" {
		return s.Text
	}
	return s.Heading + "\n" + s.Text
}

// Split reads a document and cuts it into passages. A document that is
// not UTF-8 text (or holds NUL bytes: a binary file) is refused.
func Split(doc []byte, f Format) ([]Section, error) {
	if len(doc) > MaxDocumentBytes {
		return nil, fmt.Errorf("%d bytes: larger than %d", len(doc), MaxDocumentBytes)
	}
	doc = bytes.TrimPrefix(doc, []byte("\ufeff"))
	if !utf8.Valid(doc) || bytes.IndexByte(doc, 0) >= 0 {
		return nil, errors.New("not UTF-8 text")
	}
	text := strings.ReplaceAll(string(doc), "\r\n", "\n")
	var out []Section
	var path []string // headings by level (Markdown)
	var cur strings.Builder
	heading := ""
	total := 0
	emit := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, Section{Heading: heading, Text: t})
			total += len(heading) + 1 + len(t)
		}
		cur.Reset()
	}
	add := func(par string) {
		par = strings.TrimSpace(par)
		if par == "" {
			return
		}
		for _, piece := range cutLong(par) {
			if cur.Len() > 0 && cur.Len()+2+len(piece) > TargetBytes {
				emit()
			}
			if cur.Len() > 0 {
				cur.WriteString("\n\n")
			}
			cur.WriteString(piece)
		}
	}
	lines := strings.Split(text, "\n")
	if f == Markdown {
		lines = skipFrontMatter(lines)
	}
	var par []string
	fence := ""
	flushPar := func() {
		add(strings.Join(par, "\n"))
		par = par[:0]
	}
	for _, line := range lines {
		if total > MaxPassagesBytes {
			return nil, fmt.Errorf("its passages would hold more than %d bytes: too many headings for its text", MaxPassagesBytes)
		}
		trimmed := strings.TrimSpace(line)
		if f == Markdown {
			if fence != "" {
				par = append(par, line)
				if strings.HasPrefix(trimmed, fence) {
					fence = ""
				}
				continue
			}
			if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
				fence = trimmed[:3]
				par = append(par, line)
				continue
			}
			if level, title, ok := atxHeading(trimmed); ok {
				flushPar()
				emit()
				if level > len(path) {
					path = append(path, make([]string, level-len(path))...)
				}
				path = append(path[:level-1], title)
				heading = joinPath(path)
				continue
			}
		}
		if trimmed == "" {
			flushPar()
			continue
		}
		par = append(par, line)
	}
	flushPar()
	emit()
	if total > MaxPassagesBytes {
		return nil, fmt.Errorf("its passages would hold more than %d bytes: too many headings for its text", MaxPassagesBytes)
	}
	return out, nil
}

// atxHeading reads "## Title" (levels 1 to 6).
func atxHeading(line string) (int, string, bool) {
	level := 0
	for level < len(line) && line[level] == '#' {
		level++
	}
	if level == 0 || level > 6 || (level < len(line) && line[level] != ' ' && line[level] != '\t') {
		return 0, "", false
	}
	title := strings.TrimSpace(strings.TrimRight(strings.TrimSpace(line[level:]), "#"))
	if title == "" {
		return 0, "", false
	}
	return level, cutTitle(title, MaxTitleBytes), true
}

// cutTitle cuts s to at most max bytes on a character boundary, marking
// the cut with "…".
func cutTitle(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimSpace(s[:cut]) + "…"
}

// joinPath joins the headings of a path, at most MaxHeadingBytes: the
// deepest ones are kept (they say the most of the section).
func joinPath(path []string) string {
	var parts []string
	n := 0
	for i := len(path) - 1; i >= 0; i-- {
		p := path[i]
		if p == "" {
			continue
		}
		if n > 0 && n+len(" › ")+len(p) > MaxHeadingBytes {
			break
		}
		if n > 0 {
			n += len(" › ")
		}
		n += len(p)
		parts = append(parts, p)
	}
	slices.Reverse(parts)
	return strings.Join(parts, " › ")
}

// skipFrontMatter drops a leading YAML front matter block.
func skipFrontMatter(lines []string) []string {
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "---" {
		return lines
	}
	for i := 1; i < len(lines); i++ {
		if t := strings.TrimSpace(lines[i]); t == "---" || t == "..." {
			return lines[i+1:]
		}
	}
	return lines
}

// cutLong cuts a paragraph longer than MaxBytes at sentence ends (or,
// failing those, spaces; or, failing those, a character boundary), each
// piece at most TargetBytes where it can be.
func cutLong(par string) []string {
	if len(par) <= MaxBytes {
		return []string{par}
	}
	var out []string
	for len(par) > MaxBytes {
		cut := lastCut(par[:TargetBytes], ". ", "? ", "! ", "\n")
		if cut <= TargetBytes/3 {
			cut = lastCut(par[:TargetBytes], " ")
		}
		if cut <= 0 {
			cut = TargetBytes
			for !utf8.RuneStart(par[cut]) {
				cut--
			}
		}
		out = append(out, strings.TrimSpace(par[:cut]))
		par = strings.TrimSpace(par[cut:])
	}
	if par != "" {
		out = append(out, par)
	}
	return out
}

// lastCut is the position just after the last of seps in s (0: none).
func lastCut(s string, seps ...string) int {
	best := 0
	for _, sep := range seps {
		if i := strings.LastIndex(s, sep); i >= 0 && i+len(sep) > best {
			best = i + len(sep)
		}
	}
	return best
}
