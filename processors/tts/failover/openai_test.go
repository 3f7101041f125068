package failover_test

import (
	"context"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/pipelinetest"
	"github.com/voiced-dev/voiced/processors/provider/openaitest"
	"github.com/voiced-dev/voiced/processors/tts"
	"github.com/voiced-dev/voiced/processors/tts/failover"
	"github.com/voiced-dev/voiced/processors/tts/openai"
)

// Through the real protocol: the primary server drops the connection in
// the middle of the first sentence's MP3; the tts stage still emits the
// whole sentence, from the backup, and the next sentence goes to the
// primary again.
func TestTTSStageCarriesOnWhenAServerDropsMidSentence(t *testing.T) {
	primary := openaitest.New(t, openaitest.Config{Voices: []string{"nova"}})
	backup := openaitest.New(t, openaitest.Config{TTSModel: "kokoro", Voices: []string{"af_heart"}})
	primary.Push("/v1/audio/speech", openaitest.Fault{DropAfter: 5000})
	a, err := openai.New(openai.Config{BaseURL: primary.URL, Format: "mp3"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := openai.New(openai.Config{BaseURL: backup.URL, Model: "kokoro", Voice: "af_heart", Format: "pcm"})
	if err != nil {
		t.Fatal(err)
	}
	// The backup does not know the primary's voices: it speaks its own
	// default (the fake checks).
	syn, err := failover.New(failover.Config{}, failover.Member{Name: "openai", Synthesizer: a}, failover.Member{Name: "kokoro", Synthesizer: b})
	if err != nil {
		t.Fatal(err)
	}
	proc, err := tts.NewProcessor(syn, tts.ProcessorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out pipelinetest.Recorder
	p := pipeline.New(pipeline.Options{Sink: out.Sink}, proc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for _, f := range []frame.Frame{
		&frame.LLMResponseStart{},
		&frame.Handoff{Voice: "nova"},
		&frame.LLMText{Text: "Your table is booked. "},
		&frame.LLMText{Text: "See you tonight."},
		&frame.LLMResponseEnd{},
		&frame.End{},
	} {
		if err := p.Push(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if errs := pipelinetest.Find[*frame.Error](&out); len(errs) != 0 {
		t.Fatalf("errors: %v", errs[0].Err)
	}
	var pcm []int16
	var spoken []string
	for _, a := range pipelinetest.Find[*frame.OutputAudio](&out) {
		pcm = append(pcm, a.Samples...)
		if a.Spoken != "" {
			spoken = append(spoken, a.Spoken)
		}
	}
	if len(spoken) != 2 {
		t.Fatalf("spoken %q", spoken)
	}
	// Part of sentence 1 from the primary, all of it from the backup, all
	// of sentence 2 from the primary: more than two whole sentences.
	if secs := float64(len(pcm)) / 24000; secs < 2*3.29 || secs > 3*3.29 {
		t.Fatalf("%.2f s of audio", secs)
	}
	if db := audio.DBFS(pcm); db < -40 {
		t.Fatalf("level %.1f dBFS", db)
	}
	if n := len(backup.Requests()); n != 1 {
		t.Fatalf("backup asked %d times", n)
	}
	if reqs := primary.Requests(); len(reqs) != 2 || reqs[1].Input != "See you tonight." {
		t.Fatalf("primary requests %+v", reqs)
	}
}
