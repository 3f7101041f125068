package audio

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
)

// The fixtures are flite speech ("Hello, this is a test of streaming
// speech.", 3.29 s at 8 kHz) encoded by Debian's lame 3.100:
//
//	flite -t "..." -o hello.wav
//	lame -m m --resample 24 -b 32 hello.wav hello-24k-mono.mp3
//	sox hello.wav -c 2 -r 22050 st.wav && lame -m j -b 48 st.wav hello-22k-stereo.mp3
const helloSeconds = 3.29

func readAllMP3(t *testing.T, m *MP3Reader) ([]int16, error) {
	t.Helper()
	var out []int16
	buf := make([]int16, 1000)
	for {
		n, err := m.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

func TestMP3ReaderDecodesFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		rate int
	}{
		{"testdata/hello-24k-mono.mp3", 24000},
		{"testdata/hello-22k-stereo.mp3", 22050},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			m, err := NewMP3Reader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if want := (frame.Format{SampleRate: tc.rate, Channels: 1}); m.Format() != want {
				t.Fatalf("format %+v, want %+v", m.Format(), want)
			}
			pcm, err := readAllMP3(t, m)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("end: %v, want EOF", err)
			}
			// lame adds its encoder delay and pads the last frame.
			got := float64(len(pcm)) / float64(tc.rate)
			if got < helloSeconds || got > helloSeconds+0.15 {
				t.Errorf("decoded %.3f s, want %.2f s (+ up to 150 ms of padding)", got, helloSeconds)
			}
			if db := DBFS(pcm); db < -40 || db > -3 {
				t.Errorf("level %.1f dBFS, want speech", db)
			}
		})
	}
}

// gatedReader serves head, then blocks until gate is closed and serves
// tail, then ends with end.
type gatedReader struct {
	head, tail []byte
	gate       chan struct{}
	end        error
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if len(g.head) > 0 {
		n := copy(p, g.head)
		g.head = g.head[n:]
		return n, nil
	}
	if g.gate != nil {
		<-g.gate
		g.gate = nil
	}
	if len(g.tail) > 0 {
		n := copy(p, g.tail)
		g.tail = g.tail[n:]
		return n, nil
	}
	return 0, g.end
}

func TestMP3ReaderDecodesBeforeTheStreamIsDownloaded(t *testing.T) {
	b, err := os.ReadFile("testdata/hello-24k-mono.mp3")
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	src := &gatedReader{head: b[:len(b)/4], tail: b[len(b)/4:], gate: gate, end: io.EOF}
	got := make(chan int, 1)
	go func() {
		m, err := NewMP3Reader(src)
		if err != nil {
			got <- -1
			return
		}
		n, _ := m.Read(make([]int16, 480))
		got <- n
		<-gate // let the test finish the stream
	}()
	select {
	case n := <-got:
		if n <= 0 {
			t.Fatalf("first read gave %d samples", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no audio from the first quarter of the stream: the reader waits for the whole body")
	}
	close(gate)
}

func TestMP3ReaderReportsADroppedSource(t *testing.T) {
	b, err := os.ReadFile("testdata/hello-24k-mono.mp3")
	if err != nil {
		t.Fatal(err)
	}
	// Cut inside a frame, as a dropped connection does.
	src := &gatedReader{head: b[:len(b)/2+37], end: io.ErrUnexpectedEOF}
	m, err := NewMP3Reader(src)
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := readAllMP3(t, m)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("end: %v, want io.ErrUnexpectedEOF", err)
	}
	if len(pcm) == 0 {
		t.Fatal("no audio before the drop")
	}
	if _, again := m.Read(make([]int16, 10)); !errors.Is(again, io.ErrUnexpectedEOF) {
		t.Fatalf("read after the error: %v", again)
	}
}

func TestMP3ReaderRejectsOtherData(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	var wav bytes.Buffer
	if err := WriteWAV(&wav, frame.Mono16k, make([]int16, 1600)); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"empty": nil,
		"json":  []byte(`{"error":{"message":"rate limited"}}`),
		"noise": noise,
		"wav":   wav.Bytes(),
	} {
		if _, err := NewMP3Reader(bytes.NewReader(data)); err == nil {
			t.Errorf("%s: accepted as MP3", name)
		}
	}
}

func FuzzMP3Reader(f *testing.F) {
	b, err := os.ReadFile("testdata/hello-24k-mono.mp3")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:2000])
	f.Add(b[len(b)-1500:])
	f.Add([]byte("ID3\x03\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := NewMP3Reader(bytes.NewReader(data))
		if err != nil {
			return
		}
		buf := make([]int16, 512)
		for range 10000 {
			if _, err := m.Read(buf); err != nil {
				return
			}
		}
	})
}

func TestMP3ReaderSkipsID3Tags(t *testing.T) {
	b, err := os.ReadFile("testdata/hello-24k-mono.mp3")
	if err != nil {
		t.Fatal(err)
	}
	tag := append([]byte("ID3\x04\x00\x00\x00\x00\x01\x00"), make([]byte, 128)...) // 128-byte tag
	m, err := NewMP3Reader(bytes.NewReader(append(tag, b...)))
	if err != nil {
		t.Fatal(err)
	}
	if pcm, err := readAllMP3(t, m); !errors.Is(err, io.EOF) || len(pcm) < 24000*3 {
		t.Fatalf("%d samples, %v", len(pcm), err)
	}
	// A tag claiming more than a tag may be is refused, not allocated.
	if _, err := NewMP3Reader(bytes.NewReader([]byte("ID3\x03\x00\x00\x7f\x7f\x7f\x7f"))); !errors.Is(err, ErrMP3) {
		t.Fatalf("huge tag: %v", err)
	}
	if _, err := NewMP3Reader(bytes.NewReader([]byte("ID3#9\xb9\xe1\x00\x99j"))); !errors.Is(err, ErrMP3) {
		t.Fatalf("tag size not sync-safe: %v", err)
	}
}
