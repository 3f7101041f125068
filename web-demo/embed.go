// Package webdemo holds the browser demo page that voiced serves at "/".
//
// The page is plain HTML, CSS and JavaScript with no build step and no external
// URLs, so it works offline. It speaks the WebSocket protocol described in
// docs/protocol.md: it captures the microphone with an AudioWorklet, streams
// PCM16LE to /ws, plays the bot's audio through a second AudioWorklet and shows
// transcripts, the agent's text, events and per-turn latency.
//
// Query parameters understood by the page:
//
//	?autostart=1  start the conversation without a click (used by tests)
//	?ws=URL       WebSocket URL (default: same host, path /ws)
//	?token=T      access token or API key, for a server with authentication on
package webdemo

import (
	"embed"
	"io/fs"
)

// Files holds the demo under the directory "static".
//
//go:embed static
var Files embed.FS

// FS returns the demo files rooted at the page directory, so that "index.html"
// is at the top. The result is read-only and safe for concurrent use; serve it
// with http.FileServerFS.
func FS() fs.FS {
	sub, err := fs.Sub(Files, "static")
	if err != nil {
		// fs.Sub fails only for an invalid path; "static" is valid and embedded.
		panic("webdemo: " + err.Error())
	}
	return sub
}
