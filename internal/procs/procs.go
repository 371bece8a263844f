// Package procs runs the gateway on one processor (GOMAXPROCS=1) while one
// is enough and on Go's default when it is not.
//
// Why: a proxy spends most of a request waiting for php-fpm, Redis or
// gunicorn. With a second processor idle, Go wakes a thread for nearly
// every network event that readies a goroutine, and the woken thread
// usually finds nothing to do and sleeps again. On a small host shared with
// the backends those wake-ups are CPU the backends needed. Measured on 2
// CPUs with bench/run.sh, one processor cut the gateway's CPU per request
// by 35-45% on session and Django pages and raised their throughput by
// 20-50%; hello-world was as fast either way. A gateway that needs more
// than one CPU, though, must not be capped at one.
//
// So the controller starts on one processor and measures the CPU the
// process uses (getrusage). A process held to one processor that keeps it
// busy uses close to a whole CPU; when a second-long window reaches
// Saturated, it goes back to Go's default (runtime.SetDefaultGOMAXPROCS,
// which also keeps Go's container-aware updates). From there it tries one
// processor again now and then, unless the load plainly needs more, and
// tries less often each time that saturates at once.
package procs

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
	"time"
)

// Settings tune the controller; the zero value takes the defaults.
type Settings struct {
	// Window is how long one CPU measurement lasts (default 1 s).
	Window time.Duration
	// Saturated is the CPU use, in CPUs, at which one processor counts as
	// too few (default 0.9).
	Saturated float64
	// NoRetryAbove is the CPU use on Go's default above which one processor
	// is not tried again: a load that large would saturate it even at one
	// processor's lower cost per request (default 1.5).
	NoRetryAbove float64
	// RetryAfter is the first wait on the default before one processor is
	// tried again (default 10 s); it doubles after each try that saturated
	// at once, up to MaxRetryAfter (default 5 min).
	RetryAfter, MaxRetryAfter time.Duration
}

func (s *Settings) fill() {
	if s.Window <= 0 {
		s.Window = time.Second
	}
	if s.Saturated <= 0 {
		s.Saturated = 0.9
	}
	if s.NoRetryAbove <= 0 {
		s.NoRetryAbove = 1.5
	}
	if s.RetryAfter <= 0 {
		s.RetryAfter = 10 * time.Second
	}
	if s.MaxRetryAfter < s.RetryAfter {
		s.MaxRetryAfter = max(5*time.Minute, s.RetryAfter)
	}
}

// runtimeHooks is what the controller changes; tests replace it.
type runtimeHooks struct {
	single  func() // GOMAXPROCS=1
	restore func() // Go's default GOMAXPROCS
}

// decider holds the controller's state and makes its decisions from one
// CPU measurement per window; it does no I/O and owns no goroutine, so it
// can be tested window by window.
type decider struct {
	s      Settings
	h      runtimeHooks
	single bool
	// onDefault is how long the current stay on the default has lasted;
	// retryAfter is how long it lasts before one processor is tried.
	onDefault  time.Duration
	retryAfter time.Duration
	// trying: one processor was just tried; saturating in its first
	// window means the load still needs more.
	trying bool
	log    *slog.Logger
}

func newDecider(s Settings, h runtimeHooks, log *slog.Logger) *decider {
	s.fill()
	d := &decider{s: s, h: h, retryAfter: s.RetryAfter, log: log}
	d.h.single()
	d.single = true
	d.log.Debug("GOMAXPROCS=1 while one processor is enough")
	return d
}

// window takes the CPU use (in CPUs) of the window that just ended.
func (d *decider) window(cpus float64) {
	if !d.single {
		d.onDefault += d.s.Window
		if d.onDefault < d.retryAfter {
			return
		}
		if cpus >= d.s.NoRetryAbove {
			// Plainly more than one processor's worth: look again later.
			d.onDefault = 0
			return
		}
		d.trying = true
		d.h.single()
		d.single = true
		d.log.Debug("GOMAXPROCS=1: trying one processor again", "cpus", round2(cpus))
		return
	}
	switch {
	case cpus >= d.s.Saturated:
		if d.trying {
			// Still too much for one processor: try less often.
			d.retryAfter = min(2*d.retryAfter, d.s.MaxRetryAfter)
		}
		d.trying = false
		d.h.restore()
		d.single = false
		d.onDefault = 0
		d.log.Debug("GOMAXPROCS back to Go's default: one processor is saturated",
			"cpus", round2(cpus), "next_try", d.retryAfter.String())
	case d.trying:
		d.trying = false
		d.retryAfter = d.s.RetryAfter
	}
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

// Enabled reports whether the controller should run: GOMAXPROCS is not set
// by the operator and Go's default gives more than one processor.
func Enabled(getenv func(string) string) (bool, string) {
	if v := getenv("GOMAXPROCS"); v != "" {
		return false, "GOMAXPROCS is set"
	}
	if runtime.GOMAXPROCS(0) < 2 {
		return false, "one CPU available"
	}
	return true, ""
}

// processCPU is the CPU time (user + system) all threads of the process
// have used.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// Run adapts GOMAXPROCS until ctx ends, then restores Go's default. Call it
// only when Enabled says so.
func Run(ctx context.Context, s Settings, log *slog.Logger) {
	lastCPU, err := processCPU()
	if err != nil {
		log.Warn("GOMAXPROCS left to Go: cannot measure CPU use", "error", err.Error())
		return
	}
	d := newDecider(s, runtimeHooks{
		single:  func() { runtime.GOMAXPROCS(1) },
		restore: runtime.SetDefaultGOMAXPROCS,
	}, log)
	defer runtime.SetDefaultGOMAXPROCS()
	t := time.NewTicker(d.s.Window)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cpu, err := processCPU()
			if err != nil {
				log.Warn("GOMAXPROCS back to Go's default: cannot measure CPU use", "error", err.Error())
				return
			}
			if wall := now.Sub(last); wall > 0 {
				d.window(float64(cpu-lastCPU) / float64(wall))
			}
			last, lastCPU = now, cpu
		}
	}
}
