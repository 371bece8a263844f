package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"sync"

	"github.com/sessiongate/sessiongate/fcgi"
)

// newPHPProxy builds the handler that sends a routed request to php-fpm.
func (s *Server) newPHPProxy() http.Handler {
	return &httputil.ReverseProxy{
		Rewrite:   s.rewritePHP,
		Transport: uaFix{s.php},
		// 0, not -1: ReverseProxy already flushes every write of a response
		// without Content-Length (PHP's flush(), long polling, server-sent
		// events), which is how every streamed PHP response arrives. A
		// response the transport received whole comes with its length and
		// goes out in one write instead of header, chunk and trailer writes:
		// that halves the syscalls of a typical page.
		FlushInterval: 0,
		BufferPool:    copyBuffers,
		ModifyResponse: func(res *http.Response) error {
			// Record why a streamed body stopped early; ReverseProxy itself
			// only aborts the connection.
			res.Body = &bodyErr{ReadCloser: res.Body, ri: Info(res.Request.Context())}
			return nil
		},
		ErrorHandler: s.phpError,
		// Whatever ReverseProxy still wants to say (body copy errors are
		// already in the access log via bodyErr) is debug material.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// rewritePHP prepares the outbound request. The transport derives every CGI
// param from it plus the fcgi.Script in its context.
func (s *Server) rewritePHP(pr *httputil.ProxyRequest) {
	// ReverseProxy drops query parameters it cannot parse (e.g. "a=1;b=2");
	// PHP must see QUERY_STRING exactly as sent, like with nginx.
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "php-fpm"
	// ReverseProxy removed the client's Forwarded and X-Forwarded-* headers
	// (Rewrite mode). They reach PHP (as HTTP_X_FORWARDED_FOR ...) only when
	// a trusted proxy sent them: a PHP app that naively believes them cannot
	// be fooled by a direct client. We add none of our own, like nginx:
	// REMOTE_ADDR and HTTPS already carry the facts.
	if _, _, viaProxy := clientOf(pr.In, s.cfg.TrustedProxies); viaProxy {
		for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v, ok := pr.In.Header[h]; ok {
				pr.Out.Header[h] = v
			}
		}
	}
}

// phpError answers for a failed upstream request with the status the fcgi
// error carries (502, 504, 413, ...). The error is logged once, in the
// access log line. For a client that left (499) nothing is written.
func (s *Server) phpError(w http.ResponseWriter, r *http.Request, err error) {
	status := fcgi.StatusOf(err)
	if status == 0 {
		status = http.StatusBadGateway
	}
	if ri := Info(r.Context()); ri != nil {
		ri.Err = err
		if status == StatusClientClosedRequest {
			ri.Status = status
		}
	}
	if status == StatusClientClosedRequest {
		return
	}
	if status == http.StatusRequestEntityTooLarge {
		w.Header().Set("Connection", "close")
	}
	s.fail(w, r, status)
}

// uaFix undoes one ReverseProxy habit: it adds an empty User-Agent to
// requests that had none, which would reach PHP as an empty
// HTTP_USER_AGENT instead of an absent one (nginx sends none).
type uaFix struct{ http.RoundTripper }

func (t uaFix) RoundTrip(req *http.Request) (*http.Response, error) {
	if v, ok := req.Header["User-Agent"]; ok && len(v) == 1 && v[0] == "" {
		// req is ReverseProxy's own clone: editing its header is safe.
		delete(req.Header, "User-Agent")
	}
	return t.RoundTripper.RoundTrip(req)
}

// bodyErr records the first read error of a PHP response body (a worker
// killed mid-response, a timeout) into the request's RequestInfo.
type bodyErr struct {
	io.ReadCloser
	ri *RequestInfo
}

func (b *bodyErr) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.ri != nil && b.ri.Err == nil {
		b.ri.Err = err
		if st := fcgi.StatusOf(err); st != 0 {
			b.ri.Status = st
		}
	}
	return n, err
}

// copyBuffers recycles ReverseProxy's 32 KiB copy buffers.
var copyBuffers = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
