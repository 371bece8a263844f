package server

import (
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
)

// serveStatic sends a file from the static root. http.ServeContent does
// Range (206, multipart), If-Modified-Since / If-None-Match (304),
// If-Range and HEAD; we give it a weak ETag and a Content-Type chosen by
// extension only. Unknown extensions are application/octet-stream rather
// than sniffed, so an uploaded file without a known extension is never
// rendered as HTML by a browser.
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
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", etag(fi))
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// etag is a weak validator from size and modification time, like nginx's
// (which is strong but built from the same two facts): cheap, stable across
// restarts, and changed by any ordinary rewrite of the file. Weak, because
// two different contents written within the same nanosecond with the same
// size would share it.
func etag(fi fs.FileInfo) string {
	b := make([]byte, 0, 40)
	b = append(b, `W/"`...)
	b = strconv.AppendInt(b, fi.Size(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.ModTime().UnixNano(), 16)
	b = append(b, '"')
	return string(b)
}
