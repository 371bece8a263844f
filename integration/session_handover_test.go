package integration

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A request waiting for its session's lock behind a request that writes is
// handed the lock, and the record that write makes, while the write is
// still on its way to Redis (the store overlaps the round trip with the
// next request). When that write fails (here Redis refuses writes: OOM),
// the writer gets 503 "could not be saved", and the data the waiter was
// given was never stored: the waiter must not answer 200 showing it.
// Before, it did, through PHP (read_and_close, and a page that keeps the
// session open to its end) and Django alike: the user saw a change the
// store never had, which the next page then lost (a cart item, a login,
// a counter that went back).
func TestSessionReadBehindAFailedWriteIsNot200(t *testing.T) {
	t.Parallel()
	s := startDjangoStack(t)
	gw := s.gws[0]
	for _, reader := range []string{"/get.php", "/show_held.php?ms=500", "/accounts/cart/"} {
		t.Run(strings.Trim(strings.Split(reader, "?")[0], "/"), func(t *testing.T) {
			ck := s.newSession(t)
			// held=1 stored.
			if res, body, _ := gw.get(t, "/hold.php?ms=0", ck); res.StatusCode != 200 || body != "held" {
				t.Fatalf("hold.php: %d %q", res.StatusCode, body)
			}
			started, q := markFile(t)
			writer := make(chan string, 1)
			go func() {
				res, body, _ := gw.get(t, fmt.Sprintf("/hold.php?ms=1500&started=%s", q), ck)
				writer <- fmt.Sprintf("%d %s", res.StatusCode, body)
			}()
			waitForFile(t, started, "hold.php")
			read := make(chan string, 1)
			go func() {
				res, body, _ := gw.get(t, reader, ck)
				read <- fmt.Sprintf("%d %s", res.StatusCode, body)
			}()
			// The reader queues for the lock behind hold.php, which then
			// writes held=2 into a Redis that refuses writes. Redis takes
			// writes again once the writer has its answer: the reader's
			// own release must not be what fails it. Django waits
			// (SIGSTOP) until then: its page has no pause of its own.
			time.Sleep(300 * time.Millisecond)
			django := strings.HasPrefix(reader, "/accounts/")
			workers := s.gunicorn.Workers()
			if django {
				for _, pid := range workers {
					syscall.Kill(pid, syscall.SIGSTOP)
				}
				defer func() {
					for _, pid := range workers {
						syscall.Kill(pid, syscall.SIGCONT)
					}
				}()
			}
			if _, err := s.red.Do("CONFIG", "SET", "maxmemory-policy", "noeviction"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.red.Do("CONFIG", "SET", "maxmemory", "1"); err != nil {
				t.Fatal(err)
			}
			w := <-writer
			if _, err := s.red.Do("CONFIG", "SET", "maxmemory", "0"); err != nil {
				t.Fatal(err)
			}
			if django {
				for _, pid := range workers {
					syscall.Kill(pid, syscall.SIGCONT)
				}
			}
			r := <-read
			t.Logf("writer %q, reader %q", w, r)
			if !strings.HasPrefix(w, "503 ") {
				t.Fatalf("the writer got %q, want a 503 (its write was refused)", w)
			}
			d := s.gws[1].dump(t, ck)
			if !strings.Contains(string(d.Data), `"held":1`) {
				t.Fatalf("stored after the refused write: %s", d.Data)
			}
			if strings.HasPrefix(r, "200 ") {
				if strings.Contains(r, `"held":2`) || strings.Contains(r, "held=2") {
					t.Errorf("the reader answered %q: a 200 showing the write the store refused (it holds %s)", r, d.Data)
				}
			} else if !strings.HasPrefix(r, "503 ") {
				t.Errorf("the reader answered %q, want 200 with what is stored or 503", r)
			}
		})
	}
}
