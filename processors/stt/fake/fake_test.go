package fake_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/stt"
	"github.com/voiced-dev/voiced/processors/stt/fake"
)

type timed struct {
	at  time.Duration
	res stt.Result
}

// TestTimeline: interim results come FirstInterim after the first audio and
// every InterimEvery after, the final one Final after Finish, then EOF.
func TestTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := fake.New(fake.Config{Transcript: "turn on the lights", FirstInterim: 100 * time.Millisecond,
			InterimEvery: 50 * time.Millisecond, Final: 150 * time.Millisecond})
		ctx := context.Background()
		s, err := r.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var got []timed
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				res, err := s.Recv(ctx)
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				got = append(got, timed{time.Since(start), res})
			}
		})
		pcm := make([]int16, 320)
		for range 15 { // 300 ms of audio
			if err := s.Send(ctx, pcm); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := s.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		s.Close()
		want := []timed{
			{100 * time.Millisecond, stt.Result{Text: "turn"}},
			{150 * time.Millisecond, stt.Result{Text: "turn on"}},
			{200 * time.Millisecond, stt.Result{Text: "turn on the"}},
			{450 * time.Millisecond, stt.Result{Text: "turn on the lights", Final: true}},
		}
		if len(got) != len(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("result %d: got %+v, want %+v", i, got[i], want[i])
			}
		}
		if st := r.Stats(); st != (fake.Stats{Opens: 1, Samples: 15 * 320, Finishes: 1, Finals: 1}) {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestChecks: the fake refuses what a real recognizer would choke on.
func TestChecks(t *testing.T) {
	ctx := context.Background()
	r := fake.New(fake.Config{})
	s, _ := r.Open(ctx)
	if err := s.Send(ctx, nil); !errors.Is(err, fake.ErrEmptyAudio) {
		t.Errorf("empty send: %v", err)
	}
	if err := s.Finish(ctx); !errors.Is(err, fake.ErrNoAudio) {
		t.Errorf("finish without audio: %v", err)
	}
	if err := s.Send(ctx, make([]int16, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, make([]int16, 10)); !errors.Is(err, fake.ErrFinished) {
		t.Errorf("send after finish: %v", err)
	}
	if err := s.Finish(ctx); !errors.Is(err, fake.ErrFinished) {
		t.Errorf("finish twice: %v", err)
	}
	s.Close()
	s.Close()
	if _, err := s.Recv(ctx); !errors.Is(err, stt.ErrClosed) {
		t.Errorf("recv after close: %v", err)
	}
	if err := s.Send(ctx, make([]int16, 10)); !errors.Is(err, stt.ErrClosed) {
		t.Errorf("send after close: %v", err)
	}
	stereo := fake.New(fake.Config{Format: frame.Format{SampleRate: 8000, Channels: 2}})
	s2, _ := stereo.Open(ctx)
	if err := s2.Send(ctx, make([]int16, 3)); err == nil {
		t.Error("odd sample count accepted for stereo")
	}
}

// TestCancel: a blocked Recv returns at once when its context ends or the
// stream is closed, and leaves no goroutine.
func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := fake.New(fake.Config{Final: time.Hour})
		s, _ := r.Open(context.Background())
		s.Send(context.Background(), make([]int16, 320))
		s.Finish(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error)
		go func() {
			_, err := s.Recv(ctx) // the single interim
			if err != nil {
				errc <- err
				return
			}
			_, err = s.Recv(ctx)
			errc <- err
		}()
		time.Sleep(time.Second)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("recv: %v", err)
		}
		go func() {
			_, err := s.Recv(context.Background())
			errc <- err
		}()
		synctest.Wait()
		s.Close()
		if err := <-errc; !errors.Is(err, stt.ErrClosed) {
			t.Errorf("recv after close: %v", err)
		}
	})
}
