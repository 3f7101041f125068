package tts_test

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/voiced-dev/voiced/processors/tts"
)

var sentenceCases = []struct {
	name  string
	in    string
	want  []string // returned by Add
	flush string   // left for Flush
}{
	{"two", "Hello! How are you?", []string{"Hello!"}, "How are you?"},
	{"complete", "Hello! How are you? ", []string{"Hello!", "How are you?"}, ""},
	{"title", "Dr. Smith is in. Mrs. Jones is out. ", []string{"Dr. Smith is in.", "Mrs. Jones is out."}, ""},
	{"decimal", "Pi is 3.14 today. Yes", []string{"Pi is 3.14 today."}, "Yes"},
	{"latin", "Use e.g. this one. Or i.e. that. ", []string{"Use e.g. this one.", "Or i.e. that."}, ""},
	{"initials", "J. R. R. Tolkien wrote it. So did I. Fine.", []string{"J. R. R. Tolkien wrote it.", "So did I."}, "Fine."},
	{"number abbreviation", "Call No. 5 now. The answer is no. Okay.", []string{"Call No. 5 now.", "The answer is no."}, "Okay."},
	{"no at the end", "The answer is no.", nil, "The answer is no."},
	{"newlines", "Line one\nLine two\n\n  Line three", []string{"Line one", "Line two"}, "Line three"},
	{"newline after period", "Hi.\nThere.\n", []string{"Hi.", "There."}, ""},
	{"runs", "Wait... what?! Really?", []string{"Wait...", "what?!"}, "Really?"},
	{"quotes", `He said "stop." Then left.`, []string{`He said "stop."`}, "Then left."},
	{"brackets", "(See Dr. Who.) Next one; and more", []string{"(See Dr. Who.)", "Next one;"}, "and more"},
	{"no space", "no space.after period", nil, "no space.after period"},
	{"chinese", "你好。今天怎么样？很好！", []string{"你好。", "今天怎么样？"}, "很好！"},
	{"chinese quote", "他说：「好。」然后走了。", []string{"他说：「好。」"}, "然后走了。"},
	{"accents", "Ça va? Très bien. Ünïcödé… ok", []string{"Ça va?", "Très bien.", "Ünïcödé…"}, "ok"},
	{"emoji", "Great 👍. Next", []string{"Great 👍."}, "Next"},
	{"wide space", "Hi.\u3000There", []string{"Hi."}, "There"},
	{"blank", "  \n \n ", nil, ""},
	{"empty", "", nil, ""},
}

func TestSentences(t *testing.T) {
	for _, tc := range sentenceCases {
		t.Run(tc.name, func(t *testing.T) {
			// All at once, by byte, by rune and in three-byte "tokens".
			splits := map[string][]string{"whole": {tc.in}}
			var bytes, runes, tokens []string
			for i := range len(tc.in) {
				bytes = append(bytes, tc.in[i:i+1])
			}
			for _, r := range tc.in {
				runes = append(runes, string(r))
			}
			for i := 0; i < len(tc.in); i += 3 {
				tokens = append(tokens, tc.in[i:min(i+3, len(tc.in))])
			}
			splits["bytes"], splits["runes"], splits["tokens"] = bytes, runes, tokens
			for how, pieces := range splits {
				var s tts.Sentences
				var got []string
				for _, p := range pieces {
					got = append(got, s.Add(p)...)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s: Add = %q, want %q", how, got, tc.want)
				}
				if f := s.Flush(); f != tc.flush {
					t.Errorf("%s: Flush = %q, want %q", how, f, tc.flush)
				}
				if f := s.Flush(); f != "" {
					t.Errorf("%s: second Flush = %q", how, f)
				}
			}
		})
	}
}

func TestSentencesReset(t *testing.T) {
	var s tts.Sentences
	if got := s.Add("Old text that was cut"); len(got) != 0 {
		t.Fatalf("Add = %q", got)
	}
	s.Reset()
	if got := s.Add("New. "); !slices.Equal(got, []string{"New."}) {
		t.Fatalf("after Reset, Add = %q, want [New.]", got)
	}
}

// FuzzSentences checks that any split of the text gives the sentences of
// the whole, and that no text is lost or repeated.
func FuzzSentences(f *testing.F) {
	for _, tc := range sentenceCases {
		f.Add(tc.in, uint16(1), uint16(3))
	}
	f.Add("a\xe3\x80. b\xff. c", uint16(2), uint16(5))
	f.Fuzz(func(t *testing.T, text string, a, b uint16) {
		var whole tts.Sentences
		want := append(whole.Add(text), whole.Flush())

		var s tts.Sentences
		var got []string
		for i, step := 0, 0; i < len(text); step++ {
			n := 1 + int(a)%7
			if step%2 == 1 {
				n = 1 + int(b)%11
			}
			got = append(got, s.Add(text[i:min(i+n, len(text))])...)
			i += n
		}
		got = append(got, s.Flush())
		if !slices.Equal(got, want) {
			t.Fatalf("split (%d, %d): %q, whole: %q", a, b, got, want)
		}
		for _, sent := range want[:len(want)-1] {
			if sent == "" || strings.TrimSpace(sent) != sent {
				t.Fatalf("sentence %q is blank or untrimmed", sent)
			}
		}
		squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
		if squash(strings.Join(want, " ")) != squash(text) {
			t.Fatalf("text changed: %q became %q", text, want)
		}
		if utf8.ValidString(text) {
			for _, sent := range want {
				if !utf8.ValidString(sent) {
					t.Fatalf("sentence %q splits a character", sent)
				}
			}
		}
	})
}

// BenchmarkSentences feeds a typical answer as model tokens of a few bytes.
func BenchmarkSentences(b *testing.B) {
	answer := strings.Repeat("Sure, Dr. Smith can see you at 3.30 tomorrow. Is that okay? ", 4)
	var tokens []string
	for i := 0; i < len(answer); i += 4 {
		tokens = append(tokens, answer[i:min(i+4, len(answer))])
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(answer)))
	for b.Loop() {
		var s tts.Sentences
		n := 0
		for _, tok := range tokens {
			n += len(s.Add(tok))
		}
		if s.Flush() != "" {
			n++
		}
		if n != 8 {
			b.Fatalf("%d sentences, want 8", n)
		}
	}
}
