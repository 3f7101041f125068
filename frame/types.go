package frame

import "time"

// ---- system frames ----

// UserStartedSpeaking is emitted by the turn detector when the user starts a
// turn. Confidence is the speech probability that crossed the threshold.
type UserStartedSpeaking struct {
	Meta
	Confidence float32
}

// UserStoppedSpeaking is emitted when the user's turn ends. At is when speech
// actually stopped (the last voiced chunk), earlier than the emit time by the
// detector's stop duration.
type UserStoppedSpeaking struct {
	Meta
	At time.Time
}

// Interruption tells every stage that the bot's current turn was cut off:
// clear internal buffers (pending text, playout). The pipeline has already
// advanced the turn and cancelled the turn context when this is seen.
type Interruption struct {
	Meta
	Reason string
}

// BotStartedSpeaking is emitted by the output transport when the first audio
// of a reply is played.
type BotStartedSpeaking struct{ Meta }

// BotStoppedSpeaking is emitted when the playout buffer runs dry (or is
// cleared by an interruption).
type BotStoppedSpeaking struct {
	Meta
	Interrupted bool
}

// BotSpoke travels upstream from the output transport: Text was actually
// played to the user. The agent stage uses it to record in the conversation
// only what was heard when a reply is interrupted.
type BotSpoke struct {
	Meta
	Text string
}

// Error reports a failure. Fatal errors end the session.
type Error struct {
	Meta
	Err   error
	Fatal bool
}

// Metrics carries one turn's latency breakdown. (Latency.Turn is the turn
// measured; Meta.Turn, as for every frame, the turn the frame was made in.)
type Metrics struct {
	Meta
	Latency TurnMetrics
}

// TurnMetrics is the latency breakdown of one user→bot turn. Durations are
// measured from the moment the user stopped speaking (UserStoppedSpeaking.At)
// and are zero when the stage did not run.
type TurnMetrics struct {
	Turn         uint32        `json:"turn"`
	Endpointing  time.Duration `json:"endpointing"`     // stop detected
	STTFinal     time.Duration `json:"stt_final"`       // final transcript
	LLMFirst     time.Duration `json:"llm_first_token"` // first model text
	SentenceTTS  time.Duration `json:"first_sentence"`  // first sentence sent to TTS
	TTSFirst     time.Duration `json:"tts_first_audio"` // first synthesized audio
	AudioOut     time.Duration `json:"audio_out"`       // first audio written to the transport
	VoiceToVoice time.Duration `json:"voice_to_voice"`  // = AudioOut

	// Turn taking (see frame.Endpoint and frame.BargeIn).
	EndpointDelay time.Duration `json:"endpoint_delay"`     // the turn stage's wait after the stop (final transcript, hold)
	Hold          time.Duration `json:"hold"`               // the hold it chose (0: the turn sounded complete)
	BargeIn       string        `json:"barge_in,omitempty"` // BargeInInterrupted: this turn cut off the bot's answer
	Pause         time.Duration `json:"pause"`              // how long that answer was paused before it was cut off
	Resumes       int           `json:"resumes"`            // false interruptions (paused, then resumed) since the last report
	ResumedPause  time.Duration `json:"resumed_pause"`      // the time the bot was paused by them
}

// ---- data frames ----

// Transcript is recognized user speech. Interim hypotheses have Final unset
// and may be superseded; a Final transcript ends the user's utterance.
type Transcript struct {
	Meta
	Text  string
	Final bool
	// Typed is set for text the user typed rather than spoke.
	Typed bool
	// Utterance is the ID of the UserStartedSpeaking that opened the
	// speech this transcribes (0: not known, or typed). Transcripts come
	// from the recognizer whenever it is done, and may reach a later stage
	// after the next utterance has begun: this says which one they are of.
	Utterance uint64
	// Deferred, on a final typed transcript, adds the text to the
	// conversation without an answer now: the bot is not interrupted, and
	// the agent gives the text to the model before the next message it
	// answers (RTVI's send-text with run_immediately false).
	Deferred bool
	// TextOnly, on a final typed transcript, asks for an answer that is
	// shown, not spoken (RTVI's send-text with audio_response false): the
	// agent opens it with a TextOnly LLMResponseStart.
	TextOnly bool
	// Spotted, on a final transcript of speech, are the words of a small
	// vocabulary (the turn-taking stage's interrupt words and
	// backchannels) that the recognizer heard in the utterance by a
	// second pass limited to them, with their times; nil when it did not
	// look (stt.Result.Spotted). The turn-taking stage reads them to judge
	// speech over the bot that the full recognizer mishears.
	Spotted []Word
}

// LLMText is a delta of the model's streamed answer.
type LLMText struct {
	Meta
	Text string
}

// TTSText is a sentence about to be synthesized (the bot_text event).
type TTSText struct {
	Meta
	Text string
}

// ---- control frames ----

// LLMResponseStart opens a model answer. TextOnly marks an answer to be
// shown, not spoken: the synthesis stage drops its text unsynthesized (no
// TTSText, audio, BotSpoke or bot speaking events follow), observers
// show its LLMText, and the agent records it in the history as said.
type LLMResponseStart struct {
	Meta
	TextOnly bool
}

// LLMResponseEnd closes a model answer: aggregators flush what they hold.
type LLMResponseEnd struct{ Meta }

// End asks the pipeline to finish gracefully: every stage drains what it
// holds (queued audio is played out) and then stops. It is uninterruptible.
type End struct {
	Meta
	Reason string
}

func (*UserStartedSpeaking) Class() Class { return System }
func (*UserStoppedSpeaking) Class() Class { return System }
func (*Interruption) Class() Class        { return System }
func (*BotStartedSpeaking) Class() Class  { return System }
func (*BotStoppedSpeaking) Class() Class  { return System }
func (*BotSpoke) Class() Class            { return System }
func (*Error) Class() Class               { return System }
func (*Metrics) Class() Class             { return System }

func (*Transcript) Class() Class { return Data }
func (*LLMText) Class() Class    { return Data }
func (*TTSText) Class() Class    { return Data }

func (*LLMResponseStart) Class() Class { return Control }
func (*LLMResponseEnd) Class() Class   { return Control }
func (*End) Class() Class              { return Control }
func (*End) Uninterruptible()          {}

// ---- agent frames ----

// Handoff reports that the session's active agent changed. Voice is the
// new agent's TTS voice ("" for the default). It is uninterruptible: the
// change holds even if the answer is cut off.
type Handoff struct {
	Meta
	From, To string
	Voice    string
}

// ToolCall reports that the agent started a tool (for observers and the
// client's event feed).
type ToolCall struct {
	Meta
	Agent, Name, CallID string
	Arguments           string
}

// ToolResult reports that a tool finished. Err is its error text, if any.
type ToolResult struct {
	Meta
	Agent, Name, CallID string
	Err                 string
}

func (*Handoff) Class() Class     { return Control }
func (*Handoff) Uninterruptible() {}
func (*ToolCall) Class() Class    { return System }
func (*ToolResult) Class() Class  { return System }

func (*UserStartedSpeaking) sealed() {}
func (*UserStoppedSpeaking) sealed() {}
func (*Interruption) sealed()        {}
func (*BotStartedSpeaking) sealed()  {}
func (*BotStoppedSpeaking) sealed()  {}
func (*BotSpoke) sealed()            {}
func (*Error) sealed()               {}
func (*Metrics) sealed()             {}
func (*Transcript) sealed()          {}
func (*LLMText) sealed()             {}
func (*TTSText) sealed()             {}
func (*LLMResponseStart) sealed()    {}
func (*LLMResponseEnd) sealed()      {}
func (*End) sealed()                 {}
func (*Handoff) sealed()             {}
func (*ToolCall) sealed()            {}
func (*ToolResult) sealed()          {}
