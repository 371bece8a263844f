package wsgi

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
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

// CVE-2005-2088 family (request smuggling): the gateway answers a request
// with a chunked body (or HTTP/1.0) with Connection: close and reads no
// further request from that connection. ReverseProxy clears the response
// header after passing on a 1xx, the gateway's Connection field with it:
// after Django's 103 Early Hints the connection stayed open and the
// request after the chunked body was read and served. Both ways out are
// covered: Django's final answer, and a 502 when Django hangs up after
// its 103.
func TestEarlyHintsKeepTheGatewaysConnectionClose(t *testing.T) {
	for _, tc := range []struct {
		name       string
		hints, die bool
		status     int
	}{
		{"no 1xx", false, false, 200},
		{"103, then an answer", true, false, 200},
		{"103, then Django hangs up", true, true, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawBackend(t, func(n int, c net.Conn, br *bufio.Reader) {
				for readRequest(t, br) != nil {
					if tc.hints {
						io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n")
					}
					if tc.die {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			e := newEnv(t, envOpts{backends: func(http.Handler) []string { return []string{"http://" + addr} }})
			front := behindServer(t, e, io.Discard)
			c, err := net.Dial("tcp", front.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			// What a proxy in front that framed the first request by a
			// Content-Length would let through after it.
			io.WriteString(c, "POST /admin/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
				"GET /admin/smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			for err == nil && res.StatusCode < 200 {
				res, err = http.ReadResponse(br, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || !res.Close {
				t.Errorf("answer to the chunked request: %d, Connection %q; want %d and close", res.StatusCode, res.Header["Connection"], tc.status)
			}
			if next, err := http.ReadResponse(br, nil); err == nil {
				t.Errorf("the request after the chunked body was served: %d", next.StatusCode)
			}
		})
	}
}
