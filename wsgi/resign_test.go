package wsgi

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A GET that a backend held past the middleware's 60 s clock window and
// then dropped was sent on with the headers signed for the first attempt:
// the middleware refused them as refused-clock, the page ran anonymous and
// the gateway's warning blamed NTP. Each attempt is signed afresh, with
// its own nonce, and the change the answering attempt sends back (signed
// with that nonce) is applied. Both retries are covered: the next backend
// after a dropped request, and a new connection to the same backend after
// a kept-alive one was closed.
func TestRetriedRequestIsSignedAfresh(t *testing.T) {
	for _, tc := range []struct {
		name     string
		backends int
	}{{"next backend", 2}, {"kept-alive connection closed", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var now atomic.Int64
			now.Store(time.Unix(200000, 0).UnixNano())
			clock := func() time.Time { return time.Unix(0, now.Load()) }
			var mu sync.Mutex
			var nonces []string
			var dropped, stale atomic.Int64
			var dropNext atomic.Bool
			e := newEnv(t, envOpts{backends: func(app http.Handler) []string {
				// Holds the request 90 s by the gateway's clock, then closes
				// the connection without a byte of answer.
				drop := func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					nonces = append(nonces, r.Header.Get(hdrNonce))
					mu.Unlock()
					dropped.Add(1)
					now.Add(int64(90 * time.Second))
					if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
						c.Close()
					}
				}
				// The middleware's clock check.
				answer := func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					nonces = append(nonces, r.Header.Get(hdrNonce))
					mu.Unlock()
					ts, _ := strconv.ParseInt(r.Header.Get(hdrTimestamp), 10, 64)
					if d := clock().Unix() - ts; d > 60 || d < -60 {
						stale.Add(1)
						w.Header().Set("X-Sessiongate-Django", "refused-clock")
						w.Write([]byte("anonymous"))
						return
					}
					app.ServeHTTP(w, r)
				}
				var hs []string
				if tc.backends == 2 {
					a, b := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
					unixServer(t, a, http.HandlerFunc(drop))
					unixServer(t, b, http.HandlerFunc(answer))
					hs = []string{"unix:" + a, "unix:" + b}
				} else {
					s := filepath.Join(dir, "only.sock")
					unixServer(t, s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if strings.HasPrefix(r.URL.Path, "/drop/") && dropNext.CompareAndSwap(true, false) {
							drop(w, r)
							return
						}
						answer(w, r)
					}))
					hs = []string{"unix:" + s}
				}
				return hs
			}})
			e.proxy.now = clock
			e.respond(answer{op: "write", data: `{"n":1}`})
			// A session to carry, and (one backend) a kept-alive connection.
			_, _, ck := e.do("GET", "/start/", "", nil)
			if ck == "" {
				t.Fatal("no session cookie")
			}
			for i := 0; i < 4; i++ {
				dropNext.Store(true)
				e.respond(answer{op: "write", data: `{"n":` + strconv.Itoa(i+2) + `}`})
				res, body, _ := e.do("GET", "/drop/x", ck, nil)
				if res.StatusCode != 200 || body != "ok" {
					t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
				}
				if _, data := e.open(ck); data != `{"n":`+strconv.Itoa(i+2)+`}` {
					t.Fatalf("request %d: the answering attempt's change was not applied: %s", i, data)
				}
			}
			if dropped.Load() == 0 {
				t.Fatal("no request was dropped and retried")
			}
			if stale.Load() != 0 {
				t.Fatalf("%d retries carried the first attempt's timestamp (refused-clock)", stale.Load())
			}
			mu.Lock()
			defer mu.Unlock()
			seen := map[string]bool{}
			for _, n := range nonces {
				if seen[n] {
					t.Fatalf("nonce %s sent twice: %v", n, nonces)
				}
				seen[n] = true
			}
		})
	}
}
