// Package calltools offers agents call control on phone calls: end_call,
// transfer_call and send_dtmf. An agent gets them by naming them in its
// tools in the configuration; on a session that is not a phone call they
// answer that they do not apply. The tools find the session's call
// through Lookup: the SIP server's Control (docs/sip.md) or a carrier
// media stream's (transport/carrier, docs/carriers.md), where a vendor
// without the control answers that it is not available.
package calltools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/voiced-dev/voiced/agents"
)

// Call is what the tools need of a live call (sip.Control and
// carrier.Control implement it).
type Call interface {
	// EndCall hangs up once the agent has finished speaking.
	EndCall()
	// SendDTMF sends keys and returns once they are sent.
	SendDTMF(ctx context.Context, keys string) error
	// Transfer hands the caller to target and returns once the new call
	// is answered, or why it failed.
	Transfer(ctx context.Context, target string) error
}

// Lookup finds the call a session runs on.
type Lookup func(sessionID string) (Call, bool)

// ErrNotACall is the tools' answer on a session without a phone call.
var ErrNotACall = errors.New("this conversation is not a phone call")

// Names returns the names of the tools Tools returns for targets.
func Names(targets map[string]string) []string {
	if len(targets) == 0 {
		return []string{"end_call", "send_dtmf"}
	}
	return []string{"end_call", "send_dtmf", "transfer_call"}
}

func call(ctx context.Context, lookup Lookup) (Call, error) {
	info, ok := agents.SessionFromContext(ctx)
	if !ok {
		return nil, ErrNotACall
	}
	c, ok := lookup(info.ID)
	if !ok {
		return nil, ErrNotACall
	}
	return c, nil
}

type noArgs struct{}

type dtmfArgs struct {
	Digits string `json:"digits" jsonschema:"description=keys to press: 0-9, *, #, A-D (at most 32)"`
}

type transferArgs struct {
	Target string `json:"target" jsonschema:"description=where to transfer the caller: one of the configured targets"`
}

// Tools returns the call-control tools. targets maps the names the model
// may choose to SIP URIs or +E.164 numbers (carrier calls); without
// targets there is no transfer_call.
func Tools(lookup Lookup, targets map[string]string) []agents.Tool {
	tools := []agents.Tool{
		agents.MustTool("end_call",
			"Hang up the phone call. Say goodbye first: the call ends once you finish speaking.",
			func(ctx context.Context, _ noArgs) (string, error) {
				c, err := call(ctx, lookup)
				if err != nil {
					return "", err
				}
				c.EndCall()
				return "The call will end when you finish your sentence.", nil
			}),
		agents.MustTool("send_dtmf",
			"Press keys on the phone's keypad (DTMF), to navigate a phone menu.",
			func(ctx context.Context, a dtmfArgs) (string, error) {
				if len(a.Digits) == 0 || len(a.Digits) > 32 || strings.Trim(a.Digits, "0123456789*#ABCD") != "" {
					return "", fmt.Errorf("%w: digits %q: want 1 to 32 of 0-9 * # A-D", agents.ErrToolArgs, a.Digits)
				}
				c, err := call(ctx, lookup)
				if err != nil {
					return "", err
				}
				if err := c.SendDTMF(ctx, a.Digits); err != nil {
					return "", err
				}
				return "Pressed " + a.Digits + ".", nil
			}),
	}
	if len(targets) == 0 {
		return tools
	}
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	slices.Sort(names)
	tools = append(tools, agents.MustTool("transfer_call",
		"Transfer the caller to another line (cold transfer): "+strings.Join(names, ", ")+
			". Tell the caller first. If the transfer fails you are told why and the call goes on.",
		func(ctx context.Context, a transferArgs) (string, error) {
			uri, ok := targets[a.Target]
			if !ok {
				return "", fmt.Errorf("%w: target %q: want one of %s", agents.ErrToolArgs, a.Target, strings.Join(names, ", "))
			}
			c, err := call(ctx, lookup)
			if err != nil {
				return "", err
			}
			if err := c.Transfer(ctx, uri); err != nil {
				return "", err
			}
			return "The caller was transferred to " + a.Target + "; this call has ended.", nil
		}))
	return tools
}
