package audio_test

import (
	"fmt"

	"github.com/voiced-dev/voiced/audio"
)

// A 48 kHz stream resampled to the pipeline's 16 kHz in 20 ms chunks,
// reusing one output buffer.
func ExampleResampler() {
	r, err := audio.NewResampler(48000, 16000)
	if err != nil {
		panic(err)
	}
	chunk := make([]int16, 960) // 20 ms at 48 kHz
	out := make([]int16, 0, r.MaxOutput(len(chunk)))
	for range 3 {
		out = r.Process(out[:0], chunk)
		fmt.Println(len(out), "samples")
	}
	fmt.Println("delay", r.Delay())
	// Output:
	// 320 samples
	// 320 samples
	// 320 samples
	// delay 1.4375ms
}
