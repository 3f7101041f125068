package transport

import (
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Defaults of a LoadConfig.
const (
	DefaultMaxCPU      = 0.9
	DefaultMaxLateness = 100 * time.Millisecond
	// DefaultLateFraction is the share of input frames over MaxLateness
	// that makes the process overloaded.
	DefaultLateFraction = 0.01
)

// LoadConfig configures a LoadMeter. The zero value works.
type LoadConfig struct {
	// MaxCPU is the process's CPU utilisation, as a fraction of the cores
	// it may use (GOMAXPROCS), above which new sessions are refused
	// (default DefaultMaxCPU; ≥ 1 or negative: not checked).
	MaxCPU float64
	// MaxLateness: new sessions are refused while more than LateFraction
	// of the input frames of the last Window were taken by the pipeline
	// more than MaxLateness after they arrived (default
	// DefaultMaxLateness; negative: not checked).
	MaxLateness  time.Duration
	LateFraction float64 // default DefaultLateFraction
	// Window is how far back both are measured (default 5 s). CPU is
	// sampled at most once a second, when a session asks to be admitted.
	Window time.Duration
	// MinFrames is how many frames the window needs before lateness
	// counts (default 100): one stall of a lone session decides nothing.
	MinFrames int

	// CPUTime, Now and Procs are the process's CPU time, the clock and
	// the cores (tests; defaults getrusage, time.Now, GOMAXPROCS).
	CPUTime func() time.Duration
	Now     func() time.Time
	Procs   int
}

// LoadMeter measures how loaded the process is, for Admission: its CPU
// utilisation and the pipelines' input lateness (how long input audio
// waits before the turn detector has taken it; the pipeline reports it
// with ObserveLateness). Safe for concurrent use.
type LoadMeter struct {
	cfg LoadConfig

	mu    sync.Mutex
	slots []lateSlot // one a second, a ring
	cpuAt time.Time  // the last CPU sample
	cpu   time.Duration
	util  float64 // utilisation between the last two samples
}

type lateSlot struct {
	sec         int64 // Unix second of the slot
	total, late int
}

// NewLoadMeter returns a meter configured by cfg.
func NewLoadMeter(cfg LoadConfig) *LoadMeter {
	if cfg.MaxCPU == 0 {
		cfg.MaxCPU = DefaultMaxCPU
	}
	if cfg.MaxLateness == 0 {
		cfg.MaxLateness = DefaultMaxLateness
	}
	if cfg.LateFraction <= 0 {
		cfg.LateFraction = DefaultLateFraction
	}
	if cfg.Window < time.Second {
		cfg.Window = 5 * time.Second
	}
	if cfg.MinFrames <= 0 {
		cfg.MinFrames = 100
	}
	if cfg.CPUTime == nil {
		cfg.CPUTime = processCPU
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Procs <= 0 {
		cfg.Procs = runtime.GOMAXPROCS(0)
	}
	m := &LoadMeter{cfg: cfg, slots: make([]lateSlot, int(cfg.Window/time.Second))}
	m.cpuAt, m.cpu = cfg.Now(), cfg.CPUTime()
	return m
}

// processCPU is the process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ObserveLateness records that an input frame was taken d after it
// arrived.
func (m *LoadMeter) ObserveLateness(d time.Duration) {
	sec := m.cfg.Now().Unix()
	m.mu.Lock()
	s := &m.slots[int(sec%int64(len(m.slots)))]
	if s.sec != sec {
		*s = lateSlot{sec: sec}
	}
	s.total++
	if d > m.cfg.MaxLateness {
		s.late++
	}
	m.mu.Unlock()
}

// Load is a measurement of a LoadMeter.
type Load struct {
	CPU float64 // utilisation, 1 = every core of GOMAXPROCS busy
	// Frames input frames were observed in the window, Late of them over
	// MaxLateness.
	Frames, Late int
}

// Load samples the CPU (at most once a second) and returns the load.
func (m *LoadMeter) Load() Load {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if wall := now.Sub(m.cpuAt); wall >= time.Second {
		cpu := m.cfg.CPUTime()
		m.util = float64(cpu-m.cpu) / float64(wall) / float64(m.cfg.Procs)
		m.cpuAt, m.cpu = now, cpu
	}
	l := Load{CPU: m.util}
	oldest := now.Unix() - int64(len(m.slots)) + 1
	for _, s := range m.slots {
		if s.sec >= oldest {
			l.Frames += s.total
			l.Late += s.late
		}
	}
	return l
}

// Overloaded returns nil, or an error wrapping ErrOverloaded that says
// which limit the load is over.
func (m *LoadMeter) Overloaded() error {
	l := m.Load()
	c := m.cfg
	if c.MaxCPU > 0 && c.MaxCPU < 1 && l.CPU > c.MaxCPU {
		return fmt.Errorf("%w: CPU at %.0f%% of %d cores (server.max_cpu_utilization %.0f%%)", ErrOverloaded, 100*l.CPU, c.Procs, 100*c.MaxCPU)
	}
	if c.MaxLateness > 0 && l.Frames >= c.MinFrames && float64(l.Late) > c.LateFraction*float64(l.Frames) {
		return fmt.Errorf("%w: %.1f%% of input audio waited over %v (server.max_input_lateness)", ErrOverloaded, 100*float64(l.Late)/float64(l.Frames), c.MaxLateness)
	}
	return nil
}
