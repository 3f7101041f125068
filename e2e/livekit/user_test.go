package livekit

import (
	"context"
	"encoding/json"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	protoLogger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"gopkg.in/hraban/opus.v2"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/tts/flite"
	lk "github.com/voiced-dev/voiced/transport/livekit"
)

// Event is an agent event as the participant received it.
type Event struct {
	Type         string  `json:"type"`
	Turn         uint32  `json:"turn"`
	Text         string  `json:"text"`
	Final        bool    `json:"final"`
	Code         string  `json:"code"`
	Message      string  `json:"message"`
	VoiceToVoice float64 `json:"voice_to_voice_ms"`
	STTFinal     float64 `json:"stt_final_ms"`
	At           time.Time
}

// AudioIn is one decoded packet of the agent's track.
type AudioIn struct {
	At      time.Time
	Samples int
	Peak    int
}

// boundTrack is an Opus sample track that says when it is bound: samples
// written before are dropped.
type boundTrack struct {
	*webrtc.TrackLocalStaticSample
	bound chan struct{}
	once  sync.Once
}

func (b *boundTrack) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	p, err := b.TrackLocalStaticSample.Bind(c)
	if err == nil {
		b.once.Do(func() { close(b.bound) })
	}
	return p, err
}

// user is a Go participant that speaks into a room like a microphone (in
// real time, 20 ms Opus frames at 48 kHz) and records the agent's events
// and audio.
type user struct {
	t     *testing.T
	room  *lksdk.Room
	track *boundTrack
	enc   *opus.Encoder

	mu     sync.Mutex
	events []Event
	audio  []AudioIn
	agents map[string]map[string]string // agent identity → attributes
}

const rate = 48000

func joinUser(t *testing.T, url, roomName, identity string) *user {
	t.Helper()
	tok, err := lk.NewToken(lk.TokenConfig{APIKey: apiKey, APISecret: apiSecret, Room: roomName, Identity: identity})
	if err != nil {
		t.Fatal(err)
	}
	u := &user{t: t, agents: map[string]map[string]string{}}
	cb := lksdk.NewRoomCallback()
	cb.OnDataPacket = func(d lksdk.DataPacket, _ lksdk.DataReceiveParams) {
		p, ok := d.(*lksdk.UserDataPacket)
		if !ok || p.Topic != lk.Topic {
			return
		}
		var ev Event
		if json.Unmarshal(p.Payload, &ev) == nil {
			ev.At = time.Now()
			u.mu.Lock()
			u.events = append(u.events, ev)
			u.mu.Unlock()
		}
	}
	cb.OnParticipantConnected = func(p *lksdk.RemoteParticipant) { u.noteAgent(p) }
	cb.OnTrackSubscribed = func(tr *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, p *lksdk.RemoteParticipant) {
		u.noteAgent(p)
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			go u.listen(tr)
		}
	}
	room := lksdk.NewRoom(cb)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := room.JoinWithContextAndToken(ctx, url, tok, lksdk.WithLogger(protoLogger.GetDiscardLogger())); err != nil {
		t.Fatalf("%s joins %s: %v", identity, roomName, err)
	}
	u.room = room
	t.Cleanup(room.Disconnect)
	for _, p := range room.GetRemoteParticipants() {
		u.noteAgent(p)
	}
	return u
}

func (u *user) noteAgent(p *lksdk.RemoteParticipant) {
	if p.Kind() != lksdk.ParticipantAgent {
		return
	}
	u.mu.Lock()
	u.agents[p.Identity()] = p.Attributes()
	u.mu.Unlock()
}

// agentAttrs returns the attributes of the room's agents.
func (u *user) agentAttrs() map[string]map[string]string {
	for _, p := range u.room.GetRemoteParticipants() {
		u.noteAgent(p)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]map[string]string{}
	for k, v := range u.agents {
		out[k] = v
	}
	return out
}

// publish publishes the microphone track and waits until it is bound.
func (u *user) publish() {
	u.t.Helper()
	tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: rate, Channels: 2}, "mic", "user")
	if err != nil {
		u.t.Fatal(err)
	}
	u.track = &boundTrack{TrackLocalStaticSample: tr, bound: make(chan struct{})}
	if u.enc, err = opus.NewEncoder(rate, 1, opus.AppVoIP); err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.room.LocalParticipant.PublishTrack(u.track, &lksdk.TrackPublicationOptions{Name: "mic", Source: livekit.TrackSource_MICROPHONE}); err != nil {
		u.t.Fatal(err)
	}
	select {
	case <-u.track.bound:
	case <-time.After(10 * time.Second):
		u.t.Fatal("microphone track not bound")
	}
}

// listen decodes the agent's track and records each packet's level.
func (u *user) listen(tr *webrtc.TrackRemote) {
	dec, err := opus.NewDecoder(rate, 1)
	if err != nil {
		return
	}
	pcm := make([]int16, 5760)
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		n, err := dec.Decode(p.Payload, pcm)
		if err != nil {
			continue
		}
		peak := 0
		for _, v := range pcm[:n] {
			peak = max(peak, abs(int(v)))
		}
		u.mu.Lock()
		u.audio = append(u.audio, AudioIn{At: now, Samples: n, Peak: peak})
		u.mu.Unlock()
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

var voiceThresh = int(32768 * math.Pow(10, -40.0/20)) // -40 dBFS

// stream sends pcm (48 kHz mono) in real time, 20 ms per frame, and
// returns when its first and last audible frames were sent.
func (u *user) stream(pcm []int16) (firstVoice, lastVoice time.Time) {
	const chunk = rate / 50
	frame := make([]int16, chunk)
	pkt := make([]byte, 4000)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(pcm); i += chunk {
		n := copy(frame, pcm[i:min(i+chunk, len(pcm))])
		clear(frame[n:])
		size, err := u.enc.Encode(frame, pkt)
		if err != nil {
			u.t.Errorf("encode: %v", err)
			return
		}
		if err := u.track.WriteSample(media.Sample{Data: pkt[:size], Duration: 20 * time.Millisecond}); err != nil {
			u.t.Errorf("send audio: %v", err)
			return
		}
		for _, v := range frame[:n] {
			if abs(int(v)) > voiceThresh {
				lastVoice = time.Now()
				if firstVoice.IsZero() {
					firstVoice = lastVoice
				}
				break
			}
		}
		<-tick.C
	}
	return firstVoice, lastVoice
}

func (u *user) silence(d time.Duration) { u.stream(make([]int16, int(d.Seconds()*rate))) }

// silenceUntil streams silence until cond holds or max elapses.
func (u *user) silenceUntil(max time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		u.silence(100 * time.Millisecond)
	}
	return cond()
}

// waitUntil polls cond without sending audio.
func waitUntil(max time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

func (u *user) sendJSON(v any) {
	b, _ := json.Marshal(v)
	err := u.room.LocalParticipant.PublishDataPacket(&lksdk.UserDataPacket{Payload: b, Topic: lk.Topic}, lksdk.WithDataPublishReliable(true))
	if err != nil {
		u.t.Errorf("send: %v", err)
	}
}

func (u *user) snapshot() ([]Event, []AudioIn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Event(nil), u.events...), append([]AudioIn(nil), u.audio...)
}

func (u *user) count(typ string, since time.Time) int {
	evs, _ := u.snapshot()
	n := 0
	for _, e := range evs {
		if e.Type == typ && !e.At.Before(since) {
			n++
		}
	}
	return n
}

func (u *user) first(typ string, since time.Time) (Event, bool) {
	evs, _ := u.snapshot()
	for _, e := range evs {
		if e.Type == typ && !e.At.Before(since) {
			return e, true
		}
	}
	return Event{}, false
}

// finalTranscript returns the first final transcript after since.
func (u *user) finalTranscript(since time.Time) (Event, bool) {
	evs, _ := u.snapshot()
	for _, e := range evs {
		if e.Type == "transcript" && e.Final && !e.At.Before(since) {
			return e, true
		}
	}
	return Event{}, false
}

// firstAudible returns the arrival of the first agent audio packet after
// since whose peak is above -40 dBFS, and the loudest peak after since.
func (u *user) firstAudible(since time.Time) (time.Time, int, bool) {
	_, au := u.snapshot()
	var at time.Time
	peak := 0
	for _, a := range au {
		if a.At.Before(since) {
			continue
		}
		peak = max(peak, a.Peak)
		if at.IsZero() && a.Peak > voiceThresh {
			at = a.At
		}
	}
	return at, peak, !at.IsZero()
}

// speech synthesizes text with flite and resamples it to 48 kHz.
func speech(t *testing.T, text string) []int16 {
	t.Helper()
	syn, err := flite.New(flite.Config{Voice: "slt"})
	if err != nil {
		t.Fatal(err)
	}
	if syn.Format() != frame.Mono16k {
		t.Fatalf("flite format %+v", syn.Format())
	}
	var pcm []int16
	err = syn.Synthesize(context.Background(), text, "", func(c []int16) error {
		pcm = append(pcm, c...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := audio.NewResampler(16000, rate)
	if err != nil {
		t.Fatal(err)
	}
	out := rs.Process(make([]int16, 0, rs.MaxOutput(len(pcm))), pcm)
	return out
}
