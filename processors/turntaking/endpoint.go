package turntaking

import (
	"strings"
	"time"
)

// Completeness is how finished a user's transcript sounds.
type Completeness uint8

// Completeness judgments.
const (
	// Neutral: nothing says either way (most statements).
	Neutral Completeness = iota
	// Complete: a finished question ("what time is it").
	Complete
	// Unfinished: it trails off (a continuation word, a filler, a number
	// being read out).
	Unfinished
)

func (c Completeness) String() string {
	switch c {
	case Complete:
		return "complete"
	case Unfinished:
		return "unfinished"
	}
	return "neutral"
}

// questionStarts are the words that open a question.
var questionStarts = map[string]bool{
	"what": true, "when": true, "where": true, "who": true, "whom": true, "whose": true, "why": true, "which": true, "how": true,
	"is": true, "are": true, "am": true, "was": true, "were": true, "do": true, "does": true, "did": true,
	"can": true, "could": true, "will": true, "would": true, "should": true, "shall": true, "may": true,
	"have": true, "has": true, "had": true, "isn't": true, "aren't": true, "don't": true, "doesn't": true, "didn't": true,
	"can't": true, "won't": true,
}

// numberWords are the words of a number read out.
var numberWords = map[string]bool{
	"zero": true, "oh": true, "one": true, "two": true, "three": true, "four": true, "five": true, "six": true,
	"seven": true, "eight": true, "nine": true, "ten": true, "eleven": true, "twelve": true, "thirteen": true,
	"fourteen": true, "fifteen": true, "sixteen": true, "seventeen": true, "eighteen": true, "nineteen": true,
	"twenty": true, "thirty": true, "forty": true, "fifty": true, "sixty": true, "seventy": true, "eighty": true,
	"ninety": true, "hundred": true, "thousand": true, "double": true, "triple": true,
}

// numberLeads are words after which a single number is probably the start
// of a longer one ("my number is four ...").
var numberLeads = map[string]bool{"is": true, "number": true, "code": true, "was": true, "account": true, "zip": true, "pin": true}

func isNumber(w string) bool {
	if numberWords[w] {
		return true
	}
	if w == "" {
		return false
	}
	for _, r := range w {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Judge says how finished text sounds: Unfinished when it ends with one
// of continuations (a conjunction, an article, a preposition, a filler)
// or while a number is being read out (its last two words are numbers, or
// a number follows "is", "number", "code"); Complete for a question (it
// ends with "?", or opens with a question word and has at least three
// words); Neutral otherwise.
func Judge(text string, continuations map[string]bool) Completeness {
	ws := words(text)
	if len(ws) == 0 {
		return Neutral
	}
	last := ws[len(ws)-1]
	if continuations[last] {
		return Unfinished
	}
	if isNumber(last) && len(ws) >= 2 && (isNumber(ws[len(ws)-2]) || numberLeads[ws[len(ws)-2]]) {
		return Unfinished
	}
	if strings.HasSuffix(strings.TrimSpace(text), "?") || questionStarts[ws[0]] && len(ws) >= 3 {
		return Complete
	}
	return Neutral
}

// holdFor returns how long to hold text before answering it: the hold for
// an unfinished-sounding transcript (adapted to the user's pauses), the
// learnt hold for a neutral one (zero until the user was cut off), none
// for a complete one. p.mu held.
func (p *Processor) holdFor(text string) time.Duration {
	if p.cfg.Hold <= 0 {
		return 0
	}
	switch Judge(text, p.cont) {
	case Unfinished:
		return p.unfinishedHold()
	case Neutral:
		return p.neutral
	}
	return 0
}

// unfinishedHold is Hold, or, once the user's pauses are known, 1.5 times
// their typical pause, between Hold and HoldMax: the hold only grows for a
// slow speaker. (Shrinking it for a user whose pauses were short cut the
// same user off at their next, longer pause, on the endpointing set: a
// speaker's pauses inside a turn vary more than their average says.)
// p.mu held.
func (p *Processor) unfinishedHold() time.Duration {
	if p.cfg.HoldMax <= 0 || p.gap == 0 {
		return p.cfg.Hold
	}
	return min(max(p.gap*3/2, p.cfg.Hold), max(p.cfg.HoldMax, p.cfg.Hold))
}

// learnGap folds one observed pause inside a turn (as the stage sees it:
// after the detector's stop) into the user's typical pause, a moving
// average that weighs the latest a quarter. p.mu held.
func (p *Processor) learnGap(d time.Duration) {
	if p.cfg.HoldMax <= 0 || d <= 0 || d > 2*p.cfg.HoldMax {
		return
	}
	if p.gap == 0 {
		p.gap = d
		return
	}
	p.gap = (3*p.gap + d) / 4
}
