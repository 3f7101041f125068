package bench

import "github.com/voiced-dev/voiced/processors/vad"

// levelModel is a scripted vad.Model for timing runs, not a speech detector:
// a chunk "is speech" when its level is above -40 dBFS. The turn harness
// feeds it a tone and digital silence, so it decides exactly when the real
// Silero model would on clean input, deterministically and without the
// model files; the density run uses the real Silero model.
type levelModel struct{}

func (levelModel) NewAnalyzer(int) (vad.Analyzer, error) { return levelAnalyzer{}, nil }

type levelAnalyzer struct{}

func (levelAnalyzer) ChunkSamples() int { return 512 }
func (levelAnalyzer) Speech(chunk []int16) (float32, error) {
	if vad.Level(chunk) > -40 {
		return 1, nil
	}
	return 0, nil
}
func (levelAnalyzer) Reset()       {}
func (levelAnalyzer) Close() error { return nil }
