package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/stt"
)

// behaviour scripts one stream of a fake recognizer.
type behaviour struct {
	openErr  error
	sendFail int   // Send fails once this many samples have arrived (0: never)
	sendErr  error // returned then
	recvErr  error // Recv returns it after Finish instead of the final
	hang     bool  // Recv blocks after Finish until closed or ctx done
	interim  bool  // one interim result once audio arrived
}

// fakeRec answers each utterance "<name> heard <samples>" and records
// what each stream was sent. Streams follow the script in order (the last
// behaviour repeats).
type fakeRec struct {
	name   string
	rate   int
	script []behaviour

	mu      sync.Mutex
	opens   int
	streams []*fakeStream
}

func (r *fakeRec) Format() frame.Format { return frame.Format{SampleRate: r.rate, Channels: 1} }

func (r *fakeRec) Open(ctx context.Context) (stt.Stream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.script[min(r.opens, len(r.script)-1)]
	r.opens++
	if b.openErr != nil {
		return nil, b.openErr
	}
	s := &fakeStream{r: r, b: b, wake: make(chan struct{})}
	r.streams = append(r.streams, s)
	return s, nil
}

func (r *fakeRec) Opens() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opens
}

// received is what the last stream got.
func (r *fakeRec) received() (pcm []int16, finished, closed bool) {
	r.mu.Lock()
	s := r.streams[len(r.streams)-1]
	r.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pcm), s.finished, s.closed
}

type fakeStream struct {
	r *fakeRec
	b behaviour

	mu       sync.Mutex
	pcm      []int16
	finished bool
	closed   bool
	interim  bool // delivered
	final    bool // delivered
	wake     chan struct{}
}

func (s *fakeStream) changed() { close(s.wake); s.wake = make(chan struct{}) }

func (s *fakeStream) Send(_ context.Context, pcm []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.finished {
		panic(fmt.Sprintf("%s: send on a closed or finished stream", s.r.name))
	}
	s.pcm = append(s.pcm, pcm...)
	s.changed()
	if s.b.sendFail > 0 && len(s.pcm) >= s.b.sendFail {
		return s.b.sendErr
	}
	return nil
}

func (s *fakeStream) Finish(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.finished {
		panic(s.r.name + ": finish on a closed or finished stream")
	}
	s.finished = true
	s.changed()
	return nil
}

func (s *fakeStream) Recv(ctx context.Context) (stt.Result, error) {
	for {
		s.mu.Lock()
		wake := s.wake
		switch {
		case s.closed:
			s.mu.Unlock()
			return stt.Result{}, stt.ErrClosed
		case s.b.interim && !s.interim && len(s.pcm) > 0:
			s.interim = true
			s.mu.Unlock()
			return stt.Result{Text: s.r.name + " hears"}, nil
		case s.final:
			s.mu.Unlock()
			return stt.Result{}, io.EOF
		case s.finished && s.b.recvErr != nil:
			s.mu.Unlock()
			return stt.Result{}, s.b.recvErr
		case s.finished && !s.b.hang:
			s.final = true
			n := len(s.pcm)
			s.mu.Unlock()
			return stt.Result{Text: fmt.Sprintf("%s heard %d", s.r.name, n), Final: true}, nil
		}
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return stt.Result{}, context.Cause(ctx)
		}
	}
}

func (s *fakeStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.changed()
	}
	return nil
}

var (
	errReset = &provider.Error{Provider: "a", Op: "send", Retryable: true, Err: errors.New("connection reset")}
	err503   = &provider.Error{Provider: "a", Op: "transcribe", Status: 503, Retryable: true, Err: errors.New("unavailable")}
	err401   = &provider.Error{Provider: "a", Op: "open", Status: 401, Err: errors.New("bad key")}
)

// utterance sends 1 s of 16 kHz audio in 20 ms pieces, finishes, and
// collects the results until EOF.
func utterance(t *testing.T, r stt.Recognizer) ([]stt.Result, []int16, error) {
	t.Helper()
	ctx := context.Background()
	s, err := r.Open(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	type recv struct {
		res []stt.Result
		err error
	}
	got := make(chan recv, 1)
	go func() {
		var rs []stt.Result
		for {
			res, err := s.Recv(ctx)
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				got <- recv{rs, err}
				return
			}
			rs = append(rs, res)
		}
	}()
	var sent []int16
	for i := range 50 {
		pcm := slices.Repeat([]int16{int16(i + 1)}, 320)
		sent = append(sent, pcm...)
		if err := s.Send(ctx, pcm); err != nil {
			s.Close()
			<-got
			return nil, sent, err
		}
	}
	if err := s.Finish(ctx); err != nil {
		s.Close()
		<-got
		return nil, sent, err
	}
	g := <-got
	return g.res, sent, g.err
}

func finals(rs []stt.Result) []string {
	var out []string
	for _, r := range rs {
		if r.Final {
			out = append(out, r.Text)
		}
	}
	return out
}

func TestReplaysTheUtteranceToTheNextRecognizer(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    behaviour
	}{
		{"open fails", behaviour{openErr: err401}},
		{"send fails mid-utterance", behaviour{sendFail: 8000, sendErr: errReset, interim: true}},
		{"final fails", behaviour{recvErr: err503, interim: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := &fakeRec{name: "a", rate: 16000, script: []behaviour{tc.a, {}}}
				b := &fakeRec{name: "b", rate: 16000, script: []behaviour{{}}}
				var logs bytes.Buffer
				r, err := New(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, Member{"a", a}, Member{"b", b})
				if err != nil {
					t.Fatal(err)
				}
				res, sent, err := utterance(t, r)
				if err != nil {
					t.Fatal(err)
				}
				if got := finals(res); !slices.Equal(got, []string{"b heard 16000"}) {
					t.Fatalf("finals %q (all %+v)", got, res)
				}
				pcm, finished, _ := b.received()
				if !slices.Equal(pcm, sent) || !finished {
					t.Fatalf("b got %d samples (finished %v), want the whole utterance (%d)", len(pcm), finished, len(sent))
				}
				if !strings.Contains(logs.String(), "from=a to=b") {
					t.Errorf("log %q", logs.String())
				}
				// The next utterance starts at a again.
				if res, _, err := utterance(t, r); err != nil || !slices.Equal(finals(res), []string{"a heard 16000"}) {
					t.Fatalf("next: %+v %v", res, err)
				}
			})
		})
	}
}

func TestRetriesTheSameRecognizerFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeRec{name: "a", rate: 16000, script: []behaviour{{recvErr: err503}, {recvErr: err503}, {}}}
		b := &fakeRec{name: "b", rate: 16000, script: []behaviour{{}}}
		r, _ := New(Config{Retries: 2, Backoff: 100 * time.Millisecond}, Member{"a", a}, Member{"b", b})
		start := time.Now()
		res, _, err := utterance(t, r)
		if err != nil || !slices.Equal(finals(res), []string{"a heard 16000"}) {
			t.Fatalf("%+v %v", res, err)
		}
		if d := time.Since(start); d != 300*time.Millisecond {
			t.Fatalf("took %v, want the 100 ms and 200 ms backoffs", d)
		}
		if a.Opens() != 3 || b.Opens() != 0 {
			t.Fatalf("opens a=%d b=%d", a.Opens(), b.Opens())
		}
	})
}

func TestTimeoutOfTheFinalMovesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeRec{name: "a", rate: 16000, script: []behaviour{{hang: true}}}
		b := &fakeRec{name: "b", rate: 16000, script: []behaviour{{}}}
		r, _ := New(Config{Timeout: time.Second}, Member{"a", a}, Member{"b", b})
		start := time.Now()
		res, _, err := utterance(t, r)
		if err != nil || !slices.Equal(finals(res), []string{"b heard 16000"}) {
			t.Fatalf("%+v %v", res, err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("took %v", d)
		}
		if _, _, closed := a.received(); !closed {
			t.Fatal("a's stream left open")
		}
	})
}

func TestBreakerSkipsAFailingRecognizer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeRec{name: "a", rate: 16000, script: []behaviour{{recvErr: err503}, {recvErr: err503}, {}}}
		b := &fakeRec{name: "b", rate: 16000, script: []behaviour{{}}}
		r, _ := New(Config{BreakerFailures: 2, BreakerCooldown: time.Minute}, Member{"a", a}, Member{"b", b})
		for range 4 {
			if res, _, err := utterance(t, r); err != nil || !slices.Equal(finals(res), []string{"b heard 16000"}) {
				t.Fatalf("%+v %v", res, err)
			}
		}
		if a.Opens() != 2 {
			t.Fatalf("a opened %d times, want 2 (then its circuit is open)", a.Opens())
		}
		time.Sleep(time.Minute)
		if res, _, err := utterance(t, r); err != nil || !slices.Equal(finals(res), []string{"a heard 16000"}) {
			t.Fatalf("probe: %+v %v", res, err)
		}
	})
}

func TestAllFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeRec{name: "a", rate: 16000, script: []behaviour{{recvErr: err503}}}
		b := &fakeRec{name: "b", rate: 16000, script: []behaviour{{openErr: err401}}}
		r, _ := New(Config{}, Member{"a", a}, Member{"b", b})
		_, _, err := utterance(t, r)
		if !errors.Is(err, ErrAllFailed) || !errors.Is(err, err503) || !errors.Is(err, err401) {
			t.Fatalf("%v", err)
		}
		// Opening fails when no member opens.
		a.script = []behaviour{{openErr: err401}}
		if _, err := r.Open(context.Background()); !errors.Is(err, ErrAllFailed) {
			t.Fatalf("open: %v", err)
		}
	})
}

func TestMembersAtOtherRatesGetResampledAudio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeRec{name: "a", rate: 16000, script: []behaviour{{recvErr: err503}}}
		b := &fakeRec{name: "b", rate: 8000, script: []behaviour{{}}}
		r, err := New(Config{}, Member{"a", a}, Member{"b", b})
		if err != nil {
			t.Fatal(err)
		}
		res, _, err := utterance(t, r)
		// 1 s at 8 kHz, and the resampler's filter tail.
		var n int
		if f := finals(res); err != nil || len(f) != 1 {
			t.Fatalf("%+v %v", res, err)
		} else if _, err := fmt.Sscanf(f[0], "b heard %d", &n); err != nil || n < 8000 || n > 8100 {
			t.Fatalf("final %q", f[0])
		}
	})
}

func TestCloseDuringABackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeRec{name: "a", rate: 16000, script: []behaviour{{recvErr: err503}}}
		r, _ := New(Config{Retries: 1, Backoff: time.Second}, Member{"a", a})
		ctx := context.Background()
		s, err := r.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.Send(ctx, make([]int16, 320))
		s.Finish(ctx)
		got := make(chan error, 1)
		go func() { _, err := s.Recv(ctx); got <- err }()
		time.Sleep(100 * time.Millisecond) // Recv failed, the retry waits
		synctest.Wait()
		if err := s.Send(ctx, make([]int16, 320)); !errors.Is(err, ErrFinished) {
			t.Fatalf("send after finish: %v", err)
		}
		s.Close()
		if err := <-got; !errors.Is(err, stt.ErrClosed) {
			t.Fatalf("%v", err)
		}
	})
}

func TestNewRejects(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
	a := &fakeRec{name: "a", rate: 16000, script: []behaviour{{}}}
	if _, err := New(Config{}, Member{"a", a}, Member{"odd", &fakeRec{rate: 12345}}); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
	if _, err := New(Config{Retries: -1}, Member{"a", a}); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
}

type closingRec struct {
	*fakeRec
	closed int
}

func (c *closingRec) Close() error { c.closed++; return nil }

func TestCloseClosesTheMembers(t *testing.T) {
	a := &closingRec{fakeRec: &fakeRec{rate: 16000, script: []behaviour{{}}}}
	r, _ := New(Config{}, Member{"a", a}, Member{"b", &fakeRec{rate: 16000, script: []behaviour{{}}}})
	if err := r.Close(); err != nil || a.closed != 1 {
		t.Fatalf("%v, closed %d", err, a.closed)
	}
}
