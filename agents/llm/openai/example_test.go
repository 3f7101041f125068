package openai_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/openai"
)

// Ollama serves its OpenAI-compatible API under /v1 and needs no key.
func Example_ollama() {
	m, err := openai.New(openai.Config{
		BaseURL: "http://localhost:11434/v1",
		Model:   "llama3.2",
		Timeout: 2 * time.Minute, // the first request may load the model
	})
	if err != nil {
		panic(err)
	}
	for ev, err := range m.Stream(context.Background(), agents.Request{
		System:   "You are a helpful voice assistant. Answer in one sentence.",
		Messages: []agents.Message{{Role: agents.RoleUser, Content: "Why is the sky blue?"}},
	}) {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		fmt.Print(ev.Text)
	}
}

// Groq wants its own key; the OpenAI key from the environment is never
// sent to it.
func Example_groq() {
	m, err := openai.New(openai.Config{
		BaseURL: "https://api.groq.com/openai/v1",
		APIKey:  os.Getenv("GROQ_API_KEY"),
		Model:   "llama-3.3-70b-versatile",
	})
	if err != nil {
		panic(err)
	}
	answer, err := agents.Generate(context.Background(), m, agents.Request{
		Messages: []agents.Message{{Role: agents.RoleUser, Content: "Say hello."}},
	})
	fmt.Println(answer, err)
}
