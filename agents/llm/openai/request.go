package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/voiced-dev/voiced/agents"
)

// EmptyToolResult is sent in place of a tool result with empty content:
// the API wants content on tool messages, and go-openai drops an empty one.
const EmptyToolResult = "(no output)"

// emptySchema is sent for a tool without parameters.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// request maps an agents.Request to the chat-completions request.
//
// Messages: System first, as a system message; then Messages in order.
// Assistant messages carry their tool calls; tool messages their
// tool_call_id. Empty user, system and assistant messages (an answer cut
// off before a word was played) carry nothing and are left out. Name is
// sent on user and assistant messages when it is a valid participant name
// (letters, digits, '_' and '-', at most 64), and never on tool messages,
// which are tied to their call by ID.
func (m *Model) request(req agents.Request) (goopenai.ChatCompletionRequest, error) {
	out := goopenai.ChatCompletionRequest{
		Model:         m.model,
		Stream:        true,
		StreamOptions: &goopenai.StreamOptions{IncludeUsage: true},
		Messages:      make([]goopenai.ChatCompletionMessage, 0, len(req.Messages)+1),
	}
	if len(req.Messages) == 0 {
		return out, agents.ErrEmptyRequest
	}
	if req.System != "" {
		out.Messages = append(out.Messages, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleSystem, Content: req.System})
	}
	conversation := 0
	for i, msg := range req.Messages {
		cm := goopenai.ChatCompletionMessage{Role: string(msg.Role), Content: msg.Content}
		switch msg.Role {
		case agents.RoleSystem:
			if msg.Content == "" {
				continue
			}
		case agents.RoleUser:
			if msg.Content == "" {
				continue
			}
			cm.Name = participant(msg.Name)
		case agents.RoleAssistant:
			if msg.Content == "" && len(msg.ToolCalls) == 0 {
				continue
			}
			cm.Name = participant(msg.Name)
			for j, tc := range msg.ToolCalls {
				if tc.ID == "" || tc.Name == "" {
					return out, fmt.Errorf("%w: message %d: tool call %d needs an ID and a name", ErrInvalidRequest, i, j)
				}
				args := tc.Arguments
				if args == "" {
					args = "{}"
				}
				cm.ToolCalls = append(cm.ToolCalls, goopenai.ToolCall{
					ID:       tc.ID,
					Type:     goopenai.ToolTypeFunction,
					Function: goopenai.FunctionCall{Name: tc.Name, Arguments: args},
				})
			}
		case agents.RoleTool:
			if msg.ToolCallID == "" {
				return out, fmt.Errorf("%w: message %d: tool result without a tool call ID", ErrInvalidRequest, i)
			}
			cm.ToolCallID = msg.ToolCallID
			if cm.Content == "" {
				cm.Content = EmptyToolResult
			}
		default:
			return out, fmt.Errorf("%w: message %d: unknown role %q", ErrInvalidRequest, i, msg.Role)
		}
		if msg.Role != agents.RoleSystem {
			conversation++
		}
		out.Messages = append(out.Messages, cm)
	}
	if conversation == 0 {
		return out, agents.ErrEmptyRequest
	}
	for i, t := range req.Tools {
		if t.Name == "" {
			return out, fmt.Errorf("%w: tool %d has no name", ErrInvalidRequest, i)
		}
		params := t.Parameters
		if len(params) == 0 {
			params = emptySchema
		} else {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(params, &obj); err != nil || obj == nil {
				return out, fmt.Errorf("%w: tool %q: parameters must be a JSON Schema object", ErrInvalidRequest, t.Name)
			}
		}
		out.Tools = append(out.Tools, goopenai.Tool{
			Type: goopenai.ToolTypeFunction,
			Function: &goopenai.FunctionDefinition{
				Name:        t.Name,
				Description: t.Description,
				Parameters:  params,
			},
		})
	}
	if req.MaxTokens < 0 {
		return out, fmt.Errorf("%w: max tokens %d", ErrInvalidRequest, req.MaxTokens)
	}
	// max_tokens is what OpenAI-compatible servers (Ollama, vLLM, Groq)
	// understand; OpenAI's reasoning models get max_completion_tokens below.
	//lint:ignore SA1019 deliberate, see above
	out.MaxTokens = req.MaxTokens
	if t := req.Temperature; t != nil {
		if math.IsNaN(*t) || math.IsInf(*t, 0) || *t < 0 {
			return out, fmt.Errorf("%w: temperature %v", ErrInvalidRequest, *t)
		}
		out.Temperature = float32(*t)
		if out.Temperature == 0 {
			// go-openai omits a zero temperature (omitempty), which would
			// leave the server's default; the smallest positive float32
			// is sent instead and means the same.
			out.Temperature = math.SmallestNonzeroFloat32
		}
	}
	// go-openai knows which models refuse max_tokens (OpenAI's reasoning
	// models want max_completion_tokens) and what else they refuse.
	v := goopenai.NewReasoningValidator()
	err := v.Validate(out)
	if errors.Is(err, goopenai.ErrReasoningModelMaxTokensDeprecated) {
		//lint:ignore SA1019 moving the deprecated field to its replacement
		out.MaxCompletionTokens, out.MaxTokens = out.MaxTokens, 0
		err = v.Validate(out)
	}
	if err != nil {
		return out, fmt.Errorf("%w: model %q: %v", ErrInvalidRequest, m.model, err)
	}
	return out, nil
}

// participant returns name if the API accepts it as a message's name.
func participant(name string) string {
	if name == "" || len(name) > 64 {
		return ""
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return ""
		}
	}
	return name
}
