package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// drain returns the event types queued on c, in order.
func drain(t *testing.T, c *Conn) []string {
	t.Helper()
	var got []string
	for {
		select {
		case m := <-c.Outgoing():
			if m.Binary {
				got = append(got, "audio")
				continue
			}
			var ev Event
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Fatalf("queued %q: %v", m.Data, err)
			}
			s := ev.Type
			if ev.Code != "" {
				s += ":" + ev.Code
			}
			if m.Closing != (ev.Type == "error") {
				t.Errorf("queued %s with Closing %v: only Close's error event is marked", m.Data, m.Closing)
			}
			got = append(got, s)
		default:
			return got
		}
	}
}

// TestSlowClientPolicy: with the queue full an interim transcript is
// dropped and the session lives; a required event ends it with
// ErrSlowClient, and the error event is the last message queued.
func TestSlowClientPolicy(t *testing.T) {
	c := NewConn(ConnConfig{Kind: "test", Queue: 2})
	c.Notify(&frame.TTSText{Text: "a"})
	c.Notify(&frame.Transcript{Text: "interim"}) // fills the queue
	c.Notify(&frame.Transcript{Text: "interim, dropped"})
	if err := c.Err(); err != nil {
		t.Fatalf("an optional event closed the session: %v", err)
	}
	if got := fmt.Sprint(drain(t, c)); got != "[bot_text transcript]" {
		t.Fatalf("queued %s", got)
	}
	c.Notify(&frame.TTSText{Text: "b"})
	c.Notify(&frame.TTSText{Text: "c"})
	c.Notify(&frame.TTSText{Text: "d, no room"})
	select {
	case <-c.Done():
	default:
		t.Fatal("a required event that did not fit left the session open")
	}
	if !errors.Is(c.Err(), ErrSlowClient) || ErrorCode(c.Err()) != "slow_client" {
		t.Fatalf("closed with %v (code %q), want slow_client", c.Err(), ErrorCode(c.Err()))
	}
	// The queue was full: the error event could not be queued, and
	// nothing is queued after Close.
	c.Notify(&frame.TTSText{Text: "after"})
	if c.Enqueue(Outgoing{Binary: true}, true) {
		t.Error("Enqueue after Close queued a message")
	}
	if got := fmt.Sprint(drain(t, c)); got != "[bot_text bot_text]" {
		t.Errorf("queued %s", got)
	}
}

// TestCloseErrorEvent: Close queues the error event of its error, once,
// as the last message; a client that went away, a normal end and a
// cancelled context get none.
func TestCloseErrorEvent(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "[bot_text]"},
		{context.Canceled, "[bot_text]"},
		{fmt.Errorf("edge: %w", ErrClientGone), "[bot_text]"},
		{ErrShuttingDown, "[bot_text error:shutting_down]"},
		{BadInput("invalid_json", "x"), "[bot_text error:invalid_json]"},
		{&CodedError{Code: "room_closed", Err: errors.New("gone")}, "[bot_text error:room_closed]"},
		{fmt.Errorf("edge: %w", ErrIdle), "[bot_text error:idle]"},
		{errors.New("boom"), "[bot_text error:internal]"},
	} {
		c := NewConn(ConnConfig{})
		c.Notify(&frame.TTSText{Text: "a"})
		c.Close(tc.err)
		c.Close(errors.New("second close is ignored"))
		if got := fmt.Sprint(drain(t, c)); got != tc.want {
			t.Errorf("Close(%v): queued %s, want %s", tc.err, got, tc.want)
		}
		if c.Err() != tc.err {
			t.Errorf("Err() = %v, want %v", c.Err(), tc.err)
		}
	}
}

func TestCloseErrorMessage(t *testing.T) {
	var gotCode string
	c := NewConn(ConnConfig{ErrorMessage: func(code string, err error) []byte {
		gotCode = code
		return []byte("custom:" + err.Error())
	}})
	c.Close(BadInput("invalid_json", "x"))
	m := <-c.Outgoing()
	if gotCode != "invalid_json" || string(m.Data) != "custom:transport: invalid_json: x" {
		t.Errorf("Close queued %q (code %q), want the custom message of invalid_json", m.Data, gotCode)
	}
	c = NewConn(ConnConfig{ErrorMessage: func(string, error) []byte { t.Error("ErrorMessage called for a normal end"); return nil }})
	c.Close(nil)
	if n := len(c.Outgoing()); n != 0 {
		t.Errorf("a normal end queued %d messages", n)
	}
}

func TestNotifyInterrupted(t *testing.T) {
	c := NewConn(ConnConfig{})
	c.OnHop(pipelineHop(&frame.BotStoppedSpeaking{Meta: frame.Meta{Turn: 3}, Interrupted: true}, true))
	c.OnHop(pipelineHop(&frame.TTSText{Text: "relayed"}, false)) // not new: no event
	if got := fmt.Sprint(drain(t, c)); got != "[interrupted bot_stopped_speaking]" {
		t.Errorf("queued %s", got)
	}
}

// TestConcurrentCloseAndSend: events sent while the session closes are
// either queued before the error event or not at all.
func TestConcurrentCloseAndSend(t *testing.T) {
	c := NewConn(ConnConfig{Queue: 1000})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				c.Notify(&frame.TTSText{Text: "x"})
			}
		})
	}
	wg.Go(func() { c.Close(ErrShuttingDown) })
	wg.Wait()
	got := drain(t, c)
	if len(got) == 0 || got[len(got)-1] != "error:shutting_down" {
		t.Fatalf("last message %v, want the error event", got[max(0, len(got)-1):])
	}
}

// pusher records what is pushed.
type pusher struct{ frames []frame.Frame }

func (p *pusher) Push(_ context.Context, f frame.Frame) error {
	p.frames = append(p.frames, f)
	return nil
}

func (p *pusher) Turn() uint32 { return 7 }

// TestDeliver: typed text is pushed as exactly one final typed transcript,
// trimmed; blank text pushes nothing; end pushes End and is done.
func TestDeliver(t *testing.T) {
	p := &pusher{}
	ctx := context.Background()
	for _, m := range []Message{{Type: "text", Text: "  hi there "}, {Type: "text", Text: "   "}, {Type: "start"}} {
		if done, err := Deliver(ctx, p, m); done || err != nil {
			t.Fatalf("%+v: done %v err %v", m, done, err)
		}
	}
	if done, err := Deliver(ctx, p, Message{Type: "end"}); !done || err != nil {
		t.Fatalf("end: done %v err %v", done, err)
	}
	if len(p.frames) != 2 {
		t.Fatalf("pushed %d frames, want 2: %v", len(p.frames), p.frames)
	}
	tr, ok := p.frames[0].(*frame.Transcript)
	if !ok || tr.Text != "hi there" || !tr.Final || !tr.Typed {
		t.Errorf("pushed %#v, want a final typed transcript \"hi there\"", p.frames[0])
	}
	if _, ok := p.frames[1].(*frame.End); !ok {
		t.Errorf("pushed %T, want End", p.frames[1])
	}
}

func TestReady(t *testing.T) {
	c := NewConn(ConnConfig{Kind: "test"})
	c.Ready(&pusher{}, frame.Format{SampleRate: 8000, Channels: 1}, frame.Mono16k)
	m := <-c.Outgoing()
	var ev Event
	json.Unmarshal(m.Data, &ev)
	if ev.Type != "ready" || ev.Turn != 7 || ev.SessionID != c.ID() || ev.SampleRate != 8000 || ev.OutputSampleRate != 16000 {
		t.Errorf("ready %+v", ev)
	}
	if s := c.Session(frame.Mono16k, frame.Mono16k, nil, nil, nil); s.Kind != "test" || s.ID != c.ID() {
		t.Errorf("session %+v", s)
	}
}

func TestParseMessage(t *testing.T) {
	long := `{"type":"text","text":"` + strings.Repeat("a", MaxText+1) + `"}`
	for _, tc := range []struct {
		in    string
		start bool
		code  string // "" for ok
	}{
		{`{"type":"text","text":"hi"}`, false, ""},
		{` {"type":"end"} `, false, ""},
		{`{"type":"start","sample_rate":8000}`, true, ""},
		{`{"type":"start"}`, false, "unknown_type"},
		{`{"text":"hi"}`, false, "unknown_type"},
		{`{"type":"dance"}`, true, "unknown_type"},
		{`{"type":"end"}{"type":"end"}`, false, "invalid_json"},
		{`["end"]`, false, "invalid_json"},
		{"\xff", false, "invalid_utf8"},
		{long, false, "too_large"},
	} {
		_, err := ParseMessage([]byte(tc.in), tc.start)
		var pe *ProtocolError
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%.40q: %v", tc.in, err)
		case tc.code != "" && (!errors.As(err, &pe) || pe.Code != tc.code || !errors.Is(err, ErrBadInput)):
			t.Errorf("%.40q: %v, want a %s protocol error", tc.in, err, tc.code)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"type":"text","text":"hi"}`), false)
	f.Add([]byte(`{"type":"start","sample_rate":16000}`), true)
	f.Add([]byte(`{"type":"end"}`), false)
	f.Fuzz(func(t *testing.T, data []byte, start bool) {
		m, err := ParseMessage(data, start)
		if err != nil {
			if code := ErrorCode(err); code == "internal" || code == "" {
				t.Fatalf("error %v has code %q", err, code)
			}
			return
		}
		if m.Type != "text" && m.Type != "end" && !(start && m.Type == "start") || len(m.Text) > MaxText {
			t.Fatalf("accepted %+v", m)
		}
	})
}

// fakePipeline runs until its context ends or End is pushed.
type fakePipeline struct {
	ended  chan struct{}
	once   sync.Once
	runErr error
}

func (p *fakePipeline) Push(_ context.Context, f frame.Frame) error {
	if _, ok := f.(*frame.End); ok {
		p.once.Do(func() { close(p.ended) })
	}
	return nil
}

func (p *fakePipeline) Run(ctx context.Context) error {
	select {
	case <-p.ended:
		return p.runErr
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// TestRun checks the three ways a session ends.
func TestRun(t *testing.T) {
	bad := errors.New("client misbehaved")
	failed := errors.New("provider failed")
	for _, tc := range []struct {
		name   string
		feed   func(ctx context.Context, p Pusher) error
		runErr error
		want   error
	}{
		{"end drains", func(ctx context.Context, p Pusher) error { return p.Push(ctx, &frame.End{}) }, nil, nil},
		{"feed fails", func(context.Context, Pusher) error { return bad }, nil, bad},
		{"pipeline fails", func(ctx context.Context, p Pusher) error {
			p.Push(ctx, &frame.End{})
			<-ctx.Done() // Run stops Feed
			return ctx.Err()
		}, failed, failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var closedWith []error
			s := &Session{Feed: tc.feed, Close: func(err error) { closedWith = append(closedWith, err) }}
			p := &fakePipeline{ended: make(chan struct{}), runErr: tc.runErr}
			err := Run(context.Background(), s, p)
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Errorf("Run = %v, want %v", err, tc.want)
			}
			if len(closedWith) != 1 || closedWith[0] != err {
				t.Errorf("Close called with %v, want once with %v", closedWith, err)
			}
		})
	}
}

// TestAdmission: one limit across edges; Shutdown closes the attached
// sessions, refuses new ones and waits for the tickets.
func TestAdmission(t *testing.T) {
	a := NewAdmission(2)
	t1, err := a.Admit()
	if err != nil {
		t.Fatal(err)
	}
	t2, err := a.Admit()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Admit(); !errors.Is(err, ErrFull) {
		t.Fatalf("third Admit: %v, want ErrFull", err)
	}
	w := httptest.NewRecorder()
	Refuse(w, fmt.Errorf("%w (max_sessions 2)", ErrFull))
	if w.Code != 503 {
		t.Errorf("Refuse: HTTP %d", w.Code)
	}
	t2.Release()
	t2.Release() // idempotent
	if a.Sessions() != 1 {
		t.Fatalf("Sessions() = %d, want 1", a.Sessions())
	}
	t3, err := a.Admit()
	if err != nil {
		t.Fatalf("Admit after Release: %v", err)
	}
	closed := make(chan error, 2)
	t1.Attach(func(err error) { closed <- err })
	// t3 is admitted but not attached yet (its connection is still being
	// set up): Shutdown waits for it.
	done := make(chan error)
	go func() { done <- a.Shutdown(context.Background()) }()
	if err := <-closed; !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("attached session closed with %v", err)
	}
	t1.Release()
	t3.Attach(func(err error) { closed <- err }) // attached late: closed at once
	if err := <-closed; !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("late session closed with %v", err)
	}
	select {
	case <-done:
		t.Fatal("Shutdown returned before every ticket was released")
	case <-time.After(10 * time.Millisecond):
	}
	t3.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := a.Admit(); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("Admit after Shutdown: %v", err)
	}
}

func pipelineHop(f frame.Frame, first bool) pipeline.Hop { return pipeline.Hop{Frame: f, First: first} }
