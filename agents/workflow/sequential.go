package workflow

import (
	"context"
	"iter"

	"github.com/voiced-dev/voiced/agents"
)

type sequential struct {
	name    string
	members []agents.Runnable
}

// Sequential runs members one after another. The first member gets the
// input; each later member gets the input's conversation followed by the
// previous member's output as a user message named after that member
// (agents.Message{Role: RoleUser, Name: previous.Name(), Content: output});
// earlier outputs are not included. The answer is the last member's text,
// streamed as it is written; the other members' text is not part of the
// answer (it is reported in their EventAgentFinished). A member's error
// ends the run.
func Sequential(name string, members ...agents.Runnable) (agents.Runnable, error) {
	if err := checkMembers("sequential", name, members); err != nil {
		return nil, err
	}
	return &sequential{name: name, members: append([]agents.Runnable(nil), members...)}, nil
}

func (s *sequential) Name() string { return s.name }

func (s *sequential) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return stream(ctx, s.name, func(ctx context.Context, emit emitFunc) error {
		cur := in
		for i, m := range s.members {
			last := i == len(s.members)-1
			out, err := runMember(ctx, m, cur, last, emit)
			if err != nil {
				return memberError(ctx, s.name, m.Name(), err)
			}
			cur = agents.Input{Messages: appendMessages(in.Messages, outputMessage(m.Name(), out))}
		}
		return nil
	})
}
