package provider

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"
)

func TestWrapClassifiesFailures(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		status int
		err    error
		retry  bool
	}{
		{0, io.ErrUnexpectedEOF, true},
		{429, errors.New("slow down"), true},
		{503, errors.New("unavailable"), true},
		{400, errors.New("bad model"), false},
		{401, errors.New("bad key"), false},
	} {
		err := Wrap(ctx, "openai", "transcribe", tc.status, tc.err)
		var pe *Error
		if !errors.As(err, &pe) || pe.Provider != "openai" || pe.Op != "transcribe" || pe.Status != tc.status {
			t.Fatalf("%d %v: %#v", tc.status, tc.err, err)
		}
		if IsRetryable(err) != tc.retry || !errors.Is(err, tc.err) {
			t.Errorf("%d %v: retryable %v, want %v", tc.status, tc.err, IsRetryable(err), tc.retry)
		}
	}
	if Wrap(ctx, "x", "y", 0, nil) != nil {
		t.Error("nil error wrapped")
	}
	cause := errors.New("barge-in")
	cctx, cancel := context.WithCancelCause(ctx)
	cancel(cause)
	if err := Wrap(cctx, "x", "y", 0, context.Canceled); err != cause || IsRetryable(err) {
		t.Errorf("cancelled call: %v", err)
	}
}

func TestAPIKeyNamesTheMissingVariable(t *testing.T) {
	t.Setenv("VOICED_TEST_KEY", "sk-1")
	if k, err := APIKey("VOICED_TEST_KEY"); k != "sk-1" || err != nil {
		t.Fatalf("%q %v", k, err)
	}
	_, err := APIKey("VOICED_TEST_UNSET_KEY")
	if !errors.Is(err, ErrMissingKey) || err.Error() != "provider: API key variable not set: VOICED_TEST_UNSET_KEY" {
		t.Fatalf("%v", err)
	}
	if k, err := APIKey(""); k != "" || err != nil {
		t.Fatalf("no variable: %q %v", k, err)
	}
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(2, time.Second)
		fail := &Error{Provider: "p", Op: "o", Retryable: true, Err: io.ErrUnexpectedEOF}
		for range 2 {
			probe, ok := b.Admit()
			if !ok || probe {
				t.Fatal("closed breaker refused")
			}
			b.Done(probe, fail)
		}
		if _, ok := b.Admit(); ok || !b.Open() {
			t.Fatal("breaker did not open after 2 failures")
		}
		time.Sleep(time.Second)
		probe, ok := b.Admit()
		if !ok || !probe {
			t.Fatal("no probe after the cooldown")
		}
		if _, ok := b.Admit(); ok {
			t.Fatal("second call admitted during the probe")
		}
		b.Done(probe, fail)
		if _, ok := b.Admit(); ok {
			t.Fatal("failed probe did not reopen")
		}
		time.Sleep(time.Second)
		probe, _ = b.Admit()
		b.Done(probe, nil)
		if b.Open() {
			t.Fatal("successful probe did not close")
		}
		probe, _ = b.Admit()
		b.Done(probe, errors.New("bad request"))
		if b.Open() {
			t.Fatal("non-retryable error counted")
		}
	})
}

func TestBackoffDoublesToACap(t *testing.T) {
	for n, want := range []time.Duration{100, 200, 400, 800} {
		if got := Backoff(100*time.Millisecond, n); got != want*time.Millisecond {
			t.Errorf("n=%d: %v", n, got)
		}
	}
	if got := Backoff(time.Second, 10); got != 5*time.Second {
		t.Errorf("cap: %v", got)
	}
}

func TestStatsCountsCalls(t *testing.T) {
	var s Stats
	info := CallInfo{Provider: "openai", Op: "synthesize"}
	_, c := Start(context.Background(), &s, info)
	c.FirstResult()
	c.FirstResult()
	c.End(nil)
	_, c = Start(context.Background(), &s, info)
	c.End(&Error{Retryable: true, Err: io.EOF})
	got := s.Get(info)
	if got.Calls != 2 || got.Errors != 1 || got.Retryable != 1 {
		t.Fatalf("%+v", got)
	}
	_, c = Start(context.Background(), nil, info) // no observer
	c.FirstResult()
	c.End(nil)
}
