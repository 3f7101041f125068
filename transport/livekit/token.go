package livekit

import (
	"errors"
	"fmt"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

// ErrToken wraps every failure to make a token.
var ErrToken = errors.New("livekit: token")

// TokenConfig describes a participant's join token.
type TokenConfig struct {
	APIKey, APISecret string
	Room              string
	Identity          string
	Name              string        // display name, default Identity
	TTL               time.Duration // default 6 h
	// Dispatch, if set, asks the server to dispatch the named agent (a
	// worker registered with that agent name) to the room when this
	// participant's join creates it.
	Dispatch string
	// AsAgent makes the token an agent participant's (kind AGENT), as
	// used by `voiced agent` joining a room without a worker.
	AsAgent bool
}

// NewToken returns a signed JWT that lets a participant join c.Room,
// publish, subscribe and send data.
func NewToken(c TokenConfig) (string, error) {
	switch {
	case c.APIKey == "" || c.APISecret == "":
		return "", fmt.Errorf("%w: API key and secret are required", ErrToken)
	case c.Room == "":
		return "", fmt.Errorf("%w: room is required", ErrToken)
	case c.Identity == "":
		return "", fmt.Errorf("%w: identity is required", ErrToken)
	case c.TTL < 0:
		return "", fmt.Errorf("%w: negative TTL", ErrToken)
	}
	if c.TTL == 0 {
		c.TTL = 6 * time.Hour
	}
	if c.Name == "" {
		c.Name = c.Identity
	}
	at := auth.NewAccessToken(c.APIKey, c.APISecret).
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: c.Room}).
		SetIdentity(c.Identity).
		SetName(c.Name).
		SetValidFor(c.TTL)
	if c.Dispatch != "" {
		at.SetRoomConfig(&livekit.RoomConfiguration{Agents: []*livekit.RoomAgentDispatch{{AgentName: c.Dispatch}}})
	}
	if c.AsAgent {
		at.SetKind(livekit.ParticipantInfo_AGENT)
	}
	jwt, err := at.ToJWT()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrToken, err)
	}
	return jwt, nil
}

// workerToken is the token a worker registers with.
func workerToken(key, secret string) (string, error) {
	jwt, err := auth.NewAccessToken(key, secret).
		SetVideoGrant(&auth.VideoGrant{Agent: true}).
		SetValidFor(time.Hour).
		ToJWT()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrToken, err)
	}
	return jwt, nil
}
