package rtvi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/tts"
	"github.com/voiced-dev/voiced/transport"
)

// Config configures a Bridge. Send is required.
type Config struct {
	// SessionID is the session's id (the user_id of transcriptions, and
	// part of the answer to the "session" client message).
	SessionID string
	// Metadata is what the client sent to /start as the session's body
	// (JSON; nil for none), returned by the "session" client message.
	Metadata json.RawMessage
	// Send queues one RTVI message (a JSON object) for the client. It is
	// called from the pipeline's goroutines and the edge's reader, possibly
	// at once, and must not block; optional is true for a message that may
	// be dropped for a slow client (an interim transcription). Send owns
	// msg.
	Send func(msg []byte, optional bool)
	// ClientMessage answers a client-message whose t voiced does not
	// answer itself (see Bridge.Handle): its result becomes the d of the
	// server-response, its error the error-response. Nil: such messages get
	// an error-response. It runs on the edge's reader; it must not block
	// for long.
	ClientMessage func(ctx context.Context, t string, d json.RawMessage) (any, error)
	// About describes the server in bot-ready (default library "voiced").
	About About
	// Now and NewID are the clock of transcriptions' timestamps and the
	// ids of the server's own messages (defaults: time.Now, 8 random hex
	// digits); tests fix them. Both must be safe for concurrent use.
	Now   func() time.Time
	NewID func() string
	// Logger gets what the client sent that voiced ignored.
	Logger *slog.Logger
}

// Bridge turns one session's frames into RTVI messages (as a
// pipeline.Observer and through Notify) and the client's RTVI messages
// into frames (Handle). All its methods are safe for concurrent use.
type Bridge struct {
	cfg Config

	mu       sync.Mutex
	ready    bool
	ttsOn    bool
	nextSeg  int
	segments []segment // sentences announced, not yet reported spoken
	agent    string    // the active agent after the last handoff
	// shown gathers the sentences of the text-only answer of turn
	// shownTurn, when there is one (shownOn).
	shown     tts.Sentences
	shownOn   bool
	shownTurn uint32
}

// segment is a sentence announced by a bot-output "new".
type segment struct {
	id   int
	turn uint32
	text string
}

// maxSegments bounds the sentences a Bridge remembers between their
// announcement and their playout.
const maxSegments = 64

// NewBridge returns a Bridge for one session. It panics without
// cfg.Send.
func NewBridge(cfg Config) *Bridge {
	if cfg.Send == nil {
		panic("rtvi: NewBridge without Send")
	}
	if cfg.About.Library == "" {
		cfg.About.Library = "voiced"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = newID
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Bridge{cfg: cfg, nextSeg: 1}
}

func newID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Ready reports whether the client has sent client-ready.
func (b *Bridge) Ready() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ready
}

func (b *Bridge) send(typ string, data any, optional bool) {
	b.cfg.Send(Encode(typ, b.cfg.NewID(), data), optional)
}

func (b *Bridge) reply(typ, id string, data any) {
	b.cfg.Send(Encode(typ, id, data), false)
}

// OnHop implements pipeline.Observer: each new frame is notified.
func (b *Bridge) OnHop(h pipeline.Hop) {
	if h.First {
		b.Notify(h.Frame)
	}
}

// Notify sends the RTVI messages f produces, if any. It does not block.
func (b *Bridge) Notify(f frame.Frame) {
	switch f := f.(type) {
	case *frame.UserStartedSpeaking:
		b.send(TypeUserStartedSpeaking, nil, false)
	case *frame.UserStoppedSpeaking:
		b.send(TypeUserStoppedSpeaking, nil, false)
	case *frame.Transcript:
		if f.Text == "" || f.Deferred {
			return // deferred text reaches the model with the next message
		}
		if !f.Typed {
			b.send(TypeUserTranscription, Transcription{
				Text: f.Text, Final: f.Final, UserID: b.cfg.SessionID,
				Timestamp: b.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			}, !f.Final)
		}
		if f.Final {
			b.send(TypeUserLLMText, Text{Text: f.Text}, false)
		}
	case *frame.LLMResponseStart:
		b.showEnd()
		b.mu.Lock()
		b.shownOn, b.shownTurn = f.TextOnly, f.Turn
		b.mu.Unlock()
		b.send(TypeBotLLMStarted, nil, false)
	case *frame.LLMResponseEnd:
		b.showEnd()
		b.send(TypeBotLLMStopped, nil, false)
	case *frame.Interruption:
		b.showEnd()
	case *frame.LLMText:
		b.send(TypeBotLLMText, Text{Text: f.Text}, false)
		b.mu.Lock()
		var done []string
		if b.shownOn && f.Turn == b.shownTurn {
			done = b.shown.Add(f.Text)
		}
		b.mu.Unlock()
		for _, s := range done {
			b.show(s)
		}
	case *frame.TTSText:
		b.sentence(f)
	case *frame.BotStartedSpeaking:
		b.send(TypeBotStartedSpeaking, nil, false)
	case *frame.BotStoppedSpeaking:
		b.send(TypeBotStoppedSpeaking, nil, false)
		b.mu.Lock()
		on := b.ttsOn
		b.ttsOn = false
		b.mu.Unlock()
		if on {
			b.send(TypeBotTTSStopped, nil, false)
		}
	case *frame.BotSpoke:
		b.spoke(f)
	case *frame.ToolCall:
		b.send(TypeFunctionCallStarted, FunctionCallStarted{FunctionName: f.Name}, false)
		p := FunctionCallProgress{FunctionName: f.Name, ToolCallID: f.CallID}
		if a := strings.TrimSpace(f.Arguments); strings.HasPrefix(a, "{") && json.Valid([]byte(a)) {
			p.Arguments = json.RawMessage(a)
		}
		b.send(TypeFunctionCallProgress, p, false)
	case *frame.ToolResult:
		s := FunctionCallStopped{FunctionName: f.Name, ToolCallID: f.CallID}
		if f.Err != "" {
			s.Result = map[string]string{"error": f.Err}
		}
		b.send(TypeFunctionCallStopped, s, false)
	case *frame.Metrics:
		b.send(TypeMetrics, metrics(f.Latency), false)
	case *frame.Handoff:
		b.mu.Lock()
		b.agent = f.To
		b.mu.Unlock()
		b.send(TypeServerMessage, Handoff{Type: "handoff", From: f.From, Agent: f.To}, false)
	case *frame.Error:
		// A stage cut off by the session's end is not news to the client.
		if f.Err != nil && !errors.Is(f.Err, context.Canceled) {
			b.send(TypeError, ErrorData{Error: f.Err.Error(), Fatal: f.Fatal}, false)
		}
	}
}

// showEnd shows the rest of a text-only answer and ends it.
func (b *Bridge) showEnd() {
	b.mu.Lock()
	rest := b.shown.Flush()
	b.shown.Reset()
	on := b.shownOn
	b.shownOn = false
	b.mu.Unlock()
	if on && rest != "" {
		b.show(rest)
	}
}

// show sends a sentence of a text-only answer: a bot-output that will not
// be spoken (as Pipecat reports text it does not synthesize).
func (b *Bridge) show(text string) {
	b.mu.Lock()
	id := b.nextSeg
	b.nextSeg++
	b.mu.Unlock()
	b.send(TypeBotOutput, BotOutput{Text: text, AggregatedBy: "sentence", SegmentID: id}, false)
}

// sentence announces a sentence about to be synthesized.
func (b *Bridge) sentence(f *frame.TTSText) {
	text := strings.TrimSpace(f.Text)
	if text == "" {
		return
	}
	b.mu.Lock()
	start := !b.ttsOn
	b.ttsOn = true
	id := b.nextSeg
	b.nextSeg++
	if len(b.segments) == maxSegments {
		b.segments = append(b.segments[:0], b.segments[1:]...)
	}
	b.segments = append(b.segments, segment{id: id, turn: f.Turn, text: text})
	b.mu.Unlock()
	if start {
		b.send(TypeBotTTSStarted, nil, false)
	}
	b.send(TypeBotTTSText, Text{Text: text}, false)
	b.send(TypeBotOutput, BotOutput{
		Text: text, AggregatedBy: "sentence", SegmentID: id, WillBeSpoken: true,
		SpokenStatus: SpokenNew, SpokenProgress: &SpokenProgress{Remaining: text},
	}, false)
}

// spoke reports what the playout played of a sentence: all of it, or the
// words heard before an interruption.
func (b *Bridge) spoke(f *frame.BotSpoke) {
	heard := strings.Join(strings.Fields(f.Text), " ")
	if heard == "" {
		return
	}
	out := BotOutput{
		Text: heard, AggregatedBy: "sentence", WillBeSpoken: true, Spoken: true,
		SpokenStatus: SpokenCompleted, SpokenProgress: &SpokenProgress{Accumulated: heard},
	}
	b.mu.Lock()
	found := false
	for i, s := range b.segments {
		if s.turn != f.Turn {
			continue
		}
		words := strings.Fields(s.text)
		full := strings.Join(words, " ")
		if full == heard {
			out.SegmentID, out.Text, found = s.id, s.text, true
		} else if strings.HasPrefix(full, heard+" ") {
			out.SegmentID, found = s.id, true
			out.SpokenStatus = SpokenInProgress
			out.SpokenProgress.Remaining = strings.TrimSpace(full[len(heard):])
		} else {
			continue
		}
		// Sentences before this one were dropped unplayed.
		b.segments = append(b.segments[:0], b.segments[i+1:]...)
		break
	}
	if !found {
		out.SegmentID = b.nextSeg
		b.nextSeg++
	}
	b.mu.Unlock()
	b.send(TypeBotOutput, out, false)
}

func seconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1e6 }

// metrics turns a turn's breakdown into RTVI metrics.
func metrics(m frame.TurnMetrics) Metrics {
	out := Metrics{Turn: m.Turn}
	add := func(to *[]Metric, name string, d time.Duration) {
		if d > 0 {
			*to = append(*to, Metric{Processor: name, Value: seconds(d)})
		}
	}
	// Each provider's time to its first output, from its input.
	if m.STTFinal > 0 && m.Endpointing > 0 && m.STTFinal > m.Endpointing {
		add(&out.TTFB, "stt", m.STTFinal-m.Endpointing)
	}
	if m.LLMFirst > 0 && m.STTFinal > 0 && m.LLMFirst > m.STTFinal {
		add(&out.TTFB, "llm", m.LLMFirst-m.STTFinal)
	}
	if m.TTSFirst > 0 && m.SentenceTTS > 0 && m.TTSFirst > m.SentenceTTS {
		add(&out.TTFB, "tts", m.TTSFirst-m.SentenceTTS)
	}
	add(&out.Processing, "endpointing", m.Endpointing)
	add(&out.Processing, "stt_final", m.STTFinal)
	add(&out.Processing, "llm_first_token", m.LLMFirst)
	add(&out.Processing, "first_sentence", m.SentenceTTS)
	add(&out.Processing, "tts_first_audio", m.TTSFirst)
	add(&out.Processing, "voice_to_voice", m.VoiceToVoice)
	add(&out.Processing, "endpoint_delay", m.EndpointDelay)
	return out
}

// Handle acts on one client message (the text of a data-channel message,
// or the data of a WebSocket MessageFrame):
//
//   - client-ready: bot-ready with the same id;
//   - send-text: a final, typed transcript of its content (the agent
//     answers it, interrupting the bot's answer as typed text does); with
//     run_immediately false the transcript is Deferred (added to the
//     conversation, not answered now, the bot not interrupted), with
//     audio_response false TextOnly (the answer is shown, not spoken);
//   - dtmf: a frame.DTMF per key, then a typed transcript "DTMF: <keys>";
//   - client-message: t "session" is answered with the session's id, its
//     active agent and the /start body; any other t by
//     Config.ClientMessage; the answer is a server-response (same id), or
//     an error-response;
//   - llm-function-call-result: an error-response (voiced runs its tools
//     itself; client-run functions are not supported);
//   - disconnect-bot: frame.End is pushed and done is true;
//   - any other type, or a known one with malformed data: error-response.
//
// A JSON object with another label is ignored. err is a
// *transport.ProtocolError when data is not a JSON object at all (the
// edge ends the session with it), or the error of a push.
func (b *Bridge) Handle(ctx context.Context, p transport.Pusher, data []byte) (done bool, err error) {
	m, err := Decode(data)
	var de *DataError
	switch {
	case errors.Is(err, ErrNotRTVI):
		b.cfg.Logger.Debug("rtvi: ignored a message with another label")
		return false, nil
	case errors.As(err, &de):
		b.reply(TypeErrorResponse, de.ID, ErrorResponse{Error: de.Msg})
		return false, nil
	case err != nil:
		return false, err
	}
	switch body := m.Body.(type) {
	case *ClientReady:
		b.mu.Lock()
		b.ready = true
		b.mu.Unlock()
		b.reply(TypeBotReady, m.ID, BotReady{Version: Version, About: b.cfg.About})
		return false, nil
	case *SendText:
		text := strings.TrimSpace(body.Content)
		if text == "" {
			return false, nil
		}
		if len(text) > transport.MaxText {
			b.reply(TypeErrorResponse, m.ID, ErrorResponse{Error: fmt.Sprintf("text of %d bytes is over %d", len(text), transport.MaxText)})
			return false, nil
		}
		t := &frame.Transcript{Text: text, Final: true, Typed: true}
		if o := body.Options.RunImmediately; o != nil && !*o {
			t.Deferred = true
		}
		if o := body.Options.AudioResponse; o != nil && !*o {
			t.TextOnly = true
		}
		return false, p.Push(ctx, t)
	case *DTMF:
		for _, k := range body.Buttons {
			if err := p.Push(ctx, &frame.DTMF{Digit: k[0]}); err != nil {
				return false, err
			}
		}
		return false, p.Push(ctx, &frame.Transcript{Text: "DTMF: " + strings.Join(body.Buttons, ""), Final: true, Typed: true})
	case *ClientMessage:
		b.clientMessage(ctx, m.ID, body)
		return false, nil
	case *FunctionCallResult:
		// voiced's tools run on the server; a result from the client
		// answers no call the model is waiting on.
		b.reply(TypeErrorResponse, m.ID, ErrorResponse{Error: fmt.Sprintf(
			"client-run functions are not supported: voiced runs its tools itself, and %q (call %q) is not waiting for the client's result",
			body.FunctionName, body.ToolCallID)})
		return false, nil
	}
	if m.Type == TypeDisconnectBot {
		return true, p.Push(ctx, &frame.End{Reason: "client disconnected the bot"})
	}
	b.reply(TypeErrorResponse, m.ID, ErrorResponse{Error: fmt.Sprintf("unsupported message type %q", m.Type)})
	return false, nil
}

// SessionInfo is the d of the server-response to the "session" client
// message.
type SessionInfo struct {
	SessionID string          `json:"session_id"`
	Agent     string          `json:"agent,omitempty"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`
}

func (b *Bridge) clientMessage(ctx context.Context, id string, m *ClientMessage) {
	var (
		d   any
		err error
	)
	switch {
	case m.T == "session":
		b.mu.Lock()
		d = SessionInfo{SessionID: b.cfg.SessionID, Agent: b.agent, Metadata: b.cfg.Metadata}
		b.mu.Unlock()
	case b.cfg.ClientMessage != nil:
		d, err = b.cfg.ClientMessage(ctx, m.T, m.D)
	default:
		err = fmt.Errorf("unknown client message %q", m.T)
	}
	if err != nil {
		b.reply(TypeErrorResponse, id, ErrorResponse{Error: err.Error()})
		return
	}
	b.reply(TypeServerResponse, id, ServerResponse{T: m.T, D: d})
}
