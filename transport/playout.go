package transport

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// AudioWriter sends audio to the client. WriteAudio is called from the
// playout goroutine only; it must not retain pcm and must not block for long
// (a transport queues the bytes for its connection writer).
type AudioWriter interface {
	WriteAudio(pcm []int16) error
}

// AudioTap receives a copy of the audio the playout sends, for an echo
// canceller's reference. Played is called on the playout goroutine, once per
// chunk written, with the wall time at which the client is expected to start
// playing the chunk (the playout assumes the client plays in real time from
// the first chunk of a speaking episode). It must not retain pcm and must
// not block.
type AudioTap interface {
	Played(pcm []int16, at time.Time)
}

// PlayoutConfig configures a Playout.
type PlayoutConfig struct {
	// Format is the format of the OutputAudio the stage receives and of the
	// audio it writes (default frame.Mono16k; Channels 0 means mono).
	Format frame.Format
	// Chunk is the duration of each write (default 20 ms).
	Chunk time.Duration
	// Lead is how far ahead of real time audio may be sent (default 100 ms):
	// enough to ride out network jitter, small enough that a client which
	// drops its buffer on `interrupted` stops at once.
	Lead time.Duration
	// Grace is how long the queue may run dry mid-answer before the bot is
	// considered to have stopped speaking (default 100 ms).
	Grace time.Duration
}

// Playout is the last stage of a transport's pipeline: it queues the bot's
// OutputAudio in a buffer that an Interruption clears, and writes it to the
// client paced in real time (Chunk at a time, at most Lead ahead) from its
// own goroutine. It emits BotStartedSpeaking and BotStoppedSpeaking
// downstream, then sends the same frame upstream so that earlier stages
// (the turn-taking stage, the VAD) know whether the bot is speaking;
// observers see it once, as a new frame, on the downstream hop. As each
// sentence finishes playing it sends BotSpoke upstream.
//
// On an Interruption, the words played of the sentence being played are
// sent upstream as a BotSpoke of that sentence's turn, so the conversation
// keeps only what the user heard. Where the synthesizer reported word
// timings (OutputAudio.Words), they are exactly the words whose audio was
// played to its end; otherwise they are estimated in proportion to how much
// of the sentence's audio was played (by characters, a word counting once
// half of it was heard).
// Sentences start at their TTSText (or at the end of the previous sentence)
// and end at the OutputAudio whose Spoken names them.
//
// A chunk is written only while the audio sent stays within Lead of what the
// client has played (assumed to play in real time from the first chunk of a
// speaking episode). An Interruption drops the queue and every sentence not
// yet played; the BotStoppedSpeaking{Interrupted: true} it causes is always
// emitted after the BotStartedSpeaking of the episode it ends. Playout must
// be the last stage of its pipeline.
//
// A PausePlayout (the turn-taking stage heard the user start speaking over
// the bot) stops the writes at once and holds the position: audio keeps
// being queued, nothing is dropped, and the client hears silence once it has
// played the at most Lead it was sent ahead. A ResumePlayout goes on from
// the first sample not sent, so no sample is lost or sent twice; an
// Interruption ends the pause and drops the queue as usual. While paused
// with audio queued the bot is still speaking (its answer is suspended, not
// over); BotSpoke reports only what was played. Pause and resume frames of
// an older turn are ignored.
type Playout struct {
	cfg PlayoutConfig
	w   AudioWriter
	tap AudioTap

	rt  pipeline.Runtime
	out pipeline.Emitter

	// emitMu orders the speaking events: it is held by the pacing goroutine
	// across a tick's writes and downstream events, and by Process while it
	// handles an Interruption. It is taken before mu.
	emitMu sync.Mutex

	mu       sync.Mutex
	queue    []int16 // audio not yet sent
	queueT   uint32  // turn of the queued audio
	markers  []marker
	sent     int64 // samples sent in total
	queued   int64 // samples queued in total (sent + len(queue))
	speaking bool
	paused   bool      // a PausePlayout holds the position until resumed
	epStart  time.Time // when the current speaking episode started
	epSent   int64     // sent at epStart
	wake     chan struct{}
	idle     chan struct{} // closed while nothing is queued or playing

	// The sentence whose audio is being queued: where it starts, and its
	// text and turn once its TTSText was seen.
	sentFrom  int64
	sentText  string
	sentTurn  uint32
	sentWords []frame.Word // its word timings so far
}

type marker struct {
	from  int64 // sample position where the sentence starts
	at    int64 // sample position where the sentence ends
	turn  uint32
	text  string
	words []frame.Word // the synthesizer's word timings, if any
}

// NewPlayout returns a playout stage writing to w.
func NewPlayout(w AudioWriter, cfg PlayoutConfig) *Playout {
	if cfg.Chunk <= 0 {
		cfg.Chunk = 20 * time.Millisecond
	}
	if cfg.Lead <= 0 {
		cfg.Lead = 100 * time.Millisecond
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 100 * time.Millisecond
	}
	if cfg.Format.SampleRate <= 0 {
		cfg.Format.SampleRate = frame.Mono16k.SampleRate
	}
	if cfg.Format.Channels <= 0 {
		cfg.Format.Channels = 1
	}
	idle := make(chan struct{})
	close(idle)
	return &Playout{cfg: cfg, w: w, wake: make(chan struct{}, 1), idle: idle}
}

// Name implements pipeline.Namer.
func (p *Playout) Name() string { return "playout" }

// SetTap makes the playout copy every chunk it writes to t (nil for none).
// It must be called before Start.
func (p *Playout) SetTap(t AudioTap) { p.tap = t }

// Start implements pipeline.Starter: it starts the pacing goroutine.
func (p *Playout) Start(_ context.Context, rt pipeline.Runtime, out pipeline.Emitter) error {
	p.rt, p.out = rt, out
	rt.Go(p.pace)
	return nil
}

// Process implements pipeline.Processor.
func (p *Playout) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	switch f := f.(type) {
	case *frame.OutputAudio:
		if f.Turn < p.rt.Turn() {
			return nil // stale
		}
		if len(f.Samples) == 0 && f.Spoken == "" {
			return nil
		}
		p.mu.Lock()
		if len(p.queue) > 0 && f.Turn != p.queueT {
			p.dropLocked() // a newer turn's answer replaces the old one
		}
		if len(f.Samples) > 0 {
			select {
			case <-p.idle:
				p.idle = make(chan struct{}) // busy until this has played
			default:
			}
		}
		p.queueT = f.Turn
		p.queue = append(p.queue, f.Samples...)
		p.queued += int64(len(f.Samples))
		p.sentWords = append(p.sentWords, f.Words...)
		if f.Spoken != "" {
			p.markers = append(p.markers, marker{from: p.sentFrom, at: p.queued, turn: f.Turn, text: f.Spoken, words: p.sentWords})
			p.sentFrom, p.sentText, p.sentWords = p.queued, "", nil
		}
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
		return nil // consumed
	case *frame.TTSText:
		p.mu.Lock()
		if p.queueT != f.Turn {
			// A new answer: whatever is queued will be replaced.
			p.sentFrom = p.queued - int64(len(p.queue))
		} else {
			p.sentFrom = p.queued
		}
		p.sentText, p.sentTurn, p.sentWords = f.Text, f.Turn, nil
		p.mu.Unlock()
	case *frame.PausePlayout:
		if f.Turn < p.rt.Turn() {
			return nil // stale: its answer is gone
		}
		p.mu.Lock()
		p.paused = true
		p.mu.Unlock()
	case *frame.ResumePlayout:
		if f.Turn < p.rt.Turn() {
			return nil // stale
		}
		p.mu.Lock()
		p.paused = false
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
	case *frame.Interruption:
		p.emitMu.Lock()
		p.mu.Lock()
		p.paused = false
		was := p.speaking // queued audio not yet sent was never heard
		var ups []frame.Frame
		if was {
			ups = p.heardLocked(p.playedLocked(time.Now()))
		}
		p.dropLocked()
		p.sentText, p.sentWords = "", nil
		p.speaking = false
		p.settleLocked()
		p.mu.Unlock()
		if was {
			stop := &frame.BotStoppedSpeaking{Interrupted: true}
			out.Emit(stop)
			out.EmitUp(stop)
		}
		p.emitMu.Unlock()
		for _, u := range ups {
			out.EmitUp(u)
		}
	}
	out.Pass(f)
	return nil
}

// Drain implements pipeline.Drainer: it waits until the queue has played.
func (p *Playout) Drain(ctx context.Context, _ pipeline.Emitter) error {
	p.mu.Lock()
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dropLocked discards queued audio and unplayed markers.
func (p *Playout) dropLocked() {
	p.queued -= int64(len(p.queue))
	p.queue = p.queue[:0]
	p.markers = p.markers[:0]
	p.sentFrom = p.queued
}

// playedLocked is the sample position the client has played by now.
func (p *Playout) playedLocked(now time.Time) int64 {
	if !p.speaking {
		return p.sent
	}
	rate := int64(p.cfg.Format.SampleRate * p.cfg.Format.Channels)
	return min(p.sent, p.epSent+int64(now.Sub(p.epStart))*rate/int64(time.Second))
}

// heardLocked returns BotSpoke frames for what was played up to position pl
// of the sentences still held: whole sentences played but not yet reported,
// then the words heard of the one cut off.
func (p *Playout) heardLocked(pl int64) []frame.Frame {
	var ups []frame.Frame
	for _, m := range p.markers {
		if m.at <= pl {
			ups = append(ups, &frame.BotSpoke{Meta: frame.Meta{Turn: m.turn}, Text: m.text})
			continue
		}
		if pl > m.from {
			w := ""
			if len(m.words) > 0 {
				w = TimedWords(m.text, m.words, p.cfg.Format.Duration(int(pl-m.from)))
			} else {
				w = PlayedWords(m.text, float64(pl-m.from)/float64(m.at-m.from))
			}
			if w != "" {
				ups = append(ups, &frame.BotSpoke{Meta: frame.Meta{Turn: m.turn}, Text: w})
			}
		}
		return ups
	}
	// The sentence being queued has no end yet: with word timings, the
	// words whose audio was played are known; without, its audio so far
	// is all that is known of its length, so this overestimates what was
	// heard.
	if p.sentText != "" && p.sentTurn == p.queueT && pl > p.sentFrom && p.queued > p.sentFrom {
		w := ""
		if len(p.sentWords) > 0 {
			w = TimedWords(p.sentText, p.sentWords, p.cfg.Format.Duration(int(pl-p.sentFrom)))
		} else {
			w = PlayedWords(p.sentText, float64(pl-p.sentFrom)/float64(p.queued-p.sentFrom))
		}
		if w != "" {
			ups = append(ups, &frame.BotSpoke{Meta: frame.Meta{Turn: p.sentTurn}, Text: w})
		}
	}
	return ups
}

// TimedWords returns the words of text whose audio was played to its end
// when played of the sentence's audio was: the first of words (the
// synthesizer's timings, in the order spoken) that end by then. They are
// given as text spells them when the synthesizer's words are text's words
// (it may drop punctuation), else as the synthesizer spelled them.
func TimedWords(text string, words []frame.Word, played time.Duration) string {
	n := 0
	for n < len(words) && words[n].End <= played {
		n++
	}
	fields := strings.Fields(text)
	same := n <= len(fields)
	for i := 0; same && i < n; i++ {
		same = bare(fields[i]) == bare(words[i].Text)
	}
	if same {
		return strings.Join(fields[:n], " ")
	}
	ws := make([]string, 0, n)
	for _, w := range words[:n] {
		if t := strings.TrimSpace(w.Text); t != "" {
			ws = append(ws, t)
		}
	}
	return strings.Join(ws, " ")
}

// bare is a word's letters and digits, lower-cased.
func bare(w string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, w)
}

// PlayedWords returns the words of text heard when the fraction played of
// its audio was played, assuming speech proportional to characters: a word
// counts as heard once the first half of it was played.
func PlayedWords(text string, played float64) string {
	ws := strings.Fields(text)
	total := 0
	for _, w := range ws {
		total += len(w) + 1
	}
	total--
	if total <= 0 || played <= 0 {
		return ""
	}
	upTo := played * float64(total)
	pos, n := 0, 0
	for _, w := range ws {
		if float64(pos)+float64(len(w))/2 > upTo {
			break
		}
		pos += len(w) + 1
		n++
	}
	return strings.Join(ws[:n], " ")
}

// settleLocked marks the stage idle (releasing Drain) once nothing is
// queued or playing.
func (p *Playout) settleLocked() {
	if p.speaking || len(p.queue) > 0 {
		return
	}
	select {
	case <-p.idle:
	default:
		close(p.idle)
	}
}

// pace runs on its own goroutine until the session ends.
func (p *Playout) pace(ctx context.Context) {
	t := time.NewTicker(p.cfg.Chunk / 2)
	defer t.Stop()
	chunk := max(p.cfg.Format.Samples(p.cfg.Chunk), 1)
	buf := make([]int16, chunk)
	for {
		if p.resting() {
			// Nothing queued or playing: sleep until audio arrives
			// instead of ticking (an idle session costs no CPU).
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			}
			t.Reset(p.cfg.Chunk / 2)
		} else {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-p.wake:
			}
		}
		p.tick(time.Now(), buf)
	}
}

// resting reports whether the pacer has nothing to do until woken.
func (p *Playout) resting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.speaking && len(p.queue) == 0 && len(p.markers) == 0
}

func (p *Playout) tick(now time.Time, buf []int16) {
	rate := int64(p.cfg.Format.SampleRate * max(p.cfg.Format.Channels, 1))
	lead := int64(p.cfg.Format.Samples(p.cfg.Lead))
	var events []frame.Frame
	var ups []frame.Frame
	p.emitMu.Lock()
	p.mu.Lock()
	played := func() int64 { return p.playedLocked(now) }
	for len(p.queue) > 0 && !p.paused {
		// Send a chunk only if, once sent, it stays within the lead.
		if p.speaking && p.sent+int64(min(len(buf), len(p.queue)))-played() > lead {
			break
		}
		if !p.speaking {
			p.speaking, p.epStart, p.epSent = true, now, p.sent
			// Announce the episode before its first audio.
			turn := p.queueT
			p.mu.Unlock()
			start := &frame.BotStartedSpeaking{Meta: frame.Meta{Turn: turn}}
			p.out.Emit(start)
			p.out.EmitUp(start)
			p.mu.Lock()
			if len(p.queue) == 0 {
				break
			}
		} else if played() >= p.sent {
			// The client ran dry (underrun): its clock restarts now.
			p.epStart, p.epSent = now, p.sent
		}
		n := copy(buf, p.queue)
		p.queue = p.queue[:copy(p.queue, p.queue[n:])]
		at := p.epStart.Add(time.Duration((p.sent - p.epSent) * int64(time.Second) / rate))
		p.sent += int64(n)
		p.mu.Unlock()
		p.w.WriteAudio(buf[:n])
		if p.tap != nil {
			p.tap.Played(buf[:n], at)
		}
		p.mu.Lock()
	}
	pl := played()
	for len(p.markers) > 0 && p.markers[0].at <= pl {
		m := p.markers[0]
		p.markers = p.markers[1:]
		ups = append(ups, &frame.BotSpoke{Meta: frame.Meta{Turn: m.turn}, Text: m.text})
	}
	if p.speaking && len(p.queue) == 0 && now.Sub(p.epStart) >= time.Duration((p.sent-p.epSent)*int64(time.Second)/rate)+p.cfg.Grace {
		p.speaking = false
		events = append(events, &frame.BotStoppedSpeaking{Meta: frame.Meta{Turn: p.queueT}})
	}
	p.mu.Unlock()
	for _, f := range events {
		p.out.Emit(f)
		p.out.EmitUp(f)
	}
	// Only now may Drain return, so that End follows BotStoppedSpeaking.
	p.mu.Lock()
	p.settleLocked()
	p.mu.Unlock()
	p.emitMu.Unlock()
	for _, f := range ups {
		p.out.EmitUp(f)
	}
}
