package integration

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestExamplePHPSite: the demo site's pages (examples/php, behind the
// gateway with examples/django as `make demo` runs them) do what their
// links and comments promise: the front controller's routes and its 404,
// PATH_INFO, a static file with ETag, Range and 304, a dotfile refused,
// the helper file never a page, who.php giving an anonymous visitor no
// session, and one counter PHP and Django both count in.
func TestExamplePHPSite(t *testing.T) {
	t.Parallel()
	base, _, site := startExampleStack(t, debianDjango)
	if err := os.WriteFile(site+"/.env", []byte("SECRET=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	get := func(path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, c := range []struct {
		path   string
		status int
		has    []string
	}{
		{"/", 200, []string{"<h1>Home</h1>"}},
		{"/about?from=home", 200, []string{"<h1>About", "<code>/about?from=home</code>", "<code>/index.php</code>"}},
		{"/no/such/page", 404, []string{"Not found (answered by index.php"}},
		{"/pathinfo.php/articles/42?x=1", 200, []string{"SCRIPT_NAME     = /pathinfo.php\n", "PATH_INFO       = /articles/42\n", `segments        = ["articles","42"]`}},
		{"/.env", 404, nil},
		{"/lib/page.php", 404, nil},
	} {
		res, body := get(c.path)
		if res.StatusCode != c.status {
			t.Errorf("%s: %d, want %d: %.300s", c.path, res.StatusCode, c.status, body)
		}
		for _, s := range c.has {
			if !strings.Contains(body, s) {
				t.Errorf("%s: no %q in %.600s", c.path, s, body)
			}
		}
		if strings.Contains(body, "SECRET") {
			t.Errorf("%s: the dotfile's content reached the client", c.path)
		}
	}

	res, css := get("/assets/style.css")
	etag := res.Header.Get("ETag")
	if res.StatusCode != 200 || etag == "" || len(css) < 10 {
		t.Fatalf("style.css: %d, ETag %q, %d bytes", res.StatusCode, etag, len(css))
	}
	if res, body := get("/assets/style.css", "Range", "bytes=0-4"); res.StatusCode != 206 || body != css[:5] {
		t.Errorf("style.css with Range: %d %q", res.StatusCode, body)
	}
	if res, body := get("/assets/style.css", "If-None-Match", etag); res.StatusCode != 304 || body != "" {
		t.Errorf("style.css with If-None-Match: %d %q", res.StatusCode, body)
	}

	if res, _ := get("/who.php"); res.StatusCode != 200 || len(res.Cookies()) != 0 {
		t.Errorf("who.php for an anonymous visitor: %d, cookies %v, want none", res.StatusCode, res.Cookies())
	}

	j := jar{}
	counts := []string{}
	for i, path := range []string{"/counter.php", "/accounts/counter/", "/counter.php", "/accounts/counter/"} {
		req, _ := http.NewRequest("GET", base+path, nil)
		for k, v := range j {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, c := range res.Cookies() {
			j[c.Name] = c.Value
		}
		body := string(b)
		if i%2 == 0 {
			if k := strings.Index(body, `<strong id="counter">`); k >= 0 {
				body = body[k+len(`<strong id="counter">`):]
				body = body[:strings.IndexByte(body, '<')]
			}
		}
		counts = append(counts, body)
	}
	if got := strings.Join(counts, ","); got != "1,2,3,4" {
		t.Errorf("counter.php and /accounts/counter/ in turn counted %q, want 1,2,3,4", got)
	}
}
