package tts

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentences splits streamed text into sentences so synthesis can start
// before the whole answer is known. The zero value is ready to use; it is not
// safe for concurrent use.
//
// A sentence ends at a newline, or at a run of terminal punctuation (". ! ?
// ;" and their full-width forms) and closing quotes or brackets that is
// followed by whitespace; full-width terminals ("。！？") need no whitespace.
// A period after a known abbreviation ("Dr.", "e.g.") or a single-letter
// initial does not end a sentence, nor does "No." before a number. A
// decision that depends on text not yet seen waits for it, so feeding the
// same text in any pieces, even pieces that split a UTF-8 sequence, yields
// the same sentences as feeding it at once.
type Sentences struct {
	buf  string // text not yet returned
	scan int    // bytes of buf already decided (no sentence ends before it)
}

// abbreviations end with a period that does not end a sentence.
var abbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "st": true,
	"vs": true, "etc": true, "e.g": true, "i.e": true, "jr": true, "sr": true,
	"approx": true, "min": true, "max": true,
}

// numberAbbreviations are abbreviations only before a number ("No. 5").
var numberAbbreviations = map[string]bool{"no": true, "nos": true}

// Add appends text and returns the sentences it completed, trimmed.
func (s *Sentences) Add(text string) []string {
	s.buf += text
	all := s.buf
	var out []string
	start, i := 0, s.scan
	emit := func(end int) {
		if sent := strings.TrimSpace(all[start:end]); sent != "" {
			out = append(out, sent)
		}
		start = end
	}
scan:
	for i < len(all) {
		r, size := utf8.DecodeRuneInString(all[i:])
		if r == utf8.RuneError && !utf8.FullRuneInString(all[i:]) {
			break // a split UTF-8 sequence: wait for the rest
		}
		end := i + size
		if r == '\n' {
			emit(end)
			i = end
			continue
		}
		if !isTerminal(r) {
			i = end
			continue
		}
		// Take the whole run of terminals and closers ("?!", `."`, ".)").
		j := end
		var next rune
		for {
			if j >= len(all) || !utf8.FullRuneInString(all[j:]) {
				break scan // what follows decides: wait
			}
			c, cs := utf8.DecodeRuneInString(all[j:])
			if !isTerminal(c) && !isCloser(c) {
				next = c
				break
			}
			j += cs
		}
		if !isWide(r) && !unicode.IsSpace(next) {
			i = j // "3.14", "e.g", "a.m": not an end
			continue
		}
		if r == '.' && j == end {
			word := lastWord(all[start:i])
			if abbreviations[word] || isInitial(word) {
				i = j
				continue
			}
			if numberAbbreviations[word] {
				k := j
				for k < len(all) {
					c, cs := utf8.DecodeRuneInString(all[k:])
					if !unicode.IsSpace(c) {
						break
					}
					k += cs
				}
				if k >= len(all) || !utf8.FullRuneInString(all[k:]) {
					break scan // is a number next? wait
				}
				if c, _ := utf8.DecodeRuneInString(all[k:]); unicode.IsDigit(c) {
					i = j
					continue
				}
			}
		}
		emit(j)
		i = j
	}
	s.buf = all[start:]
	s.scan = i - start
	return out
}

// Flush returns what is left, trimmed ("" if nothing), and empties s.
func (s *Sentences) Flush() string {
	out := strings.TrimSpace(s.buf)
	s.Reset()
	return out
}

// Reset drops what is held.
func (s *Sentences) Reset() { s.buf, s.scan = "", 0 }

func isTerminal(r rune) bool {
	switch r {
	case '.', '!', '?', ';', '…', '。', '！', '？', '；':
		return true
	}
	return false
}

// isWide reports full-width terminals, which end a sentence without a
// following space.
func isWide(r rune) bool {
	switch r {
	case '。', '！', '？', '；':
		return true
	}
	return false
}

func isCloser(r rune) bool {
	switch r {
	case '"', '\'', ')', ']', '}', '”', '’', '»', '」', '』', '）':
		return true
	}
	return false
}

// lastWord returns the lower-cased word that ends text, without leading
// punctuation such as an opening bracket.
func lastWord(text string) string {
	w := text
	if i := strings.LastIndexFunc(text, unicode.IsSpace); i >= 0 {
		_, n := utf8.DecodeRuneInString(text[i:])
		w = text[i+n:]
	}
	w = strings.TrimLeftFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	return strings.ToLower(w)
}

// isInitial reports a single letter ("J. Smith"), except the pronoun "I".
func isInitial(word string) bool {
	r, n := utf8.DecodeRuneInString(word)
	return n > 0 && n == len(word) && unicode.IsLetter(r) && r != 'i'
}
