package fcgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// The pool's busy/idle/waiting counts (the metrics' gauges) come back to
// rest after every kind of failed request, run concurrently on a small
// pool: none is left busy, none waits, and nothing goes negative.
func TestPoolCountsReturnToRestAfterErrors(t *testing.T) {
	srv := newFakeServer(t, func(c *fakeConn, r *fakeRequest) bool {
		switch r.Params["QUERY_STRING"] {
		case "ok":
			respond(c, "Content-Type: text/plain\r\n", "hello")
			return true
		case "slow":
			time.Sleep(300 * time.Millisecond)
			respond(c, "", "late")
			return true
		case "hang":
			c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
			c.nc.Read(make([]byte, 1))
			return false
		case "garbage":
			c.Raw([]byte("this is not fastcgi at all"))
			c.Flush()
			return false
		case "cut":
			c.Stdout("Content-Type: text/plain\r\n\r\npart")
			c.Flush()
			return false
		case "big":
			c.Stdout("Content-Type: text/plain\r\n\r\n" + strings.Repeat("x", 200<<10))
			c.End()
			return true
		}
		respond(c, "", "?")
		return true
	})
	tr, _ := newTransport(t, Options{MaxConnsPerBackend: 3, ReadTimeout: 100 * time.Millisecond}, srv.Addr())

	kinds := []string{"ok", "slow", "hang", "garbage", "cut", "big", "cancel", "bodyerr", "unread"}
	var wg sync.WaitGroup
	for i := range 60 {
		kind := kinds[i%len(kinds)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			q := kind
			var body io.Reader
			switch kind {
			case "cancel":
				q = "hang"
				ctx, cancel = context.WithTimeout(ctx, 30*time.Millisecond)
				defer cancel()
			case "bodyerr":
				q = "ok"
				body = io.MultiReader(strings.NewReader("abc"), errReader{errors.New("client went away")})
			case "unread":
				q = "big"
			}
			req := newReq(ctx, "POST", "/?"+q, body, nil)
			if body != nil {
				req.ContentLength = -1
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				return
			}
			if kind != "unread" {
				io.Copy(io.Discard, resp.Body)
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	waitFor(t, "the pool at rest", func() bool {
		st := tr.Stats()[0]
		return st.Busy == 0 && st.Waiting == 0 && st.Open == st.Idle && st.Idle >= 0 && st.Open <= 3
	})
	// And it still serves.
	for range 5 {
		_, body, err := roundTrip(t, tr, newReq(nil, "GET", "/?ok", nil, nil))
		if err != nil || body != "hello" {
			t.Fatalf("after the errors: %q %v", body, err)
		}
	}
	st := tr.Stats()[0]
	if st.Busy != 0 || st.Waiting != 0 || st.Open != st.Idle {
		t.Fatalf("pool not at rest: %s", fmt.Sprintf("%+v", st))
	}
	// php-fpm restarts: every kept-alive connection dies.
	srv.conns.Range(func(k, _ any) bool { k.(interface{ Close() error }).Close(); return true })
	for range 5 {
		_, body, err := roundTrip(t, tr, newReq(nil, "GET", "/?ok", nil, nil))
		if err != nil || body != "hello" {
			t.Fatalf("after a php-fpm restart: %q %v", body, err)
		}
	}
	st = tr.Stats()[0]
	if st.Busy != 0 || st.Waiting != 0 || st.Open != st.Idle || st.Open > 3 {
		t.Fatalf("pool not at rest after a restart: %+v", st)
	}
}
