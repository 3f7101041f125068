package e2e

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/server"
	"github.com/voiced-dev/voiced/internal/testenv"
	"github.com/voiced-dev/voiced/pipeline"
)

// callSeen records what the pipeline of a phone call carried: the format
// of the caller's audio as the transport pushed it, and what the
// recognizer heard.
type callSeen struct {
	mu      sync.Mutex
	formats map[frame.Format]int
	heard   []string
}

func (s *callSeen) OnHop(h pipeline.Hop) {
	if !h.First {
		return
	}
	switch f := h.Frame.(type) {
	case *frame.InputAudio:
		s.mu.Lock()
		if s.formats == nil {
			s.formats = map[frame.Format]int{}
		}
		s.formats[f.Format]++
		s.mu.Unlock()
	case *frame.Transcript:
		if f.Final && !f.Typed {
			s.mu.Lock()
			s.heard = append(s.heard, f.Text)
			s.mu.Unlock()
		}
	}
}

// TestE2EBaresipG722 is a wideband phone call: baresip, a real softphone
// with only G.722 enabled, calls the real server (Silero VAD,
// pocketsphinx, the scripted demo agent, flite) with a spoken sentence as
// its microphone and records what it hears. The call negotiates G.722, the
// caller's 16 kHz audio reaches the pipeline as it is (no 8 kHz leg, no
// upsampling), the recognizer transcribes it, and the caller hears the
// agent's answer, wideband: with the energy above 4 kHz that G.711 cannot
// carry.
func TestE2EBaresipG722(t *testing.T) {
	bin := requireTool(t, "baresip", "baresip-core")
	mods := "/usr/lib/baresip/modules"
	for _, m := range []string{"g722.so", "aufile.so", "sndfile.so"} {
		if _, err := os.Stat(filepath.Join(mods, m)); err != nil {
			if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
				t.Fatalf("baresip module missing: %v", err)
			}
			t.Skipf("baresip module missing: %v", err)
		}
	}
	dir := t.TempDir()
	said := "Hello there. What can you do for me?"
	// 16 kHz mono, a second of silence before the sentence and eight
	// after: baresip hangs up when its microphone file ends.
	pcm := append(make([]int16, 16000), speech(t, said)...)
	pcm = append(pcm, make([]int16, 8*16000)...)
	mic := filepath.Join(dir, "mic.wav")
	if err := audio.SaveWAV(mic, frame.Mono16k, pcm); err != nil {
		t.Fatal(err)
	}

	seen, sipAddr := startSIP(t, 31000, 31999)

	rtpPort := freePort(t)
	rec := filepath.Join(dir, "rec")
	if err := os.Mkdir(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`poll_method epoll
sip_listen 127.0.0.1:%d
audio_player alsa,null
audio_source aufile,%s
audio_alert alsa,null
module_path %s
module g722.so
module aufile.so
module alsa.so
module sndfile.so
module_tmp uuid.so
module_tmp account.so
module_app menu.so
snd_path %s
rtp_ports %d-%d
`, freePort(t), mic, mods, rec, rtpPort, rtpPort+1)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte("<sip:caller@127.0.0.1>;regint=0;audio_codecs=G722\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer bcancel()
	out, err := exec.CommandContext(bctx, bin, "-f", dir, "-e", "/dial sip:demo@"+sipAddr, "-t", "16").CombinedOutput()
	if bctx.Err() != nil {
		t.Fatalf("baresip did not finish: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "G722") {
		t.Errorf("baresip does not report a G.722 call:\n%s", out)
	}

	// The caller's audio reached the pipeline at 16 kHz, and only so.
	seen.mu.Lock()
	formats, heard := seen.formats, strings.Join(seen.heard, " ")
	seen.mu.Unlock()
	if formats[frame.Mono16k] == 0 || len(formats) != 1 {
		t.Errorf("caller audio pushed in formats %v, want 16 kHz mono only\n%s", formats, out)
	}
	t.Logf("the agent heard %q", heard)
	if overlap(said, heard) < 2 {
		t.Errorf("the agent heard %q, want words of %q", heard, said)
	}

	// What baresip heard: the agent's answer, loud and wideband.
	got, err := filepath.Glob(filepath.Join(rec, "*-dec.wav"))
	if err != nil || len(got) != 1 {
		t.Fatalf("baresip recorded %v (%v)\n%s", got, err, out)
	}
	format, played, err := audio.LoadWAV(got[0])
	if err != nil {
		t.Fatal(err)
	}
	if format.SampleRate != 16000 {
		t.Errorf("baresip decoded %d Hz audio, want G.722's 16000", format.SampleRate)
	}
	win := format.Samples(100 * time.Millisecond)
	var loud []int16
	for i := 0; i+win <= len(played); i += win {
		if audio.DBFS(played[i:i+win]) > -35 {
			loud = append(loud, played[i:i+win]...)
		}
	}
	if len(loud) < format.Samples(time.Second) {
		t.Fatalf("the caller heard %v of audible speech in %v, want the agent's answer\n%s",
			time.Duration(len(loud))*time.Second/time.Duration(format.SampleRate),
			time.Duration(len(played))*time.Second/time.Duration(format.SampleRate), out)
	}
	high := highBandRatio(loud, format.SampleRate, 4300)
	t.Logf("the caller heard %v of speech at %.1f dBFS; %.1f dB of its energy above 4.3 kHz",
		time.Duration(len(loud))*time.Second/time.Duration(format.SampleRate), audio.DBFS(loud), high)
	// Speech band-limited to 4 kHz (an 8 kHz leg anywhere on the way)
	// and coded with G.722 measures about -53 dB; flite's 16 kHz voice
	// through G.722 about -34 dB, and the demo agent's answers -25 to -28.
	if high < -40 {
		t.Errorf("%.1f dB of the answer's energy above 4.3 kHz: not wideband", high)
	}
}

// highBandRatio is the share of pcm's energy above cutoff Hz, in dB, from
// the power spectra of Hann-windowed 512-sample frames.
func highBandRatio(pcm []int16, rate int, cutoff float64) float64 {
	const n = 512
	w := make([]float64, n)
	for i := range w {
		w[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/n)
	}
	cut := int(cutoff * n / float64(rate))
	var high, total float64
	x := make([]float64, n)
	for off := 0; off+n <= len(pcm); off += n {
		for i := range x {
			x[i] = float64(pcm[off+i]) * w[i]
		}
		for k := 1; k < n/2; k++ {
			var re, im float64
			for i, v := range x {
				a := 2 * math.Pi * float64(k*i) / n
				re += v * math.Cos(a)
				im -= v * math.Sin(a)
			}
			p := re*re + im*im
			total += p
			if k >= cut {
				high += p
			}
		}
	}
	return 10 * math.Log10(high/total)
}

// freePort returns an even loopback port that was free for UDP and TCP a
// moment ago, with the next one free for UDP (a SIP peer listens on both
// protocols; RTP and RTCP take a pair).
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if port%2 != 0 || port > 65000 {
			continue
		}
		c2, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		if err != nil {
			continue
		}
		c2.Close()
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}

// requireTool returns the path of a program, skipping the test when it is
// missing (failing it when VOICED_REQUIRE_SERVICES=1).
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s not installed (Debian package %s: make deps)", name, pkg)
		}
		t.Skipf("%s not installed (Debian package %s: make deps)", name, pkg)
	}
	return p
}

// startSIP starts the real server, listening for SIP on a free loopback
// port with RTP on ports lo to hi, and returns what its calls' pipelines
// carried and the SIP address.
func startSIP(t *testing.T, lo, hi int) (*callSeen, string) {
	t.Helper()
	seen := &callSeen{}
	cfg := config.Default()
	cfg.SIP.RTPPortMin, cfg.SIP.RTPPortMax = lo, hi
	srv := testenv.Start(t, cfg, func(s *server.Server) {
		s.Builder().Observers = append(s.Builder().Observers, seen)
	})
	sipAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	if err := srv.ListenSIP(t.Context(), sipAddr, nil); err != nil {
		t.Fatal(err)
	}
	return seen, sipAddr
}
