// Package turntaking decides, between recognition and the agent, when the user
// has the floor: whether speech heard while the bot talks is an
// interruption or only a noise or a backchannel ("mm-hm") — pausing the
// bot's playout while it decides and resuming it after a false
// interruption — and when the user's turn has ended (endpointing that
// waits for the recognizer's final transcript and holds sentences that
// sound unfinished, for a time adapted to how the user pauses).
package turntaking

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Interruption is a barge-in policy: when user speech cuts off the bot.
type Interruption string

// Barge-in policies.
const (
	// Qualified (the default): speech while the bot is silent interrupts
	// at once (cancelling an answer being prepared); speech while the bot
	// speaks interrupts once it qualifies (MinDuration of voiced audio and
	// MinWords), and is otherwise a backchannel.
	Qualified Interruption = "qualified"
	// Immediate: every start of user speech interrupts at once, whether
	// or not the bot speaks (no minimum duration or words, no
	// backchannels).
	Immediate Interruption = "immediate"
	// Never: user speech never interrupts; its transcripts are answered
	// after the current answer. (Typed text still interrupts.)
	Never Interruption = "never"
)

// ErrConfig is returned (wrapped) by New for an invalid Config.
var ErrConfig = errors.New("turntaking: invalid config")

// Config tunes the stage. The zero value gives the defaults; a negative
// duration or count disables that rule.
type Config struct {
	// Interruption is the barge-in policy (default Qualified).
	Interruption Interruption `toml:"interruption"`
	// MinDuration is the voiced audio (counted by the turn detector from
	// the onset, its StartDuration included) that user speech needs while
	// the bot speaks before it interrupts (default 400 ms).
	MinDuration time.Duration `toml:"min_duration"`
	// MinWords is how many words, not counting Backchannels, the
	// transcript of that speech needs before it interrupts (default 1).
	MinWords int `toml:"min_words"`
	// Backchannels are words that never count toward MinWords (default
	// DefaultBackchannels).
	Backchannels []string `toml:"backchannels"`
	// BackchannelMax: speech over the bot whose transcript is one word
	// only, not one of InterruptWords, with less than BackchannelMax of
	// voiced audio (as counted for MinDuration) is a backchannel whatever
	// the word: a short "mm-hm" comes out of a recognizer as a short word
	// ("and", "um", "hm"), and a one-word interruption of substance rarely
	// stops there (default 700 ms; negative: only Backchannels words are).
	BackchannelMax time.Duration `toml:"backchannel_max"`
	// InterruptWords interrupt the bot as soon as the recognizer hears one
	// of them, whatever MinDuration says (default DefaultInterruptWords).
	InterruptWords []string `toml:"interrupt_words"`
	// SpotShare: speech over the bot also interrupts when the recognizer's
	// spotting pass (frame.Transcript.Spotted: a second pass over a short
	// utterance limited to SpotWords) heard InterruptWords for at least
	// this share of the words it spotted there (default 0.7; negative:
	// spotted words are not used). The full recognizer mishears a command
	// said alone ("wait" as "lake", worse over a phone line); a search
	// limited to interrupt words and backchannels finds it, its
	// backchannels and fillers taking up the rest of the speech. Requiring
	// the command to be most of it keeps a backchannel that the narrow
	// search matches in part to an interrupt word ("aitch" in a spelled
	// "M M H M" heard as "wait") from interrupting.
	SpotShare float64 `toml:"spot_share"`

	// ResumeFalseInterruption (default true) pauses the bot's playout the
	// moment the user starts speaking over it, and resumes it from where
	// it paused if the speech turns out not to be an interruption (a
	// cough, "mm-hm"). False keeps the bot talking while the speech is
	// judged. Only the Qualified policy judges speech.
	ResumeFalseInterruption *bool `toml:"resume_false_interruption"`
	// FalseInterruptionTimeout is how long the user must be quiet (no
	// voiced audio) during a pause, without their speech having
	// qualified, before the bot's answer resumes (default 200 ms). A
	// transcript that qualifies later still interrupts.
	FalseInterruptionTimeout time.Duration `toml:"false_interruption_timeout"`
	// EchoTail is how long after the bot's playout is paused the user's
	// audio may still carry the echo of what the client had been sent
	// ahead (the playout's lead, the room, capture and the uplink), and
	// the end of a noise that started the speech: voiced audio heard that
	// soon after a pause does not count toward MinDuration (default
	// 300 ms; negative: all voiced audio counts). Residual echo, or a
	// cough over it, stops when the playout does; the user's own speech
	// goes on.
	EchoTail time.Duration `toml:"echo_tail"`

	// FinalWait bounds how long after UserStoppedSpeaking the stage waits
	// for the recognizer's final transcript; past it the latest interim
	// hypothesis is taken as final (default 500 ms). A recognizer whose
	// hypothesis still changes after the stop is behind (a busy machine):
	// its final is then waited for up to eight times FinalWait from the
	// stop.
	FinalWait time.Duration `toml:"final_wait"`
	// Hold is how much longer the turn is kept open when its final
	// transcript ends with one of Continuations ("and", "um"): if the user
	// speaks again within Hold, both parts make one message; otherwise it is
	// answered when Hold runs out (default 1 s). Longer holds cut users
	// off less and answer them later.
	Hold time.Duration `toml:"hold"`
	// Continuations are the words that make a transcript sound unfinished
	// (default DefaultContinuations). A transcript also sounds unfinished
	// while a number is being read out ("my number is 4 1 5").
	Continuations []string `toml:"continuations"`
	// HoldMax bounds the hold as it adapts to the user (default 1.5 s;
	// negative: the hold does not adapt). The stage learns how long this
	// user pauses inside a turn (the gaps after which they went on) and
	// holds unfinished-sounding transcripts for 1.5 times that, between
	// Hold and HoldMax. A user who goes on after a turn that sounded
	// complete was answered (a premature end) makes the stage hold their
	// neutral-sounding transcripts too, a little longer each time, up to
	// HoldMax; a finished question is never held.
	HoldMax time.Duration `toml:"hold_max"`
}

// DefaultBackchannels are the words that do not interrupt the bot.
var DefaultBackchannels = []string{
	"mm", "mhm", "mm-hm", "mm-hmm", "hm", "hmm", "uh-huh", "uh", "huh", "um",
	"ah", "aha", "oh", "yeah", "yep", "yes", "ok", "okay", "right", "sure",
}

// DefaultInterruptWords are the words that always interrupt the bot.
var DefaultInterruptWords = []string{"stop", "wait", "no"}

// DefaultContinuations are the words after which a user is probably not done.
var DefaultContinuations = []string{
	"and", "but", "or", "so", "because", "um", "uh", "er", "like", "the", "a", "to", "with", "if",
}

func (c *Config) defaults() {
	if c.Interruption == "" {
		c.Interruption = Qualified
	}
	if c.MinDuration == 0 {
		c.MinDuration = 400 * time.Millisecond
	}
	if c.MinWords == 0 {
		c.MinWords = 1
	}
	if c.Backchannels == nil {
		c.Backchannels = DefaultBackchannels
	}
	if c.FinalWait == 0 {
		c.FinalWait = 500 * time.Millisecond
	}
	if c.Hold == 0 {
		c.Hold = time.Second
	}
	if c.Continuations == nil {
		c.Continuations = DefaultContinuations
	}
	if c.InterruptWords == nil {
		c.InterruptWords = DefaultInterruptWords
	}
	if c.ResumeFalseInterruption == nil {
		t := true
		c.ResumeFalseInterruption = &t
	}
	if c.FalseInterruptionTimeout == 0 {
		c.FalseInterruptionTimeout = 200 * time.Millisecond
	}
	if c.HoldMax == 0 {
		c.HoldMax = 1500 * time.Millisecond
	}
	if c.BackchannelMax == 0 {
		c.BackchannelMax = 700 * time.Millisecond
	}
	if c.EchoTail == 0 {
		c.EchoTail = 300 * time.Millisecond
	}
	if c.SpotShare == 0 {
		c.SpotShare = 0.7
	}
}

// SpotWords are the words a recognizer's spotting pass should look for
// (stt.Result.Spotted) for this configuration: InterruptWords and
// Backchannels (with the fillers among them, which take up what is neither).
func (c Config) SpotWords() []string {
	c.defaults()
	return append(slices.Clone(c.InterruptWords), c.Backchannels...)
}

// finalWaitMax bounds, in FinalWaits from the user's stop, how long a
// recognizer that is still revising its hypothesis is waited for.
const finalWaitMax = 8

// orphan is speech over the bot whose judgment was set aside, waiting for
// its words, when new speech began while the playout went on (a noise, or
// a word too short to qualify by its length): its transcripts, which a busy
// recognizer may deliver after the new speech has begun, are judged on
// their own and never count toward the new speech's.
type orphan struct {
	utt    uint64        // its UserStartedSpeaking's ID (0: none)
	voiced time.Duration // its voiced audio, as counted toward MinDuration
	paused time.Duration // the time the playout was paused for it
}

type due uint8

const (
	none      due = iota
	waitFinal     // UserStoppedSpeaking seen, final transcript not yet
	holding       // an unfinished-sounding transcript is held
)

// Processor is the turn-taking stage, the one owner of barge-in: it alone
// calls Runtime.Interrupt and emits the Interruption that makes every later
// stage drop the bot's answer (the speech detector only reports speech, and
// transports only push frames). It goes after speech recognition and before
// the agent.
//
// Whether the bot is speaking is read from Runtime.State (published by the
// output stage as it starts and stops playing), at the moment the user's
// speech is reported. Under the Qualified policy, a UserStartedSpeaking while
// the bot is silent interrupts the turn at once, cancelling any answer being
// prepared. While the bot speaks, the stage pauses first and decides after:
// it emits a PausePlayout at once (so the client hears silence within the
// playout's lead), then judges the speech. It interrupts once the speech
// qualifies (MinDuration of voiced audio, from UserSpeaking, and MinWords in
// a transcript) or the recognizer hears one of InterruptWords. Speech
// shorter than MinDuration (a cough, "mm-hm") resumes the answer once the
// user has been quiet for FalseInterruptionTimeout: a ResumePlayout, and the
// answer goes on from where it paused (more voiced audio pauses it again).
// Longer speech stays paused until the recognizer's final transcript judges
// its words (resumed if they are only backchannels), or FinalWait after the
// user stopped. If the speech ends without qualifying, the bot was
// never cut off: its final transcript is dropped and a UserBackchannel
// emitted instead. Each judgment of speech over the bot ends with a BargeIn
// (interrupted or resumed, and the time paused). With
// ResumeFalseInterruption off there is no pause: the bot talks on while the
// speech is judged. Under Immediate, every UserStartedSpeaking interrupts;
// under Never, none does.
//
// A typed final transcript (frame.Transcript with Typed set, pushed by a
// transport) always interrupts the bot's current answer, and is passed on at
// once in the new turn. Final transcripts of speech are released to the
// agent stamped with the current turn when the endpointing rules allow (see
// Config), each preceded by an Endpoint frame with the delay used. Timers
// run on a goroutine of the pipeline's (Runtime.Go) that emits from there;
// the state is guarded, so Process and the timers may race safely.
// UserSpeaking frames are consumed; every other frame is passed on.
type Processor struct {
	cfg    Config
	back   map[string]bool
	cont   map[string]bool
	stop   map[string]bool
	resume bool

	rt  pipeline.Runtime
	out pipeline.Emitter

	mu        sync.Mutex
	timer     *time.Timer
	due       due
	pending   bool              // speech over the bot that has not qualified yet
	voiced    time.Duration     // its voiced audio that counts toward MinDuration
	heard     time.Duration     // the detector's voiced count at its last UserSpeaking (-1: none yet)
	tail      time.Duration     // its voiced audio heard within EchoTail of a pause
	words     int               // its words that are not Backchannels
	said      int               // all its words
	stopped   bool              // the user stopped speaking (waiting for the final)
	held      string            // transcript held for endpointing
	heldSrc   *frame.Transcript // the recognizer's final behind held
	interim   string            // latest interim hypothesis since the user started
	utt       uint64            // ID of the latest UserStartedSpeaking
	judging   uint64            // ID of the UserStartedSpeaking that opened the pending speech
	orphan    orphan            // earlier speech over the bot whose words are still to come
	skipFinal bool              // an interim was released in place of the coming final
	cut       bool              // the user's speech interrupted the bot: a bare command in its final is held

	// Pause first, decide after.
	quiet    *time.Timer   // the user's quiet time during a pause
	paused   bool          // a PausePlayout is in force
	pausedAt time.Time     // when it began
	pauseSum time.Duration // time paused while the pending speech is judged

	// Endpointing.
	stoppedAt  time.Time     // when UserStoppedSpeaking was seen
	holdUsed   time.Duration // the hold applied to the turn being released
	gap        time.Duration // the user's typical pause inside a turn (0: none seen)
	neutral    time.Duration // hold for neutral-sounding transcripts (grows on premature ends)
	releasedAt time.Time     // when the last spoken turn was released
}

// New returns a turn-taking stage. It fails with ErrConfig for an unknown
// Interruption policy.
func New(cfg Config) (*Processor, error) {
	cfg.defaults()
	switch cfg.Interruption {
	case Qualified, Immediate, Never:
	default:
		return nil, fmt.Errorf("%w: interruption %q (want %q, %q or %q)", ErrConfig, cfg.Interruption, Qualified, Immediate, Never)
	}
	set := func(ws []string) map[string]bool {
		m := make(map[string]bool, len(ws))
		for _, w := range ws {
			m[strings.ToLower(w)] = true
		}
		return m
	}
	return &Processor{
		cfg: cfg, back: set(cfg.Backchannels), cont: set(cfg.Continuations), stop: set(cfg.InterruptWords),
		resume: *cfg.ResumeFalseInterruption && cfg.FalseInterruptionTimeout > 0,
	}, nil
}

// Name implements pipeline.Namer.
func (p *Processor) Name() string { return "turntaking" }

// Start implements pipeline.Starter: it starts the timer goroutine.
func (p *Processor) Start(_ context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	p.rt, p.out = rt, out
	p.timer = time.NewTimer(time.Hour)
	p.timer.Stop()
	p.quiet = time.NewTimer(time.Hour)
	p.quiet.Stop()
	rt.Go(func(ctx context.Context) {
		defer p.timer.Stop()
		defer p.quiet.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.timer.C:
				p.fire()
			case <-p.quiet.C:
				p.quietFor()
			}
		}
	})
	return nil
}

// Process implements pipeline.Processor.
func (p *Processor) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch f := f.(type) {
	case *frame.UserStartedSpeaking:
		p.interim, p.skipFinal = "", false
		p.utt = f.ID
		now := time.Now()
		if p.stopped && !p.stoppedAt.IsZero() && (p.due != none || p.held != "") {
			// The user went on after a pause inside their turn.
			p.learnGap(now.Sub(p.stoppedAt))
		} else if !p.releasedAt.IsZero() && p.cfg.HoldMax > 0 && now.Sub(p.releasedAt) < p.cfg.HoldMax && !p.rt.State().BotSpeaking() {
			// The user went on right after their turn was answered,
			// before the answer was heard: it ended too soon.
			p.learnGap(now.Sub(p.releasedAt) + p.holdUsed)
			p.neutral = min(p.neutral+150*time.Millisecond, p.cfg.HoldMax)
		}
		p.stopped, p.releasedAt = false, time.Time{}
		if p.due != none {
			p.setDue(none, 0) // the user goes on: hold what was said
		}
		unjudged := p.pending
		wasPending := p.pending && p.paused
		p.pending = false
		switch {
		case p.cfg.Interruption == Never:
		case p.cfg.Interruption == Qualified && (p.rt.State().BotSpeaking() || wasPending):
			if !wasPending {
				// New speech over the bot (not the same speech going
				// on during its pause): judged afresh. Speech before
				// it still waiting for its words is judged by them
				// when they come.
				if unjudged && p.judging != 0 {
					p.orphan = orphan{utt: p.judging, voiced: p.voiced, paused: p.pauseSum}
				}
				p.voiced, p.words, p.said, p.pauseSum, p.tail = 0, 0, 0, 0, 0
				p.judging = f.ID
			}
			p.heard = -1
			p.pending = true
			p.pause(out, now)
		default:
			p.interrupt(out, "user started speaking")
		}
	case *frame.BotStartedSpeaking:
		if !p.releasedAt.IsZero() {
			// The answer to the last turn is being heard: that turn did
			// not end too soon, and the neutral hold relaxes.
			p.releasedAt = time.Time{}
			p.neutral = max(0, p.neutral-50*time.Millisecond)
		}
	case *frame.UserSpeaking:
		if p.pending {
			now := time.Now()
			p.addVoiced(f.Voiced, now)
			p.pause(out, now)
			p.check(out)
		}
		return nil // consumed
	case *frame.UserStoppedSpeaking:
		p.stopped, p.stoppedAt = true, time.Now()
		switch {
		case p.pending && p.short():
			p.unpause(out, p.stoppedAt) // the noise is over
		case p.pending && p.paused:
			// Speech long enough to be words: the recognizer decides,
			// but no later than FinalWait from now.
			p.quiet.Reset(p.cfg.FinalWait)
		case !p.pending:
			p.setDue(waitFinal, p.cfg.FinalWait)
		}
	case *frame.Transcript:
		if f.Typed {
			if !f.Final {
				break
			}
			if f.Deferred {
				// Text for the conversation, not answered now: the bot
				// goes on, and the note goes on in the current turn.
				c := *f
				c.Turn = p.rt.Turn()
				out.Emit(&c)
				return nil
			}
			// A typed message cuts off whatever the bot is saying, and
			// is answered at once, in the new turn.
			p.interrupt(out, "user typed")
			p.release(f, f.Text, out)
			return nil
		}
		if f.Utterance != 0 && f.Utterance == p.orphan.utt {
			if p.late(f, out) {
				return nil
			}
			break
		}
		// Of the speech being judged over the bot (an earlier
		// utterance's transcripts are not).
		judged := p.pending && (f.Utterance == 0 || f.Utterance >= p.judging)
		if !f.Final {
			if f.Utterance != 0 && f.Utterance < p.utt {
				break // an earlier utterance's hypothesis: stale
			}
			if p.due == waitFinal && f.Text != p.interim {
				// The recognizer is still working through the user's
				// audio after the stop (a busy machine): its
				// hypotheses are stale until it has caught up, and
				// when it stalls between them says nothing. Wait for
				// its final, up to finalWaitMax FinalWaits from the
				// stop.
				if d := time.Until(p.stoppedAt.Add(finalWaitMax * p.cfg.FinalWait)); d > 0 {
					p.setDue(waitFinal, d)
				}
			}
			p.interim = f.Text
			if judged {
				p.words, p.said = max(p.words, p.count(f.Text)), max(p.said, len(words(f.Text)))
				if p.stopWord(f.Text) {
					p.interrupt(out, "user said stop")
				} else {
					p.check(out)
				}
			}
			break
		}
		if judged {
			p.words, p.said = max(p.words, p.count(f.Text)), max(p.said, len(words(f.Text)))
			if !p.qualifies() && !p.command(f) {
				p.unpause(out, time.Now())
				p.pending = false
				out.Emit(&frame.BargeIn{Outcome: frame.BargeInResumed, Paused: p.pauseSum})
				out.Emit(&frame.UserBackchannel{Text: f.Text})
				return nil
			}
			p.interrupt(out, "user interrupted")
			f = p.commanded(f)
		}
		p.final(f, out)
		return nil
	}
	out.Pass(f)
	return nil
}

// late judges a transcript of the orphan speech: a stop word, or a final
// that qualifies with the orphan's voiced audio, interrupts (and a final is
// then the start of the user's turn, held while they speak on); a final
// that does not is a backchannel, consumed. It reports whether f was consumed. p.mu held.
func (p *Processor) late(f *frame.Transcript, out pipeline.Emitter) bool {
	o := p.orphan
	if !f.Final {
		if p.stopWord(f.Text) {
			p.orphan = orphan{}
			p.interrupt(out, "user said stop")
		}
		return false
	}
	p.orphan = orphan{}
	ws := words(f.Text)
	if p.qualify(o.voiced, p.count(f.Text), len(ws)) || p.command(f) {
		p.interrupt(out, "user interrupted")
		if !p.stopped {
			// The user is speaking again ("wait, stop please" split
			// at its comma): the words that interrupted start a turn
			// that goes on, and the next final joins them. Released
			// now, they would be answered over the user's next words.
			p.setDue(none, 0)
			p.held, p.heldSrc = join(p.held, p.commanded(f).Text), nil
			return true
		}
		p.final(p.commanded(f), out)
		return true
	}
	out.Emit(&frame.BargeIn{Outcome: frame.BargeInResumed, Paused: o.paused})
	out.Emit(&frame.UserBackchannel{Text: f.Text})
	return true
}

// addVoiced takes the detector's voiced count of the pending speech (from its
// onset, StartDuration included): audio voiced within EchoTail of the
// pause does not count. The first UserSpeaking after an onset is the
// baseline (its StartDuration was heard before the pause). p.mu held.
func (p *Processor) addVoiced(voiced time.Duration, now time.Time) {
	if p.heard < 0 {
		p.heard = 0
		if p.voiced == 0 {
			p.heard = voiced
			p.voiced = voiced
			return
		}
	}
	d := voiced - p.heard
	if d <= 0 {
		return
	}
	p.heard = voiced
	if p.paused && p.cfg.EchoTail > 0 && now.Sub(p.pausedAt) < p.cfg.EchoTail {
		p.tail += d
		return
	}
	p.voiced += d
}

// pause pauses the bot's playout, if it may and is not paused, and (re)arms
// the quiet timer: called on each sign of the user's voice during pending
// speech. p.mu held.
func (p *Processor) pause(out pipeline.Emitter, now time.Time) {
	if !p.resume {
		return
	}
	if !p.paused {
		p.paused, p.pausedAt = true, now
		out.Emit(&frame.PausePlayout{Meta: frame.Meta{Turn: p.rt.Turn()}, Reason: "user speaking over the bot"})
	}
	p.quiet.Reset(p.cfg.FalseInterruptionTimeout)
}

// unpause resumes a paused playout (the speech so far was not an
// interruption). p.mu held.
func (p *Processor) unpause(out pipeline.Emitter, now time.Time) {
	p.quiet.Stop()
	if !p.paused {
		return
	}
	p.paused = false
	d := now.Sub(p.pausedAt)
	p.pauseSum += d
	out.Emit(&frame.ResumePlayout{Meta: frame.Meta{Turn: p.rt.Turn()}, Paused: d})
}

// quietFor runs on the timer goroutine when the user has been quiet for
// FalseInterruptionTimeout during a pause.
func (p *Processor) quietFor() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending && (p.short() || p.stopped) {
		p.unpause(p.out, time.Now())
	}
}

// short reports whether the pending speech is too short to qualify
// (under MinDuration): a noise or a backchannel, resumed on quiet. Longer
// speech stays paused until its words are judged. p.mu held.
func (p *Processor) short() bool {
	return p.cfg.MinDuration >= 0 && p.voiced < p.cfg.MinDuration
}

// check interrupts once pending speech qualifies. p.mu held.
func (p *Processor) check(out pipeline.Emitter) {
	if p.qualifies() {
		p.interrupt(out, "user interrupted")
	}
}

func (p *Processor) qualifies() bool { return p.qualify(p.voiced, p.words, p.said) }

// qualify reports whether speech with voiced audio, words that are not
// backchannels and said words in all is an interruption.
func (p *Processor) qualify(voiced time.Duration, words, said int) bool {
	if said == 1 && p.cfg.BackchannelMax > 0 && voiced < p.cfg.BackchannelMax {
		return false // one short word: a backchannel, whatever it was heard as
	}
	return (p.cfg.MinDuration < 0 || voiced >= p.cfg.MinDuration) &&
		(p.cfg.MinWords < 0 || words >= p.cfg.MinWords)
}

// interrupt starts a new turn and tells every stage; speech being judged
// over the bot is judged an interruption. p.mu held.
func (p *Processor) interrupt(out pipeline.Emitter, reason string) {
	now := time.Now()
	judged := p.pending
	if p.paused {
		p.pauseSum += now.Sub(p.pausedAt)
	}
	// The Interruption ends the pause at the playout.
	p.quiet.Stop()
	p.pending, p.paused = false, false
	n := p.rt.Interrupt(reason)
	p.cut = judged
	if judged {
		out.Emit(&frame.BargeIn{Meta: frame.Meta{Turn: n}, Outcome: frame.BargeInInterrupted, Paused: p.pauseSum})
	}
	out.Emit(&frame.Interruption{Meta: frame.Meta{Turn: n}, Reason: reason})
}

// final handles the recognizer's final transcript. p.mu held.
func (p *Processor) final(f *frame.Transcript, out pipeline.Emitter) {
	text := f.Text
	if p.skipFinal {
		p.skipFinal = false
		return // its interim was released already
	}
	p.setDue(none, 0)
	text = join(p.held, text)
	p.held, p.heldSrc, p.interim = "", nil, ""
	if text == "" {
		return
	}
	hold := p.holdFor(text)
	if p.cut && p.cfg.Hold > 0 && p.onlyStop(text) {
		// A bare "wait" or "stop" that cut the bot off is seldom all
		// the user has to say: "wait, stop please, I have a
		// question". Answered at once, it would be answered over them.
		hold = max(hold, p.unfinishedHold())
	}
	p.cut = false
	if hold > 0 {
		p.held, p.heldSrc, p.holdUsed = text, f, hold
		p.setDue(holding, hold)
		return
	}
	p.holdUsed = 0
	p.release(f, text, out)
}

// release sends the user's turn on, in the current turn (an interruption
// here may have advanced it). When text is the recognizer's final src
// unchanged, it goes as the same frame (same ID, so observers do not report
// the transcript twice); otherwise as a new one. A spoken turn is preceded
// by an Endpoint frame.
func (p *Processor) release(src *frame.Transcript, text string, out pipeline.Emitter) {
	if src == nil || !src.Typed {
		now := time.Now()
		var d time.Duration
		if p.stopped && !p.stoppedAt.IsZero() {
			d = now.Sub(p.stoppedAt)
		}
		out.Emit(&frame.Endpoint{Meta: frame.Meta{Turn: p.rt.Turn()}, Delay: d, Hold: p.holdUsed})
		p.releasedAt = now
	}
	p.holdUsed = 0
	if src != nil && src.Text == text {
		c := *src
		c.Turn = p.rt.Turn()
		out.Emit(&c)
		return
	}
	out.Emit(&frame.Transcript{Meta: frame.Meta{Turn: p.rt.Turn()}, Text: text, Final: true})
}

// fire runs on the timer goroutine.
func (p *Processor) fire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.due {
	case waitFinal:
		// The recognizer is late: answer its latest hypothesis.
		p.due = none
		if text := join(p.held, p.interim); strings.TrimSpace(p.interim) != "" {
			p.held, p.heldSrc, p.interim, p.skipFinal = "", nil, "", true
			p.release(nil, text, p.out)
		}
	case holding:
		p.due = none
		text, src := p.held, p.heldSrc
		p.held, p.heldSrc = "", nil
		p.release(src, text, p.out)
	}
}

// setDue arms (d > 0) or disarms the timer. p.mu held.
func (p *Processor) setDue(what due, d time.Duration) {
	p.due = what
	if what == none || d <= 0 {
		p.due = none
		p.timer.Stop()
		return
	}
	p.timer.Reset(d)
}

// count returns the words of s that are not backchannels.
func (p *Processor) count(s string) int {
	n := 0
	for _, w := range words(s) {
		if !p.back[w] {
			n++
		}
	}
	return n
}

// command reports whether a final transcript of speech over the bot says
// one of InterruptWords: in its text, or spotted (SpotShare).
func (p *Processor) command(f *frame.Transcript) bool {
	if p.stopWord(f.Text) {
		return true
	}
	if p.cfg.SpotShare < 0 || len(f.Spotted) == 0 {
		return false
	}
	var all, stop time.Duration
	for _, w := range f.Spotted {
		d := w.End - w.Start
		all += d
		if p.stop[strings.ToLower(w.Text)] {
			stop += d
		}
	}
	return stop > 0 && float64(stop) >= p.cfg.SpotShare*float64(all)
}

// commanded is f as the user's turn after it interrupted the bot: when its
// text has none of InterruptWords and its words are only a short
// utterance's, its spotted interrupt words ("wait" for the full
// recognizer's "lake") are what the user said, so the agent answers them.
func (p *Processor) commanded(f *frame.Transcript) *frame.Transcript {
	if p.stopWord(f.Text) || !p.command(f) || p.count(f.Text) > 3 {
		return f
	}
	var ws []string
	for _, w := range f.Spotted {
		if p.stop[strings.ToLower(w.Text)] {
			ws = append(ws, strings.ToLower(w.Text))
		}
	}
	c := *f
	c.Text = strings.Join(ws, " ")
	return &c
}

// onlyStop reports whether s is InterruptWords only.
func (p *Processor) onlyStop(s string) bool {
	ws := words(s)
	for _, w := range ws {
		if !p.stop[w] {
			return false
		}
	}
	return len(ws) > 0
}

// stopWord reports whether s has one of InterruptWords.
func (p *Processor) stopWord(s string) bool {
	for _, w := range words(s) {
		if p.stop[w] {
			return true
		}
	}
	return false
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '\'' || r == '-' || r > 127)
	})
}

func join(a, b string) string {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}
