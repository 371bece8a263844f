package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/fcgi"
)

// TestStaticTruncatedWhileSentIsLogged: a static file that shrinks while
// it is being sent (a deploy rewriting it in place) reaches the client cut
// short; the access log must say why, not show a clean 200.
func TestStaticTruncatedWhileSentIsLogged(t *testing.T) {
	var o observations
	e := newEnv(t, nil, WithObserver(o.observe))
	p := filepath.Join(e.root, "big.bin")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 64<<20); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	c := rawGet(t, srv, "/big.bin")
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 1<<20); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, c) // the server closes the connection after the cut
	var got []observed
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = o.all(); len(got) > 0 {
			break
		}
	}
	if len(got) != 1 {
		t.Fatalf("observations %+v", got)
	}
	log := e.lastLog(t)
	if log["level"] != "WARN" || !strings.Contains(toString(log["error"]), "shrank") {
		t.Errorf("log of a download cut by a truncated file: %v", log)
	}
}

func toString(v any) string { s, _ := v.(string); return s }

// TestErrorPageGrowingWhileGzippedIsSentWhole: an error page that changes
// while the gzip cache compresses it is sent as it is; the cache has read
// the file by then, and the page must not go out empty.
func TestErrorPageGrowingWhileGzippedIsSentWhole(t *testing.T) {
	e, _ := errorPageEnv(t)
	p := filepath.Join(e.root, "404.html")
	page := "<!doctype html>" + strings.Repeat("<p>No such page here.</p>\n", 20000)
	if err := os.WriteFile(p, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return
		}
		defer f.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			f.Write([]byte("\n"))
		}
	}()
	defer func() { close(stop); <-done }()
	plain := 0
	for i := 0; i < 200 && plain < 5; i++ {
		r := httptest.NewRequest("GET", "/.env", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := e.do(r)
		if w.Header().Get("Content-Encoding") == "gzip" {
			continue
		}
		plain++
		if w.Code != 404 || !strings.HasPrefix(w.Body.String(), "<!doctype html>") {
			t.Fatalf("page sent uncompressed after a failed compression: %d, %d bytes (Content-Length %s)", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
		}
	}
	if plain == 0 {
		t.Skip("no compression failed")
	}
}

// TestPHPFailingAfterItsWholeContentLengthIsSentWhole: a script that sent
// its Content-Length and every byte of it, then failed (its worker killed
// in a shutdown function, a crash at the end of the request), gave the
// client an answer whose body was whole: it must get it whole, as from
// nginx. The gateway aborted the response instead, so the client got the
// download without its last buffered bytes, or, for a small one, no answer
// at all. The access log still gives the error.
func TestPHPFailingAfterItsWholeContentLengthIsSentWhole(t *testing.T) {
	for _, size := range []int{5, 300 << 10} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			e := newEnv(t, nil)
			want := strings.Repeat("x", size)
			e.php.respond = func(r *http.Request) (*http.Response, error) {
				body := io.MultiReader(strings.NewReader(want), errReader{&fcgi.Error{Status: 502, Op: "read response body", Err: io.ErrUnexpectedEOF}})
				return &http.Response{StatusCode: 200, Header: http.Header{"Content-Length": {strconv.Itoa(size)}},
					ContentLength: int64(size), Body: io.NopCloser(body), Request: r}, nil
			}
			srv := httptest.NewServer(e.srv.Handler())
			defer srv.Close()
			res, err := http.Get(srv.URL + "/hello.php")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || string(got) != want {
				t.Fatalf("got %d of %d bytes, %v", len(got), size, err)
			}
			var log map[string]any
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if e.logs.String() == "" {
					continue
				}
				if log = e.lastLog(t); log["msg"] == "request" {
					break
				}
			}
			if log["status"] != float64(200) || !strings.Contains(toString(log["error"]), "unexpected EOF") {
				t.Errorf("log: %v", log)
			}
		})
	}
}

// TestClientLeftAfterWholeContentLengthIsLoggedWithItsStatus: a body read
// that fails because the client went away once every Content-Length byte
// was written is the client's doing, not PHP's, and the client had its
// whole answer: the status it got (nginx logs the same), with an error
// saying that the client left before PHP ended, never "PHP failed", nor
// the 499 of a client that gave up on an answer it did not have.
func TestClientLeftAfterWholeContentLengthIsLoggedWithItsStatus(t *testing.T) {
	e := newEnv(t, nil)
	e.php.respond = func(r *http.Request) (*http.Response, error) {
		body := io.MultiReader(strings.NewReader("hello"), errReader{&fcgi.Error{Status: fcgi.StatusClientClosedRequest, Op: "read response body", Err: context.Canceled}})
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Length": {"5"}}, ContentLength: 5, Body: io.NopCloser(body), Request: r}, nil
	}
	srv := httptest.NewServer(e.srv.Handler())
	defer srv.Close()
	if res, err := http.Get(srv.URL + "/hello.php"); err == nil {
		io.ReadAll(res.Body)
		res.Body.Close()
	}
	var log map[string]any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if e.logs.String() == "" {
			continue
		}
		if log = e.lastLog(t); log["msg"] == "request" {
			break
		}
	}
	if log["status"] != float64(200) || strings.Contains(toString(log["error"]), "PHP failed") ||
		!strings.Contains(toString(log["error"]), "client left after its whole answer") {
		t.Errorf("log: %v", log)
	}
}
