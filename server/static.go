package server

import (
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// serveStatic sends a file from the static root. http.ServeContent does
// Range (206, multipart), If-Modified-Since / If-None-Match (304),
// If-Range and HEAD; we give it an ETag and a Content-Type chosen by
// extension only. Unknown extensions are application/octet-stream rather
// than sniffed, so an uploaded file without a known extension is never
// rendered as HTML by a browser. Like nginx, the type carries no charset:
// the gateway does not know a file's encoding, and a charset in the header
// would override the file's own <meta charset> or @charset.
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request, rel string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.fail(w, r, http.StatusMethodNotAllowed)
		return
	}
	f, fi, err := s.router.Open(rel)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			s.fail(w, r, http.StatusForbidden)
			return
		}
		s.fail(w, r, http.StatusNotFound)
		return
	}
	defer f.Close()

	h := w.Header()
	ctype := mime.TypeByExtension(path.Ext(rel))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	// Package mime adds "; charset=utf-8" to every text/* type.
	ctype, _, _ = strings.Cut(ctype, ";")
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", etag(fi))
	// A range unit is case-insensitive, and a Range in a unit other than
	// bytes must be ignored (RFC 9110 14.2), as nginx does; ServeContent
	// knows only "bytes=" and answers anything else with 416.
	if v := r.Header.Get("Range"); v != "" && !strings.HasPrefix(v, "bytes=") {
		if len(v) >= len("bytes=") && strings.EqualFold(v[:len("bytes=")], "bytes=") {
			r.Header.Set("Range", "bytes="+v[len("bytes="):])
		} else {
			r.Header.Del("Range")
		}
	}
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// etag is a validator from size and modification time, like nginx's: cheap,
// stable across restarts, and changed by any ordinary rewrite of the file.
// It is strong, as nginx's is (and with nanoseconds rather than nginx's
// seconds), because a weak one never matches If-Range or If-Match: browsers
// resume a download with If-Range and the ETag, and would get the whole
// file again.
func etag(fi fs.FileInfo) string {
	b := make([]byte, 0, 40)
	b = append(b, '"')
	b = strconv.AppendInt(b, fi.Size(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.ModTime().UnixNano(), 16)
	b = append(b, '"')
	return string(b)
}
