package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"sync/atomic"

	"github.com/sessiongate/sessiongate/config"
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
	byURL := map[string]*errorPage{}
	out := make(map[int]*errorPage, len(byStatus))
	for status, url := range byStatus {
		p := byURL[url]
		if p == nil {
			p = &errorPage{url: url}
			byURL[url] = p
			if f, err := s.openErrorPage(url); err != nil {
				s.warnErrorPage(p, status, err)
			} else {
				f.file.Close()
			}
		}
		out[status] = p
	}
	return out
}

// openErrorPage opens the file a page URL names, as an X-Accel-Redirect
// to it would: a public static file, or one in an internal location.
func (s *Server) openErrorPage(url string) (fileToSend, error) {
	files, route, err := s.resolveAccel(url)
	if ae := (*errAccel)(nil); errors.As(err, &ae) {
		return fileToSend{}, errors.New(ae.why)
	}
	if err != nil {
		return fileToSend{}, err
	}
	var f fileToSend
	f.file, f.info, err = files.Open(route.File)
	if err != nil {
		return fileToSend{}, err
	}
	return f, nil
}

func (s *Server) warnErrorPage(p *errorPage, status int, err error) {
	if !p.broken.Swap(true) {
		s.log.Warn("SESSIONGATE_ERROR_PAGES: page cannot be sent; errors get a line of text until it can",
			"page", p.url, "status", status, "error", err.Error())
	}
}

// WriteError answers a request the gateway itself could not serve: with
// the site's page for status when SESSIONGATE_ERROR_PAGES has one, else
// with text, one line. Headers already set (Retry-After, Set-Cookie) stay.
// The PHP and Django paths and the session bridge answer their errors
// through it, so every error of one status looks the same.
func WriteError(w http.ResponseWriter, r *http.Request, status int, text string) {
	if ri := Info(r.Context()); ri != nil && ri.srv != nil && ri.srv.writeErrorPage(w, r, status) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, text+"\n")
	}
}

// writeErrorPage sends the page for status, if there is one and it can be
// opened, and reports whether it did.
func (s *Server) writeErrorPage(w http.ResponseWriter, r *http.Request, status int) bool {
	p := s.errorPages[status]
	if p == nil {
		return false
	}
	f, err := s.openErrorPage(p.url)
	if err != nil {
		s.warnErrorPage(p, status, err)
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
	h.Set("Content-Type", contentType(path.Ext(p.url), mime.TypeByExtension))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.FormatInt(f.info.Size(), 10))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		if _, err := io.CopyN(w, f.file, f.info.Size()); err != nil {
			s.log.Debug("error page not sent whole", "page", p.url, "error", err.Error())
		}
	}
	return true
}
