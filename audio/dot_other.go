//go:build !amd64

package audio

// bestDot is the dot product the resampler uses on this machine.
var bestDot = dot
