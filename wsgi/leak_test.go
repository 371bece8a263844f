package wsgi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

// A 1xx informational response (103 Early Hints) from Django goes to the
// client as it comes: it must not carry X-Sessiongate-* headers or the
// gateway's session cookie either.
func TestInformationalResponseStripped(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.app.handle = func(w http.ResponseWriter, r *http.Request, s seen) (answer, bool) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.Header().Set(hdrOp, "delete")
		w.Header()["X_Sessiongate_Signature"] = []string{"x"}
		http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: "django-own"})
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del(hdrOp)
		w.Header().Del("X_Sessiongate_Signature")
		w.Header().Del("Set-Cookie")
		return answer{}, true
	}
	var mu sync.Mutex
	var hints []textproto.MIMEHeader
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		hints = append(hints, h)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", e.gw.URL+"/a/", nil)
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(hints) != 1 || hints[0].Get("Link") == "" {
		t.Fatalf("103 not forwarded: %v", hints)
	}
	noInternalHeaders(t, http.Header(hints[0]))
	for _, v := range hints[0]["Set-Cookie"] {
		if strings.HasPrefix(v, "sessionid=") {
			t.Errorf("Django's session cookie reached the client in a 103: %s", v)
		}
	}
}

// Trailers of a chunked Django response reach the client after the body:
// X-Sessiongate-* must not, announced or not.
func TestResponseTrailersStripped(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.app.handle = func(w http.ResponseWriter, r *http.Request, s seen) (answer, bool) {
		w.Header().Set("Trailer", "X-Sessiongate-Op, X-Check")
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Check", "yes")
		w.Header().Set(hdrOp, "delete")
		w.Header().Set(http.TrailerPrefix+"X_Sessiongate_Rotate", "1")
		w.Header().Set(http.TrailerPrefix+"x-sessiongate-signature", "x")
		return answer{}, false
	}
	res, body, _ := e.do("GET", "/a/", "", nil)
	if body != "body" {
		t.Fatalf("body %q", body)
	}
	if res.Trailer.Get("X-Check") != "yes" {
		t.Fatalf("trailers not forwarded: %v", res.Trailer)
	}
	noInternalHeaders(t, res.Header)
	noInternalHeaders(t, res.Trailer)
	for _, v := range res.Header.Values("Trailer") {
		if strings.Contains(strings.ToLower(v), "sessiongate") {
			t.Errorf("internal trailer announced to the client: %s", v)
		}
	}
}
