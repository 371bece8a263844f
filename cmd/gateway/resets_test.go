package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/testh2"
	"github.com/sessiongate/sessiongate/internal/testlog"
)

// TestLimitResets: a connection whose client resets more than
// rapidResetLimit streams, more than it let end, is closed and logged; one
// that lets more streams end than it resets stays open, as a browser's
// with its cancelled fetches.
func TestLimitResets(t *testing.T) {
	var log testlog.Buffer
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			select {
			case <-r.Context().Done():
				// As the PHP and Django proxies end a request whose
				// client left: no answer (they aborted after the
				// counting had moved past them, and nothing was closed).
				panic(http.ErrAbortHandler)
			case <-time.After(10 * time.Second):
			}
			return
		}
		io.WriteString(w, "ok")
	}))
	ts.EnableHTTP2 = true
	ts.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	limitResets(ts.Config, slog.New(slog.NewJSONHandler(&log, nil)))
	ts.StartTLS()
	defer ts.Close()
	addr := ts.Listener.Addr().String()

	resets := func(c *testh2.Conn, first uint32, n int) {
		t.Helper()
		var frames [][]byte
		for i := range n {
			id := first + uint32(2*i)
			frames = append(frames, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, id, testh2.Get("/wait")), testh2.RST(id))
		}
		c.Write(frames...)
	}

	c := testh2.Dial(t, addr)
	resets(c, 1, 3*rapidResetLimit)
	if !c.WaitClosed(5 * time.Second) {
		t.Errorf("a connection with %d streams reset and none ended is still open", 3*rapidResetLimit)
	}
	if !strings.Contains(log.String(), "rapid reset") {
		t.Errorf("not logged: %q", log.String())
	}

	c = testh2.Dial(t, addr)
	const ended = 3 * rapidResetLimit
	var frames [][]byte
	for i := range ended {
		frames = append(frames, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, uint32(2*i+1), testh2.Get("/fast")))
	}
	c.Write(frames...)
	deadline := time.Now().Add(10 * time.Second)
	for c.Seen().Ended < ended && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	resets(c, 2*ended+1, 2*rapidResetLimit)
	if c.WaitClosed(time.Second) {
		t.Errorf("a connection with %d streams ended and %d reset was closed", c.Seen().Ended, 2*rapidResetLimit)
	}
}

// TestLimitResetsCountsOnlyStreamsResetBeforeTheirAnswer: streams whose
// client reset them once their response had begun (downloads cancelled on
// navigation, a video player's range requests dropped as it seeks or has
// buffered enough) are not the rapid reset of CVE-2023-44487, which resets
// streams before the server answers them; the connection stays open. It
// was closed once more than 100 of them were reset, more than ended.
func TestLimitResetsCountsOnlyStreamsResetBeforeTheirAnswer(t *testing.T) {
	var log testlog.Buffer
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/download" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			w.Write(make([]byte, 1<<20)) // waits for a window the client never opens
			return
		}
		io.WriteString(w, "ok")
	}))
	ts.EnableHTTP2 = true
	limitResets(ts.Config, slog.New(slog.NewJSONHandler(&log, nil)))
	ts.StartTLS()
	defer ts.Close()

	c := testh2.Dial(t, ts.Listener.Addr().String())
	const n = 2 * rapidResetLimit
	var frames [][]byte
	for i := range n {
		frames = append(frames, testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, uint32(2*i+1), testh2.Get("/download")))
	}
	c.Write(frames...)
	deadline := time.Now().Add(10 * time.Second)
	for len(c.Seen().Statuses) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := len(c.Seen().Statuses); got < n {
		t.Fatalf("%d of %d downloads began", got, n)
	}
	frames = frames[:0]
	for i := range n {
		frames = append(frames, testh2.RST(uint32(2*i+1)))
	}
	c.Write(frames...)
	if c.WaitClosed(time.Second) {
		t.Errorf("a connection whose client cancelled %d downloads it had the answers of was closed: %s", n, log.String())
	}
}

// TestLimitResetsForgetsOldResets: a page open for long on one connection
// whose script aborts its fetches before they are answered, a few a second
// (a search box that cancels the previous query at each key, a poll
// restarted on each click), keeps its connection however many it aborts
// in all: only a rate no person reaches is rapid reset. It was closed at
// its 101st abort when it had let fewer fetches end.
func TestLimitResetsForgetsOldResets(t *testing.T) {
	// Each reset comes 125 ms after the one before (8 a second).
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	defer func(now func() time.Time) { resetClock = now }(resetClock)
	resetClock = func() time.Time { return time.Unix(0, clock.Add(int64(125*time.Millisecond))) }

	var log testlog.Buffer
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	ts.EnableHTTP2 = true
	limitResets(ts.Config, slog.New(slog.NewJSONHandler(&log, nil)))
	ts.StartTLS()
	defer ts.Close()

	c := testh2.Dial(t, ts.Listener.Addr().String())
	const n = 3 * rapidResetLimit
	for i := range n {
		id := uint32(2*i + 1)
		if err := c.Write(testh2.Frame(testh2.TypeHeaders, testh2.FlagEndHeaders|testh2.FlagEndStream, id, testh2.Get("/search")), testh2.RST(id)); err != nil {
			t.Fatalf("closed after %d aborted fetches: %s", i, log.String())
		}
	}
	if c.WaitClosed(time.Second) {
		t.Errorf("a connection whose client aborted %d fetches, 8 a second, was closed: %s", n, log.String())
	}
}
