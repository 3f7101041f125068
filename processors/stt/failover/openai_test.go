package failover_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/pipelinetest"
	"github.com/voiced-dev/voiced/processors/provider/openaitest"
	"github.com/voiced-dev/voiced/processors/stt"
	"github.com/voiced-dev/voiced/processors/stt/failover"
	"github.com/voiced-dev/voiced/processors/stt/openai"
)

// Through the real protocol: the primary server is overloaded (503) for
// the first utterance and too slow for the second; the stt stage still
// emits each final transcript, from the backup, which was sent the whole
// utterance.
func TestSTTStageCarriesOnWhenAServerFails(t *testing.T) {
	primary := openaitest.New(t, openaitest.Config{Transcript: "primary heard you"})
	backup := openaitest.New(t, openaitest.Config{STTModel: "Systran/faster-whisper-small", Transcript: "backup heard you"})
	primary.Push("/v1/audio/transcriptions", openaitest.Fault{Status: 503})
	primary.Push("/v1/audio/transcriptions", openaitest.Fault{FirstByte: 5 * time.Second})
	a, err := openai.New(openai.Config{BaseURL: primary.URL})
	if err != nil {
		t.Fatal(err)
	}
	b, err := openai.New(openai.Config{BaseURL: backup.URL, Model: "Systran/faster-whisper-small"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := failover.New(failover.Config{Timeout: 500 * time.Millisecond},
		failover.Member{Name: "openai", Recognizer: a}, failover.Member{Name: "speaches", Recognizer: b})
	if err != nil {
		t.Fatal(err)
	}
	var out pipelinetest.Recorder
	p := pipeline.New(pipeline.Options{Sink: out.Sink}, stt.NewProcessor(rec, stt.ProcessorConfig{}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	push := func(f frame.Frame) {
		if err := p.Push(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := audio.NewResampler(openaitest.SpeechRate, 16000)
	speech := r.Flush(r.Process(nil, openaitest.Speech()))
	for i := range 3 {
		push(&frame.UserStartedSpeaking{})
		for c := range slices.Chunk(speech, 320) {
			push(&frame.InputAudio{Format: frame.Mono16k, Samples: c})
		}
		push(&frame.UserStoppedSpeaking{At: time.Now()})
		// One utterance at a time, so the faults meet the right ones.
		for len(pipelinetest.Find[*frame.Transcript](&out)) <= i {
			if ctx.Err() != nil {
				t.Fatal("no transcript")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	push(&frame.End{})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if errs := pipelinetest.Find[*frame.Error](&out); len(errs) != 0 {
		t.Fatalf("error: %v", errs[0].Err)
	}
	var got []string
	for _, tr := range pipelinetest.Find[*frame.Transcript](&out) {
		got = append(got, tr.Text)
	}
	want := []string{"backup heard you", "backup heard you", "primary heard you"}
	if !slices.Equal(got, want) {
		t.Fatalf("transcripts %q, want %q", got, want)
	}
	for _, req := range backup.Requests() {
		if !slices.Equal(req.Audio, speech) {
			t.Fatalf("backup got %d samples, want the utterance's %d", len(req.Audio), len(speech))
		}
	}
}
