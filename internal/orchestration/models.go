package orchestration

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/openai"
	"github.com/voiced-dev/voiced/agents/llm/scripted"
	"github.com/voiced-dev/voiced/internal/config"
)

// modelProviders are the language models by the name [llm] provider (or a
// [[models]] entry's) gives them. Each row makes a model from its section;
// rules replace the scripted model's rules. To add a provider, put its
// settings in config.LLM (a field named after it, decoded from
// [llm.NAME]) and add a row here.
var modelProviders = map[string]func(llm config.LLM, rules []config.Rule) (agents.ChatModel, error){
	"scripted": func(llm config.LLM, rules []config.Rule) (agents.ChatModel, error) {
		c := llm.Scripted
		c.Rules = rules
		m, err := scripted.New(c)
		if err != nil {
			return nil, err
		}
		return m, nil
	},
	"openai": func(llm config.LLM, _ []config.Rule) (agents.ChatModel, error) {
		c := llm.OpenAI.Config
		if env := llm.OpenAI.APIKeyEnv; env != "" {
			if c.APIKey = os.Getenv(env); c.APIKey == "" {
				return nil, fmt.Errorf("environment variable %s is empty", env)
			}
		}
		m, err := openai.New(c)
		if err != nil {
			return nil, err
		}
		return m, nil
	},
}

// ModelProviders returns the names of the language model providers, sorted.
func ModelProviders() []string { return slices.Sorted(maps.Keys(modelProviders)) }

// newModel builds one provider's model; rules replace the scripted rules.
func newModel(name string, llm config.LLM, rules []config.Rule) (agents.ChatModel, error) {
	provider := llm.Provider
	if provider == "" {
		provider = "scripted"
	}
	build := modelProviders[provider]
	if build == nil {
		return nil, fmt.Errorf("%w: model %q: unknown provider %q (known: %s)", ErrConfig, name, provider, strings.Join(ModelProviders(), ", "))
	}
	m, err := build(llm, rules)
	if err != nil {
		return nil, fmt.Errorf("%w: model %q: %v", ErrConfig, name, err)
	}
	return m, nil
}
