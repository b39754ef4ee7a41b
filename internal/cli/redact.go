package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/voicegate/voicegate/internal/pii"
)

const redactUsage = `usage: voicegate redact [--json] < INPUT > OUTPUT`

// maxRedactLine is the longest line redact reads, without its line ending.
// A transcript line is kilobytes; a megabyte without a newline is not text,
// and is refused rather than held in memory.
const maxRedactLine = 1 << 20

// errLineTooLong is returned, wrapped with the line number, for a line
// longer than maxRedactLine.
var errLineTooLong = fmt.Errorf("line longer than %d bytes (1 MiB)", maxRedactLine)

// runRedactCommand runs redact on the process's standard input (Run passes
// output streams only).
func runRedactCommand(args []string, stdout, stderr io.Writer) error {
	return runRedact(args, os.Stdin, stdout, stderr)
}

// redactFinding is one finding in --json output: byte offsets in the
// original line.
type redactFinding struct {
	Kind  pii.Kind `json:"kind"`
	Start int      `json:"start"`
	End   int      `json:"end"`
}

// redactLine is one line of --json output.
type redactLine struct {
	Text     string          `json:"text"`
	Findings []redactFinding `json:"findings"`
}

// runRedact copies stdin to stdout line by line, with the personal data in
// each line (phone numbers, e-mail addresses, SSNs, card numbers, dates of
// birth) replaced by a placeholder naming its kind. Line endings are kept.
// With --json it writes one object per line: the redacted text (without
// its line ending) and the findings, with offsets in the original line.
// The input streams: memory holds one line, and a line longer than 1 MiB
// is an error naming it, after the lines before it were written.
func runRedact(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("redact", stderr)
	asJSON := fs.Bool("json", false, `write one JSON object per line: {"text": redacted line, "findings": [{"kind", "start", "end"}]} (byte offsets in the original line)`)
	fs.Usage = func() {
		fmt.Fprintln(stderr, redactUsage)
		fmt.Fprintln(stderr, "Redacts phone numbers, e-mail addresses, SSNs, card numbers and dates of birth, line by line.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	in := bufio.NewReaderSize(stdin, 64<<10)
	out := bufio.NewWriterSize(stdout, 64<<10)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	var (
		buf      []byte
		findings []pii.Finding
		scanner  pii.Scanner
		js       redactLine
	)
	for n := 1; ; n++ {
		line, err := readLine(in, buf[:0], maxRedactLine)
		buf = line
		if errors.Is(err, errLineTooLong) {
			if ferr := out.Flush(); ferr != nil {
				return fmt.Errorf("write: %w", ferr)
			}
			return fmt.Errorf("line %d: %w", n, err)
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read standard input: %w", err)
		}
		if len(line) == 0 && err == io.EOF {
			break
		}
		text, eol := splitEOL(line)
		// One scanner for the whole input: a line that asks for a date of
		// birth or an SSN makes the next line's answer one.
		findings = scanner.AppendFind(findings[:0], string(text))
		if *asJSON {
			js.Text = pii.Replace(string(text), findings)
			js.Findings = js.Findings[:0]
			for _, f := range findings {
				js.Findings = append(js.Findings, redactFinding{Kind: f.Kind, Start: f.Start, End: f.End})
			}
			if js.Findings == nil {
				js.Findings = []redactFinding{}
			}
			if werr := enc.Encode(js); werr != nil {
				return fmt.Errorf("write: %w", werr)
			}
		} else {
			out.WriteString(pii.Replace(string(text), findings))
			if _, werr := out.Write(eol); werr != nil {
				return fmt.Errorf("write: %w", werr)
			}
		}
		if err == io.EOF {
			break
		}
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// readLine appends the next line of r, with its line ending, to buf. It
// returns io.EOF with the last line if that has no line ending (or with
// nothing at the end), and errLineTooLong as soon as a line is longer than
// max bytes without its ending.
func readLine(r *bufio.Reader, buf []byte, max int) ([]byte, error) {
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if err == bufio.ErrBufferFull {
			if len(buf) > max+1 { // too long even if it ends in the '\r' of a "\r\n"
				return buf, errLineTooLong
			}
			continue
		}
		if text, _ := splitEOL(buf); len(text) > max {
			return buf, errLineTooLong
		}
		return buf, err
	}
}

// splitEOL splits line into its text and its line ending ("\n", "\r\n" or
// none).
func splitEOL(line []byte) (text, eol []byte) {
	if bytes.HasSuffix(line, []byte("\r\n")) {
		return line[:len(line)-2], line[len(line)-2:]
	}
	if bytes.HasSuffix(line, []byte("\n")) {
		return line[:len(line)-1], line[len(line)-1:]
	}
	return line, nil
}
