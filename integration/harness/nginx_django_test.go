package harness

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNginxDjango: the nginx StartNginxDjango runs sends what Django's
// deployment guides configure (Host as sent, X-Forwarded-For and -Proto,
// no Connection) over one kept-alive upstream connection, proxies only its
// location, and starts again on the same address after Stop.
func TestNginxDjango(t *testing.T) {
	var mu sync.Mutex
	var seen []*http.Request
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		io.WriteString(w, "up")
	}))
	defer up.Close()
	n := StartNginxDjango(t, NginxDjangoOptions{Upstream: strings.TrimPrefix(up.URL, "http://"), Location: "/dj/"})
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", n.URL+path, nil)
		req.Host = "Shop.Example:8080"
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for range 2 {
		if code, body := get("/dj/x"); code != 200 || body != "up" {
			t.Fatalf("/dj/x: %d %q", code, body)
		}
	}
	if code, _ := get("/other"); code != 404 {
		t.Errorf("/other: %d, want nginx's 404", code)
	}
	mu.Lock()
	got := seen[:len(seen):len(seen)]
	mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("upstream saw %d requests, want 2", len(got))
	}
	r := got[0]
	if r.Host != "Shop.Example:8080" || r.Header.Get("X-Forwarded-For") != "203.0.113.9, 127.0.0.1" ||
		r.Header.Get("X-Forwarded-Proto") != "http" || r.Header.Get("Connection") != "" || r.Proto != "HTTP/1.1" {
		t.Errorf("upstream got Host %q, %s, headers %v", r.Host, r.Proto, r.Header)
	}
	if got[0].RemoteAddr != got[1].RemoteAddr {
		t.Errorf("two upstream connections (%s, %s), want one kept alive", got[0].RemoteAddr, got[1].RemoteAddr)
	}
	// nginx writes the line after the response: it may come a moment
	// after the client has its answer.
	deadline := time.Now().Add(5 * time.Second)
	for lines := n.AccessLines(); len(lines) != 3 || lines[0] != "200 /dj/x" || lines[2] != "404 /other"; lines = n.AccessLines() {
		if time.Now().After(deadline) {
			t.Fatalf("access log %q", lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.Restart()
	if code, _ := get("/dj/x"); code != 200 {
		t.Errorf("after a restart: %d", code)
	}
}
