package sphinx

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/voiced-dev/voiced/internal/cmem"
)

// rss returns the process's resident memory in MiB.
func rss(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return kb >> 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestBurstsGiveMemoryBack: bursts of concurrent utterances load more
// decoders than the pool keeps (tens of MiB of models each); with the C
// allocator tuned as voiced serve tunes it, the memory of those freed goes
// back to the system, so resident memory stays level from burst to burst
// and returns near where it was once the recognizer is closed. (Untuned,
// each burst of ten kept about 300 MiB more than the last.)
func TestBurstsGiveMemoryBack(t *testing.T) {
	needModels(t)
	if os.Getenv("MALLOC_ARENA_MAX") != "" || os.Getenv("MALLOC_MMAP_THRESHOLD_") != "" || os.Getenv("GLIBC_TUNABLES") != "" {
		t.Skip("the allocator is tuned by the environment")
	}
	cmem.Tune()
	pcm := synth(t, "what is the weather like today")
	cmem.TrimNow()
	base := rss(t)
	rec, err := New(Config{Pool: 2})
	if err != nil {
		t.Fatal(err)
	}
	const streams = 6
	burst := func() {
		ctx := context.Background()
		var wg sync.WaitGroup
		for range streams {
			wg.Go(func() {
				s, err := rec.Open(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				defer s.Close()
				for i := 0; i+320 <= len(pcm); i += 320 {
					if err := s.Send(ctx, pcm[i:i+320]); err != nil {
						t.Error(err)
						return
					}
				}
				if err := s.Finish(ctx); err != nil {
					t.Error(err)
					return
				}
				for {
					if _, err := s.Recv(ctx); err != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		cmem.TrimNow()
	}
	burst()
	first := rss(t)
	for range 2 {
		burst()
	}
	last := rss(t)
	rec.Close()
	cmem.TrimNow()
	closed := rss(t)
	t.Logf("resident memory: %d MiB before, %d after the first burst of %d, %d after the third, %d closed", base, first, streams, last, closed)
	if last > first+first/10 {
		t.Errorf("resident memory grew from %d to %d MiB over two more bursts", first, last)
	}
	if closed > base+64 {
		t.Errorf("resident memory %d MiB with the recognizer closed, %d before it", closed, base)
	}
}
