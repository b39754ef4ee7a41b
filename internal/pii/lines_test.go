package pii

import (
	"fmt"
	"strings"
	"testing"
)

// TestLines: a question on one line and its answer on the next, in one
// text (Find) and across texts (Scanner).
func TestLines(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"dob answer", "AI: What's your date of birth?\nUser: March 3rd 1990", "AI: What's your date of birth?\nUser: [DOB]"},
		{"dob answer, numeric", "AI: Please confirm your date of birth.\nUser: 02-28-1979, and my member ID is XJH482193407.",
			"AI: Please confirm your date of birth.\nUser: [DOB], and my member ID is XJH482193407."},
		{"dob answer, partial", "AI: And your birthday?\nUser: 3/15.", "AI: And your birthday?\nUser: [DOB]."},
		{"dob answer, in words", "AI: When were you born?\nUser: the fifth of June, nineteen eighty", "AI: When were you born?\nUser: the [DOB]"},
		{"dob answer after a blank line", "AI: Your date of birth, please.\n\nUser: 1985-03-14", "AI: Your date of birth, please.\n\nUser: [DOB]"},
		{"dob answer, crlf", "AI: Date of birth?\r\nUser: 14.03.1985\r\n", "AI: Date of birth?\r\nUser: [DOB]\r\n"},
		{"form label on its own line", "Date of birth:\n14/03/1985", "Date of birth:\n[DOB]"},
		{"only the first date answers", "AI: The patient's date of birth?\nUser: 1/2/1975, and her appointment is 12/09/2026.",
			"AI: The patient's date of birth?\nUser: [DOB], and her appointment is 12/09/2026."},
		{"only the next line", "AI: What's your date of birth?\nUser: 03/14/1985\nAI: And your last visit?\nUser: 10/02/2025",
			"AI: What's your date of birth?\nUser: [DOB]\nAI: And your last visit?\nUser: 10/02/2025"},
		{"a question before the date", "AI: Can I have your date of birth?\nAI: Sorry, when would you like to come in? 04/02 or 04/03",
			"AI: Can I have your date of birth?\nAI: Sorry, when would you like to come in? 04/02 or 04/03"},
		{"not a question", "Note: DOB on file, no changes requested.\nNote: visit 03/04/2026", "Note: DOB on file, no changes requested.\nNote: visit 03/04/2026"},
		{"question answered on its line", "AI: Is your date of birth 03/14/1985?\nUser: yes, and my wife's is 04/01/1987.",
			"AI: Is your date of birth [DOB]?\nUser: yes, and my wife's is 04/01/1987."},
		{"a statement, not a request", "AI: I can confirm your date of birth is on file.\nUser: great, move me to 04/02/2026 then",
			"AI: I can confirm your date of birth is on file.\nUser: great, move me to 04/02/2026 then"},
		{"happy birthday", "AI: Happy birthday! What can I do for you?\nUser: book me for 12/14", "AI: Happy birthday! What can I do for you?\nUser: book me for 12/14"},
		{"a request", "AI: For security, I'll need your date of birth.\nUser: 06/11/1959", "AI: For security, I'll need your date of birth.\nUser: [DOB]"},
		{"the same speaker again", "AI: And your date of birth, please?\nAI: You're down for Tuesday, March 10 at 2:15 PM.",
			"AI: And your date of birth, please?\nAI: You're down for Tuesday, March 10 at 2:15 PM."},
		{"another question", "AI: What date did it happen?\nUser: 10/03/2025", "AI: What date did it happen?\nUser: 10/03/2025"},
		{"birthday party", "AI: When's the birthday party?\nUser: 12/14", "AI: When's the birthday party?\nUser: 12/14"},
		{"ssn answer", "AI: What is your social security number?\nUser: 521 60 7784.", "AI: What is your social security number?\nUser: [SSN]."},
		{"ssn answer, bare", "AI: And the SSN, please, all nine digits, so I can verify the account holder's identity.\nUser: 521607784",
			"AI: And the SSN, please, all nine digits, so I can verify the account holder's identity.\nUser: [SSN]"},
		{"ssn answer, spoken", "AI: Please read me your Social Security number.\nUser: five two nine, four four, one zero eight three.",
			"AI: Please read me your Social Security number.\nUser: [SSN]."},
		{"ssn asked, an order number given", "AI: What's your social?\nUser: my order number is 521607784", "AI: What's your social?\nUser: my order number is 521607784"},
		{"social insurance asked", "AI: Your social insurance number, please?\nUser: 046454286", "AI: Your social insurance number, please?\nUser: 046454286"},
	}
	// A long transcript: many dates before the question.
	var long, longWant strings.Builder
	for i := 1; i <= 12; i++ {
		l := fmt.Sprintf("AI: Slot %d is on 03/%02d/2026 or 04/%02d/2026.\n", i, i, i)
		long.WriteString(l)
		longWant.WriteString(l)
	}
	long.WriteString("AI: And your date of birth?\nUser: 14 March 1985, and 03/20/2026 suits me.")
	longWant.WriteString("AI: And your date of birth?\nUser: [DOB], and 03/20/2026 suits me.")
	cases = append(cases, struct{ name, in, want string }{"many dates before", long.String(), longWant.String()})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q\nfindings %v", tc.in, got, tc.want, Find(tc.in))
			}
			// The same read line by line by a Scanner.
			var z Scanner
			var b strings.Builder
			for _, l := range strings.SplitAfter(tc.in, "\n") {
				b.WriteString(z.Redact(l))
			}
			if got := b.String(); got != tc.want {
				t.Errorf("Scanner line by line on %q\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestScannerReset: without the previous line, an answer is a date.
func TestScannerReset(t *testing.T) {
	var z Scanner
	z.Find("AI: What's your date of birth?")
	z.Reset()
	if got := z.Redact("User: 03/14/1985"); got != "User: 03/14/1985" {
		t.Errorf("after Reset: %q", got)
	}
	z.Find("AI: What's your date of birth?")
	z.Find("   ") // a blank line keeps the context
	if got := z.Redact("User: 03/14/1985"); got != "User: [DOB]" {
		t.Errorf("after a blank line: %q", got)
	}
	if got := Redact("User: 03/14/1985"); got != "User: 03/14/1985" {
		t.Errorf("Redact has no previous line: %q", got)
	}
}

// TestScannerNoAllocation: a Scanner on clean lines allocates nothing.
func TestScannerNoAllocation(t *testing.T) {
	var z Scanner
	lines := []string{"AI: What's your date of birth?", "User: hang on, let me find my card. Is that 03/14 for the appointment at 2:15 PM?"}
	var buf []Finding
	if n := testing.AllocsPerRun(100, func() {
		for _, l := range lines {
			buf = z.AppendFind(buf[:0], l)
		}
	}); n != 0 {
		t.Errorf("Scanner on clean lines: %v allocations, want 0", n)
	}
}

// FuzzScanner: a Scanner reading the lines of a text finds what is inside
// each line, sorted and not overlapping, and never panics.
func FuzzScanner(f *testing.F) {
	f.Add("AI: What's your date of birth?\nUser: 3/15\n\nDate of birth:\n1985-03-14")
	f.Add("AI: your social, please?\nUser: five two nine four four one zero eight three\n521 60 7784")
	f.Fuzz(func(t *testing.T, in string) {
		var z Scanner
		for _, l := range strings.SplitAfter(in, "\n") {
			prev := 0
			for _, fd := range z.Find(l) {
				if fd.Start < prev || fd.End <= fd.Start || fd.End > len(l) {
					t.Fatalf("Scanner.Find(%q): bad finding %v", l, fd)
				}
				prev = fd.End
			}
		}
		checkRedaction(t, in)
	})
}

// BenchmarkScanner: the clean line of BenchmarkRedact read by a Scanner
// after another line (as `voicegate redact` reads a transcript): after
// itself, after a line that asks for a date of birth (the line has a date,
// so the question is looked at), and a question's answer.
func BenchmarkScanner(b *testing.B) {
	const clean = "AI: Thanks, Maria. I have you down for Tuesday, March 10 at 2:15 PM with Dr. Patel in room 214; please arrive ten minutes early and bring your insurance card. The copay is $35.00."
	pairs := map[string][2]string{
		"clean":                  {clean, clean},
		"clean after a question": {"AI: And your date of birth, please?", clean},
		"answer":                 {"AI: And your date of birth, please?", "User: Sure, it's March 3rd, 1990, and my ZIP is 94110."},
	}
	for _, name := range []string{"clean", "clean after a question", "answer"} {
		p := pairs[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p[1])))
			var z Scanner
			var buf []Finding
			for b.Loop() {
				z.prev, z.ask = p[0], 0 // a new line each time: its question not yet looked at
				buf = z.AppendFind(buf[:0], p[1])
			}
		})
	}
}
