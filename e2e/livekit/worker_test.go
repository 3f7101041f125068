package livekit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/server"
	lk "github.com/voiced-dev/voiced/transport/livekit"
)

const agentName = "voiced-test"

// TestMain runs a voiced worker instead of the tests when the test binary
// is re-executed as one by TestLiveKitWorkers.
func TestMain(m *testing.M) {
	if url := os.Getenv("VOICED_LK_WORKER_URL"); url != "" {
		os.Exit(workerChild(url, os.Getenv("VOICED_LK_WORKER_NAME")))
	}
	os.Exit(m.Run())
}

// workerChild is a voiced worker process: the real pipeline, SIGTERM
// drains.
func workerChild(url, name string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("worker", name)
	s := server.New(config.Default(), log)
	if err := s.Load(); err != nil {
		log.Error("load", "err", err)
		return 1
	}
	defer s.Close()
	w, err := lk.NewWorker(lk.WorkerConfig{
		URL: url, APIKey: apiKey, APISecret: apiSecret, AgentName: agentName, MaxJobs: 3,
		Attributes: map[string]string{"voiced.worker": name}, PingInterval: time.Second, Logger: log,
	}, s.Builder().Run)
	if err != nil {
		log.Error("worker", "err", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w.Drain(ctx)
	}()
	err = w.Run(context.Background())
	_, total := w.Jobs()
	log.Info("worker exited", "err", err, "jobs", total)
	if err != nil {
		return 1
	}
	return 0
}

type workerProc struct {
	name, log string
	cmd       *exec.Cmd
	done      chan error
}

func startWorker(t *testing.T, url, name string) *workerProc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VOICED_LK_WORKER_URL="+url, "VOICED_LK_WORKER_NAME="+name)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &workerProc{name: name, log: logPath, cmd: cmd, done: make(chan error, 1)}
	go func() { w.done <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-w.done
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log (tail):\n%s", name, tail(string(b), 3000))
		}
	})
	return w
}

// TestLiveKitWorkers runs two voiced worker processes against one LiveKit
// server: rooms dispatched to the agent spread across both; SIGTERM on one
// drains it (no new jobs) while its live conversation goes on to the end,
// and the other keeps serving.
func TestLiveKitWorkers(t *testing.T) {
	srv := startLiveKit(t)
	checkModels(t)
	workers := []*workerProc{startWorker(t, srv.URL, "w1"), startWorker(t, srv.URL, "w2")}
	for _, w := range workers {
		if !waitUntil(60*time.Second, func() bool { return hasLine(w.log, "worker registered") }) {
			t.Fatalf("%s did not register", w.name)
		}
	}

	// Four rooms, each dispatching the agent; MaxJobs 3 forces a spread.
	users := map[string]*user{}
	byWorker := map[string][]string{}
	for i := range 4 {
		room := fmt.Sprintf("room-%d", i)
		srv.createRoom(t, room, agentName)
		users[room] = joinUser(t, srv.URL, room, "user-"+room)
	}
	for room, u := range users {
		var who string
		if !waitUntil(20*time.Second, func() bool {
			for _, a := range u.agentAttrs() {
				who = a["voiced.worker"]
			}
			return who != ""
		}) {
			t.Fatalf("%s: no agent joined", room)
		}
		byWorker[who] = append(byWorker[who], room)
	}
	t.Logf("jobs per worker: %v", byWorker)
	if len(byWorker["w1"]) == 0 || len(byWorker["w2"]) == 0 {
		t.Fatalf("jobs not spread across both workers: %v", byWorker)
	}

	// A live conversation on the worker to drain: the one with more jobs,
	// so that the other has room (MaxJobs) for the room created during
	// the drain whatever the dispatcher's spread was.
	dn, on := "w1", "w2"
	drained, other := workers[0], workers[1]
	if len(byWorker[on]) > len(byWorker[dn]) {
		dn, on = on, dn
		drained, other = other, drained
	}
	live := users[byWorker[dn][0]]
	live.publish()
	if !live.silenceUntil(15*time.Second, func() bool { _, ok := live.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event in the live room")
	}
	turn := func(said string) {
		t.Helper()
		since := time.Now()
		live.stream(speech(t, said))
		if !live.silenceUntil(20*time.Second, func() bool { return live.count("bot_stopped_speaking", since) > 0 }) {
			evs, _ := live.snapshot()
			t.Fatalf("%q: no answer; events %v", said, types(evs))
		}
		if _, _, ok := live.firstAudible(since); !ok {
			t.Fatalf("%q: no audible answer", said)
		}
		fin, _ := live.finalTranscript(since)
		t.Logf("said %q, heard %q, answered out loud", said, fin.Text)
	}
	turn("hello there")

	// SIGTERM it: it drains.
	if err := drained.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(10*time.Second, func() bool { return hasLine(drained.log, "draining") }) {
		t.Fatalf("%s did not start draining", dn)
	}
	// New rooms go to the other only.
	srv.createRoom(t, "room-new", agentName)
	nu := joinUser(t, srv.URL, "room-new", "user-new")
	var who string
	if !waitUntil(20*time.Second, func() bool {
		for _, a := range nu.agentAttrs() {
			who = a["voiced.worker"]
		}
		return who != ""
	}) {
		t.Fatal("room-new: no agent joined")
	}
	if who != on {
		t.Errorf("room created during %s's drain went to %s", dn, who)
	}
	// The live conversation on the drained worker goes on.
	turn("what is your name")
	select {
	case err := <-drained.done:
		t.Fatalf("%s exited while its conversation was live: %v", dn, err)
	default:
	}

	// Its users leave or end: it finishes and exits cleanly.
	for _, room := range byWorker[dn][1:] {
		users[room].room.Disconnect()
	}
	live.sendJSON(map[string]string{"type": "end"})
	select {
	case err := <-drained.done:
		if err != nil {
			t.Errorf("%s exited with %v", dn, err)
		}
		drained.done <- err // for Cleanup
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit after its conversations ended", dn)
	}
	if !hasLine(drained.log, "worker exited") {
		t.Errorf("%s did not log its exit", dn)
	}

	// The other was not disturbed: its agents are still in their rooms.
	for _, room := range byWorker[on] {
		if len(users[room].agentAttrs()) == 0 {
			t.Errorf("%s lost its agent", room)
		}
	}
	select {
	case err := <-other.done:
		t.Fatalf("%s exited: %v", on, err)
	default:
	}
}
