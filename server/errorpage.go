package server

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"sync/atomic"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/compress"
)

// Error pages: a shop's maintenance page when php-fpm is down, nginx's
// error_page 502 503 504 /50x.html. SESSIONGATE_ERROR_PAGES gives the
// errors the gateway answers itself (upstream down or slow, a busy session,
// Redis away, 404s of its own, limits) a page of the site instead of one
// line of text. Only those: the 404 page or 500 PHP or Django renders is
// the app's answer and passes unchanged, as with nginx's
// fastcgi_intercept_errors off.
//
// The page is read from disk for each error, as nginx does, so a deploy
// that changes it needs no restart. A page that cannot be sent (missing,
// unreadable) leaves the text answer in place and a warning, once until
// it can be sent again.

// errorPage is one SESSIONGATE_ERROR_PAGES URL.
type errorPage struct {
	url string
	// broken is set while the page cannot be sent, so that an outage
	// answered with errors warns once, not once per request.
	broken atomic.Bool
}

// newErrorPages maps each configured status to its page, checking every
// page once at start.
func (s *Server) newErrorPages(cfg *config.Config) map[int]*errorPage {
	byStatus := cfg.ErrorPages()
	if len(byStatus) == 0 {
		return nil
	}
	codesOf := map[string][]int{}
	for _, status := range config.GatewayErrorCodes {
		if url, ok := byStatus[status]; ok {
			codesOf[url] = append(codesOf[url], status)
		}
	}
	out := make(map[int]*errorPage, len(byStatus))
	for url, codes := range codesOf {
		p := &errorPage{url: url}
		for _, status := range codes {
			out[status] = p
		}
		if ctype := contentType(path.Ext(url), mime.TypeByExtension); ctype == "application/octet-stream" {
			s.log.Warn("SESSIONGATE_ERROR_PAGES: the page's extension gives it no type, so browsers may offer it as a download; name it .html",
				"page", url, "statuses", codes)
		}
		if f, _, err := s.openErrorPage(url); err != nil {
			s.warnErrorPage(p, codes, err)
		} else {
			f.file.Close()
		}
	}
	return out
}

// openErrorPage opens the file a page URL names, as an X-Accel-Redirect
// to it would: a public static file, or one in an internal location. rel
// is its path in the root it was found in.
func (s *Server) openErrorPage(url string) (f fileToSend, rel string, err error) {
	files, route, err := s.resolveAccel(url)
	if ae := (*errAccel)(nil); errors.As(err, &ae) {
		return fileToSend{}, "", errors.New(ae.why)
	}
	if err != nil {
		return fileToSend{}, "", err
	}
	f.file, f.info, err = files.Open(route)
	if err != nil {
		return fileToSend{}, "", err
	}
	return f, route.File, nil
}

func (s *Server) warnErrorPage(p *errorPage, statuses []int, err error) {
	if !p.broken.Swap(true) {
		s.log.Warn("SESSIONGATE_ERROR_PAGES: page cannot be sent; errors get a line of text until it can",
			"page", p.url, "statuses", statuses, "error", err.Error())
	}
}

// WriteError answers a request the gateway itself could not serve: with
// the site's page for status when SESSIONGATE_ERROR_PAGES has one, else
// with text, one line. Headers already set (Retry-After, Set-Cookie,
// Connection: close) stay. The Django proxy and the session bridge answer
// their errors through it, and the server through fail, so every error of
// one status looks the same; the server is found through the request's
// RequestInfo.
func WriteError(w http.ResponseWriter, r *http.Request, status int, text string) {
	var s *Server
	if ri := Info(r.Context()); ri != nil {
		s = ri.srv
	}
	s.writeError(w, r, status, text)
}

// writeError is WriteError for a known server (nil: text only).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, text string) {
	if s != nil && s.writeErrorPage(w, r, status) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	// Set here, not left to net/http, which counts a GET's body but
	// gives a HEAD, with none written, no length at all.
	h.Set("Content-Length", strconv.Itoa(len(text)+1))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, text+"\n")
	}
}

// writeErrorPage sends the page for status, if there is one and it can be
// opened, and reports whether it did. The page goes out whole, whatever
// Range or validators the request has, and gzipped only from the static
// gzip cache: scanners and guessers cause errors by the thousand, and a
// page compressed anew for each would be CPU they could multiply.
func (s *Server) writeErrorPage(w http.ResponseWriter, r *http.Request, status int) bool {
	p := s.errorPages[status]
	if p == nil {
		return false
	}
	f, rel, err := s.openErrorPage(p.url)
	if err != nil {
		s.warnErrorPage(p, []int{status}, err)
		return false
	}
	defer f.file.Close()
	if p.broken.Swap(false) {
		s.log.Info("SESSIONGATE_ERROR_PAGES: page sent again", "page", p.url, "status", status)
	}
	h := w.Header()
	// What an app said about a download it answered with is not about
	// this page (an X-Accel-Redirect that failed).
	for _, k := range bodyHeaders {
		h.Del(k)
	}
	h.Del("Content-Disposition")
	ext := path.Ext(p.url)
	ctype := contentType(ext, mime.TypeByExtension)
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	body := io.Reader(f.file)
	size := f.info.Size()
	if s.compressibleFile(w, ext, ctype) {
		compress.AddVary(h, "Accept-Encoding")
		var gz []byte
		gzippable := s.gzCache != nil && size >= compress.MinSize && compress.Accepted(r.Header)&compress.Gzip != 0
		if gzippable {
			// A HEAD too: its headers are those of the GET's copy.
			gz = s.cachedGzip(r, rel, f.file, f.info)
		}
		if gz != nil {
			h.Set("Content-Encoding", "gzip")
			body, size = bytes.NewReader(gz), int64(len(gz))
		} else {
			compress.SkipCompression(w)
			if gzippable {
				// A compression for the cache that failed (the page
				// changed while it was read) has moved the file's
				// position: the page is sent from its start.
				if _, err := f.file.Seek(0, io.SeekStart); err != nil {
					s.warnErrorPage(p, []int{status}, err)
					return false
				}
			}
		}
	}
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		if _, err := io.CopyN(w, body, size); err != nil {
			s.log.Debug("error page not sent whole", "page", p.url, "error", err.Error())
		}
	}
	return true
}
