// Package rtvi speaks RTVI 2.1, the protocol of Pipecat's client SDKs
// (@pipecat-ai/client-js and the clients built on it: client-react,
// voice-ui-kit, the iOS and Android SDKs), so that those clients talk to a
// voiced session unchanged. The protocol is JSON messages in an envelope,
// {"label":"rtvi-ai","type":…,"id":…,"data":{…}}; its reference is
// Pipecat's RTVI processor (pipecat-ai/pipecat,
// src/pipecat/processors/frameworks/rtvi) and the client's message types
// (@pipecat-ai/client-js, RTVIMessageType). docs/rtvi.md says what voiced
// supports.
//
// The package does not carry the messages: an edge does. Pipecat's
// SmallWebRTC transport carries them as text on the "chat" data channel,
// its WebSocket transport inside protobuf MessageFrames (WSHandler, at /rtvi/ws).
// Either edge uses a Bridge, which is transport-independent:
//
//	b := rtvi.NewBridge(rtvi.Config{
//		SessionID: conn.ID(),
//		Metadata:  startBody, // the /start request's body (see StartRegistry)
//		Send: func(msg []byte, optional bool) {
//			// msg is one RTVI message, a JSON object; queue it for the
//			// client without blocking (an optional one may be dropped
//			// for a slow client).
//			conn.Enqueue(transport.Outgoing{Data: msg}, !optional)
//		},
//	})
//	s := &transport.Session{…, Observer: b, Notify: b.Notify, …}
//
// and, in the session's Feed, for each text message from the client:
//
//	done, err := b.Handle(ctx, pusher, data)
//	// err: the message was not RTVI JSON at all (a *transport.ProtocolError):
//	// end the session with it. done: the client sent disconnect-bot and
//	// frame.End was pushed: Feed returns nil.
//
// The bridge answers client-ready with bot-ready, turns send-text into a
// typed transcript (which interrupts the bot as typed text does on every
// edge), dtmf into frame.DTMF frames and a typed "DTMF: …" transcript,
// answers client-message with server-response or error-response, and
// disconnect-bot with frame.End; any other type gets an error-response.
// As an observer, it turns the session's frames into RTVI messages: the
// speaking events, user-transcription (interim and final), bot-llm-*,
// bot-tts-*, bot-output (each sentence first as will_be_spoken, then as
// spoken once the playout played it, with what was heard of an
// interrupted one), llm-function-call-* for tool calls, metrics with the
// turn's breakdown, a server-message {"type":"handoff"} naming the new
// agent, and error.
//
// The error that ends a session is an RTVI error message with fatal set:
// give ErrorMessage to transport.ConnConfig.ErrorMessage.
package rtvi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/voiced-dev/voiced/transport"
)

// Label is the envelope's label; messages with another label are not
// RTVI's and are ignored.
const Label = "rtvi-ai"

// Version is the RTVI protocol version voiced speaks, sent in bot-ready.
// Clients compare it as semver.
const Version = "2.1.0"

// MaxMessage bounds a client message, in bytes.
const MaxMessage = 64 << 10

// Client → server message types.
const (
	TypeClientReady        = "client-ready"
	TypeClientMessage      = "client-message"
	TypeSendText           = "send-text"
	TypeDTMF               = "dtmf"
	TypeFunctionCallResult = "llm-function-call-result"
	TypeDisconnectBot      = "disconnect-bot"
)

// Server → client message types.
const (
	TypeBotReady             = "bot-ready"
	TypeError                = "error"
	TypeErrorResponse        = "error-response"
	TypeServerResponse       = "server-response"
	TypeServerMessage        = "server-message"
	TypeMetrics              = "metrics"
	TypeUserStartedSpeaking  = "user-started-speaking"
	TypeUserStoppedSpeaking  = "user-stopped-speaking"
	TypeBotStartedSpeaking   = "bot-started-speaking"
	TypeBotStoppedSpeaking   = "bot-stopped-speaking"
	TypeUserTranscription    = "user-transcription"
	TypeUserLLMText          = "user-llm-text"
	TypeBotOutput            = "bot-output"
	TypeBotLLMStarted        = "bot-llm-started"
	TypeBotLLMStopped        = "bot-llm-stopped"
	TypeBotLLMText           = "bot-llm-text"
	TypeBotTTSStarted        = "bot-tts-started"
	TypeBotTTSStopped        = "bot-tts-stopped"
	TypeBotTTSText           = "bot-tts-text"
	TypeFunctionCallStarted  = "llm-function-call-started"
	TypeFunctionCallProgress = "llm-function-call-in-progress"
	TypeFunctionCallStopped  = "llm-function-call-stopped"
)

// ErrNotRTVI is returned by Decode for a JSON object that is not an RTVI
// message (its label is not Label). Pipecat ignores such messages; so
// does Bridge.Handle.
var ErrNotRTVI = errors.New("rtvi: not an RTVI message")

// Message is one RTVI message in its envelope. Data is the raw JSON of
// its data (nil when absent).
type Message struct {
	Label string          `json:"label"`
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Client is a decoded client message: the envelope's type and id, and
// Body, the decoded data of a type voiced knows: *ClientReady,
// *SendText, *DTMF, *ClientMessage, *FunctionCallResult, or nil (for
// disconnect-bot, and for unknown types).
type Client struct {
	Type string
	ID   string
	Body any
}

// ClientReady is the data of client-ready.
type ClientReady struct {
	Version string          `json:"version"`
	About   json.RawMessage `json:"about,omitempty"`
}

// SendText is the data of send-text. Both options default to true.
type SendText struct {
	Content string `json:"content"`
	Options struct {
		RunImmediately *bool `json:"run_immediately,omitempty"`
		AudioResponse  *bool `json:"audio_response,omitempty"`
	} `json:"options"`
}

// DTMF is the data of dtmf (RTVI 2.1): keys pressed, in order.
type DTMF struct {
	Buttons []string `json:"buttons"`
}

// ClientMessage is the data of client-message: a request of type T with
// data D, answered by a server-response {t, d} or an error-response.
type ClientMessage struct {
	T string          `json:"t"`
	D json.RawMessage `json:"d,omitempty"`
}

// FunctionCallResult is the data of llm-function-call-result: the result
// of a function the client ran.
type FunctionCallResult struct {
	FunctionName string          `json:"function_name"`
	ToolCallID   string          `json:"tool_call_id"`
	Arguments    json.RawMessage `json:"arguments,omitempty"`
	Result       json.RawMessage `json:"result,omitempty"`
}

// DataError is a client message of a known type whose data is malformed.
// The session goes on: the client gets an error-response for it.
type DataError struct {
	Type, ID string
	Msg      string
}

func (e *DataError) Error() string { return "rtvi: " + e.Type + ": " + e.Msg }

// Decode decodes one client message. Errors:
//
//   - *transport.ProtocolError (invalid_utf8, invalid_json, too_large):
//     data is not a JSON object at all; an edge ends the session;
//   - ErrNotRTVI: a JSON object with another label, to be ignored;
//   - *DataError: an RTVI message of a known type with malformed data (or
//     none of the type or id), to be answered with an error-response.
//
// Decode does not retain data.
func Decode(data []byte) (Client, error) {
	if len(data) > MaxMessage {
		return Client{}, transport.BadInput("too_large", "message of %d bytes is over %d", len(data), MaxMessage)
	}
	if !utf8.Valid(data) {
		return Client{}, transport.BadInput("invalid_utf8", "message is not valid UTF-8")
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return Client{}, transport.BadInput("invalid_json", "message is not a JSON object")
	}
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return Client{}, transport.BadInput("invalid_json", "%s", transport.JSONError(err))
	}
	if m.Label != Label {
		return Client{}, ErrNotRTVI
	}
	c := Client{Type: m.Type, ID: m.ID}
	if m.Type == "" {
		return c, &DataError{Type: m.Type, ID: m.ID, Msg: "message has no type"}
	}
	var body any
	switch m.Type {
	case TypeClientReady:
		body = new(ClientReady)
	case TypeSendText:
		body = new(SendText)
	case TypeDTMF:
		body = new(DTMF)
	case TypeClientMessage:
		body = new(ClientMessage)
	case TypeFunctionCallResult:
		body = new(FunctionCallResult)
	default:
		return c, nil
	}
	if len(m.Data) == 0 || string(m.Data) == "null" {
		return c, &DataError{Type: m.Type, ID: m.ID, Msg: "message has no data"}
	}
	if err := json.Unmarshal(m.Data, body); err != nil {
		return c, &DataError{Type: m.Type, ID: m.ID, Msg: "data: " + transport.JSONError(err)}
	}
	switch b := body.(type) {
	case *DTMF:
		if len(b.Buttons) == 0 {
			return c, &DataError{Type: m.Type, ID: m.ID, Msg: "no buttons"}
		}
		for _, k := range b.Buttons {
			if len(k) != 1 || !dtmfKey(k[0]) {
				return c, &DataError{Type: m.Type, ID: m.ID, Msg: fmt.Sprintf("%q is not a DTMF key", k)}
			}
		}
	case *ClientMessage:
		if b.T == "" {
			return c, &DataError{Type: m.Type, ID: m.ID, Msg: "client message has no t"}
		}
	}
	c.Body = body
	return c, nil
}

// dtmfKey reports whether k is a key of RTVI's DTMF keypad.
func dtmfKey(k byte) bool { return k >= '0' && k <= '9' || k == '*' || k == '#' }

// Encode returns the RTVI message of type typ with id and data (which
// must marshal to a JSON object, or be nil for none).
func Encode(typ, id string, data any) []byte {
	if data == nil {
		data = struct{}{}
	}
	d, err := json.Marshal(data)
	if err != nil {
		d, _ = json.Marshal(ErrorData{Error: "rtvi: unencodable data: " + err.Error()})
		typ = TypeError
	}
	b, _ := json.Marshal(Message{Label: Label, Type: typ, ID: id, Data: d})
	return b
}

// The data of the messages the server sends.

// BotReady is the data of bot-ready.
type BotReady struct {
	Version string `json:"version"`
	About   About  `json:"about"`
}

// About describes the server in bot-ready.
type About struct {
	Library        string `json:"library"`
	LibraryVersion string `json:"library_version,omitempty"`
}

// ErrorData is the data of error (Fatal: the client disconnects).
type ErrorData struct {
	Error string `json:"error"`
	Fatal bool   `json:"fatal"`
}

// ErrorResponse is the data of error-response.
type ErrorResponse struct {
	Error string `json:"error"`
}

// ServerResponse is the data of server-response: the answer to a
// client-message of type T.
type ServerResponse struct {
	T string `json:"t"`
	D any    `json:"d,omitempty"`
}

// Transcription is the data of user-transcription.
type Transcription struct {
	Text      string `json:"text"`
	Final     bool   `json:"final"`
	Timestamp string `json:"timestamp"`
	UserID    string `json:"user_id"`
}

// Text is the data of bot-llm-text, bot-tts-text and user-llm-text.
type Text struct {
	Text string `json:"text"`
}

// BotOutput is the data of bot-output. voiced sends each sentence twice:
// before it is spoken (WillBeSpoken, SpokenStatus "new", Spoken false),
// and once the playout has played it (Spoken true, SpokenStatus
// "completed", or "in-progress" with the words heard so far when an
// interruption cut it off). Clients such as voice-ui-kit show text only
// once Spoken is true, so they show what the user actually heard.
type BotOutput struct {
	Text           string          `json:"text"`
	AggregatedBy   string          `json:"aggregated_by"`
	SegmentID      int             `json:"segment_id"`
	WillBeSpoken   bool            `json:"will_be_spoken"`
	Spoken         bool            `json:"spoken"`
	SpokenStatus   string          `json:"spoken_status,omitempty"`
	SpokenProgress *SpokenProgress `json:"spoken_progress,omitempty"`
}

// SpokenProgress is how much of a bot-output segment was played.
type SpokenProgress struct {
	Accumulated string `json:"accumulated_text"`
	Remaining   string `json:"remaining_text"`
}

// Spoken statuses of bot-output.
const (
	SpokenNew        = "new"
	SpokenInProgress = "in-progress"
	SpokenCompleted  = "completed"
)

// Metric is one value of a metrics message: a processor's figure, in
// seconds for ttfb and processing.
type Metric struct {
	Processor string  `json:"processor"`
	Value     float64 `json:"value"`
	Model     string  `json:"model,omitempty"`
}

// Metrics is the data of metrics: voiced reports each turn's latency
// breakdown (seconds from the moment the user stopped speaking) as
// processing values, and the time to first byte of the recognizer, the
// model and the synthesizer as ttfb values. Turn is the turn measured.
type Metrics struct {
	Turn       uint32   `json:"turn"`
	TTFB       []Metric `json:"ttfb,omitempty"`
	Processing []Metric `json:"processing,omitempty"`
}

// FunctionCallStarted is the data of llm-function-call-started.
type FunctionCallStarted struct {
	FunctionName string `json:"function_name,omitempty"`
}

// FunctionCallProgress is the data of llm-function-call-in-progress.
type FunctionCallProgress struct {
	FunctionName string          `json:"function_name,omitempty"`
	ToolCallID   string          `json:"tool_call_id"`
	Arguments    json.RawMessage `json:"arguments,omitempty"`
}

// FunctionCallStopped is the data of llm-function-call-stopped.
type FunctionCallStopped struct {
	FunctionName string `json:"function_name,omitempty"`
	ToolCallID   string `json:"tool_call_id"`
	Cancelled    bool   `json:"cancelled"`
	Result       any    `json:"result,omitempty"`
}

// Handoff is the data of the server-message voiced sends when the
// session's active agent changes.
type Handoff struct {
	Type  string `json:"type"` // "handoff"
	From  string `json:"from"`
	Agent string `json:"agent"`
}

// ErrorMessage encodes the RTVI error message (fatal) for the error that
// ends a session with protocol error code code: the function for
// transport.ConnConfig.ErrorMessage.
func ErrorMessage(code string, err error) []byte {
	return Encode(TypeError, newID(), ErrorData{Error: code + ": " + err.Error(), Fatal: true})
}
