// Package deps pins modules that packages under construction will import.
// It is removed once they do.
package deps

import (
	_ "github.com/livekit/protocol/livekit"
	_ "github.com/livekit/server-sdk-go/v2"
	_ "github.com/pion/webrtc/v4"
	_ "gopkg.in/hraban/opus.v2"
)
