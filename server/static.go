package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sessiongate/sessiongate/internal/compress"
	"github.com/sessiongate/sessiongate/internal/fileid"
	"github.com/sessiongate/sessiongate/phproute"
)

// serveStatic sends route's File, a file from the static root that the URL
// calls route.Name (see phproute.Route.Name). http.ServeContent does
// Range (206, multipart), If-Modified-Since / If-None-Match (304),
// If-Range and HEAD; we give it an ETag and a Content-Type chosen by
// extension only. Unknown extensions are application/octet-stream rather
// than sniffed, so an uploaded file without a known extension is never
// rendered as HTML by a browser. Like nginx, the type carries no charset:
// the gateway does not know a file's encoding, and a charset in the header
// would override the file's own <meta charset> or @charset.
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request, route phproute.Route) {
	rel, name := route.File, route.Name
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.fail(w, r, http.StatusMethodNotAllowed)
		return
	}
	relaxIfModifiedSince(r.Header)
	f, fi, err := s.router.Open(route)
	if err != nil {
		status := openFailureStatus(err)
		if status != http.StatusNotFound {
			// The system failed (500), or the gateway may not read a
			// file stat found (403: a deploy that left it 0600 to
			// another user): the operator's to fix, so a warning with
			// the reason, as the router's refusals of unreadable paths
			// get. A file gone since routing is a plain 404.
			Info(r.Context()).Err = err
		}
		s.fail(w, r, status)
		return
	}
	h := w.Header()
	ext := path.Ext(name)
	ctype := contentType(ext, mime.TypeByExtension)
	var gzipped []byte
	gzippable := false
	if s.compressibleFile(w, ext, ctype) {
		compress.AddVary(h, "Accept-Encoding")
		accepted := compress.Accepted(r.Header)
		if pf, pfi, coding := s.openPrecompressed(r, accepted, route, fi); pf != nil {
			f.Close()
			f, fi = pf, pfi
			h.Set("Content-Encoding", coding)
		} else {
			gzippable = s.gzippable(r, accepted, fi)
			if gzippable {
				gzipped = s.cachedGzip(r, rel, f, fi)
			}
			// Never compressed on the fly: a file that is not in the
			// cache this time goes out as it is, with sendfile, its
			// length and its ranges, and costs no CPU a client could
			// multiply by asking for many large files.
			if gzipped == nil {
				compress.SkipCompression(w)
			}
		}
	}
	defer f.Close()
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	if s.setMaxAge(h, r, ctype) && (r.Header.Get("If-Match") != "" || r.Header.Get("If-Unmodified-Since") != "") {
		// ServeContent may answer 412 with the headers set so far.
		w = onSuccessOnly{w, dropMaxAge}
	}
	if gzipped == nil && gzippable && s.gzCache.Fits(fi.Size()) && notModified(r, etag(fi), fi.ModTime()) {
		// A 304 for a GET (or HEAD) that would get the gzipped copy,
		// which has left the cache (or was never in it): it carries the
		// weak ETag that copy goes out with (RFC 9110 15.4.5), the
		// validator of the response the client stored. With the file's strong ETag
		// it would not select that response for update (RFC 9111
		// 4.3.4), or relabel a gzipped body as the file's own bytes.
		h.Set("ETag", "W/"+etag(fi))
		http.ServeContent(w, r, "", fi.ModTime(), f)
		return
	}
	if gzipped != nil {
		h.Set("Content-Encoding", "gzip")
		h.Set("ETag", "W/"+etag(fi))
		http.ServeContent(encodedCopy{w, int64(len(gzipped)), true}, r, "", fi.ModTime(), bytes.NewReader(gzipped))
		return
	}
	s.sendFile(w, r, fileToSend{f, fi})
}

// openFailureStatus is the answer for a file Router.Open could not open:
// 403 when the gateway may not read it; 500 when the system failed (no
// file descriptor left, an I/O error: any other errno), as nginx answers
// those; else 404 (gone since routing, no longer a regular file, a link
// that now leads out of the root).
func openFailureStatus(err error) int {
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrPermission):
		return http.StatusForbidden
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR),
		errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.ELOOP):
		return http.StatusNotFound
	case errors.As(err, &errno):
		return http.StatusInternalServerError
	}
	return http.StatusNotFound
}

// fileToSend is an open regular file and its info.
type fileToSend struct {
	file *os.File
	info fs.FileInfo
}

// sendFile sends f as it is on disk, with its ETag and Last-Modified,
// answering ranges and conditional requests; the caller has set the other
// headers (a Content-Encoding when f is a precompressed copy).
func (s *Server) sendFile(w http.ResponseWriter, r *http.Request, f fileToSend) {
	h, fi := w.Header(), f.info
	h.Set("ETag", etag(fi))
	if fi.Size() == 0 {
		// An empty file has no byte a range could name: nginx ignores
		// Range and sends it whole (200). ServeContent does so for most
		// ranges but answers a suffix range ("bytes=-5") with a 206 whose
		// Content-Range, "bytes 0--1/0", no client can parse.
		r.Header.Del("Range")
	}
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
	if strings.Count(r.Header.Get("Range"), ",") >= maxRanges {
		r.Header.Del("Range")
	}
	if v := r.Header.Get("Range"); strings.HasPrefix(v, "bytes=") {
		r.Header.Set("Range", "bytes="+dropZeroSuffixes(v[len("bytes="):], fi.Size()))
	}
	if h.Get("Content-Encoding") != "" {
		w = encodedCopy{w, fi.Size(), false}
	}
	if r.Header.Get("Range") != "" {
		w = rangeRefusal{w, fi.Size()}
	}
	http.ServeContent(w, r, "", fi.ModTime(), f.file)
	if r.Method != http.MethodHead {
		checkNotShrunk(r, f)
	}
}

// checkNotShrunk notes in the access log a file that became shorter while
// it was sent (a deploy rewriting it in place): ServeContent declared its
// old length and stops at the new end without a word, net/http then
// closes the connection, and the log would show a clean 200 for a cut
// download. Growth cuts nothing (the declared length bounds what is sent).
func checkNotShrunk(r *http.Request, f fileToSend) {
	now, err := f.file.Stat()
	if err != nil || now.Size() >= f.info.Size() {
		return
	}
	if ri := Info(r.Context()); ri != nil && ri.Err == nil {
		ri.Err = fmt.Errorf("static file shrank from %d to %d bytes while it was sent: response cut short", f.info.Size(), now.Size())
	}
}

// setMaxAge gives a static file SESSIONGATE_STATIC_MAX_AGE, as nginx's
// expires does, except an HTML page: a page is how visitors find a new
// release's assets, so it gets no-cache instead. Without any Cache-Control
// a browser may reuse a page for a tenth of its age (RFC 9111 section
// 4.2.2), days for a page last changed weeks ago, while the assets it
// names stay fresh for the max-age.
//
// A file asked for with Authorization (one behind SESSIONGATE_BASIC_AUTH)
// gets max-age without "public", as from nginx's expires: a shared cache
// keeps such an answer for other clients only when it says public,
// s-maxage or must-revalidate (RFC 9111 section 3.5), and with public a
// CDN in front would hand the file to clients without the password.
//
// It reports whether it set a Cache-Control.
func (s *Server) setMaxAge(h http.Header, r *http.Request, ctype string) bool {
	if s.cfg.StaticMaxAge <= 0 {
		return false
	}
	if ctype == "text/html" || ctype == "application/xhtml+xml" {
		h.Set("Cache-Control", "no-cache")
		return true
	}
	cc := "max-age=" + strconv.FormatInt(int64(s.cfg.StaticMaxAge/time.Second), 10)
	if _, authorized := r.Header["Authorization"]; !authorized {
		cc = "public, " + cc
	}
	h.Set("Cache-Control", cc)
	return true
}

// onSuccessOnly keeps headers that describe the file to the answers that
// are the file (200, 206) or stand for it (304): drop takes them off any
// other final answer. A 412 for an If-Match or If-Unmodified-Since the
// file fails, or a 416 for a range it does not have, which
// http.ServeContent writes with the headers set so far, is no copy of the
// file, and with "public, max-age" a shared cache could keep it for every
// client of the URL. For a static file drop is dropMaxAge (as nginx's
// expires does; ServeContent's other errors, 416 included, drop
// Cache-Control themselves), for an X-Accel-Redirect's file
// dropDownloadHeaders.
type onSuccessOnly struct {
	http.ResponseWriter
	drop func(http.Header)
}

func (w onSuccessOnly) WriteHeader(code int) {
	switch code {
	case http.StatusOK, http.StatusPartialContent, http.StatusNotModified:
	default:
		if code >= 200 {
			w.drop(w.Header())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// ReadFrom keeps sendfile.
func (w onSuccessOnly) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

func (w onSuccessOnly) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// dropMaxAge takes setMaxAge's Cache-Control off.
func dropMaxAge(h http.Header) { h.Del("Cache-Control") }

// precompressedCodings are the copies a build step may leave next to a
// static file, best first, with the coding each is sent as.
var precompressedCodings = []struct {
	ext    string
	coding string
	accept compress.Encodings
}{
	{".br", "br", compress.Brotli},
	{".gz", "gzip", compress.Gzip},
}

// openPrecompressed opens the best copy of route's File that the client
// accepts (File.br, then File.gz, in the release the route was found in),
// as nginx's brotli_static and gzip_static do: the
// file is sent as it is, so compressing it costs nothing per request and
// may use the slowest, best settings. A copy older than the file is
// ignored: it was left behind by an earlier build, and nginx would send
// the old content. Nothing is found for a client that accepts neither.
func (s *Server) openPrecompressed(r *http.Request, accepted compress.Encodings, route phproute.Route, fi fs.FileInfo) (*os.File, fs.FileInfo, string) {
	if accepted == 0 || !s.precompressedUnder(r.URL.Path) {
		return nil, nil, ""
	}
	for _, c := range precompressedCodings {
		if accepted&c.accept == 0 {
			continue
		}
		pre := route
		pre.File += c.ext
		f, cfi, err := s.router.Open(pre)
		if err != nil {
			continue
		}
		if cfi.ModTime().Before(fi.ModTime()) {
			f.Close()
			continue
		}
		return f, cfi, c.coding
	}
	return nil, nil, ""
}

// gzippable reports whether a GET like r, from a client that accepts
// these codings, is one to answer with the static file fi gzipped from
// the cache: a client that takes gzip, a file worth compressing, and no
// Range or If-Match/If-Unmodified-Since, which are about the bytes of the
// file itself (they get it uncompressed: its ranges, its strong ETag).
// Whether the cache can hold the file is the cache's to say (Gzipped
// counts the files it turns away as too large).
func (s *Server) gzippable(r *http.Request, accepted compress.Encodings, fi fs.FileInfo) bool {
	h := r.Header
	return s.gzCache != nil && fi.Size() >= compress.MinSize && accepted&compress.Gzip != 0 &&
		h.Get("Range") == "" && h.Get("If-Match") == "" && h.Get("If-Unmodified-Since") == ""
}

// cachedGzip returns the gzipped content of the static file f from the
// cache, compressing it on a miss, for a request gzippable said yes to;
// nil when the cache cannot give it, and then the file goes out
// uncompressed (serveStatic). A revalidation that will be answered 304
// needs no body: only a copy the cache already has is used. A HEAD is
// answered as its GET: the copy is made on a miss, as for the GET, since
// its headers are the copy's (its Content-Length, the weak ETag), and it
// is made once, like the GET's, and then kept.
func (s *Server) cachedGzip(r *http.Request, rel string, f *os.File, fi fs.FileInfo) []byte {
	key := gzipKey(rel, fi)
	if notModified(r, etag(fi), fi.ModTime()) {
		gz := s.gzCache.Cached(key)
		if gz == nil {
			s.gzCache.NotCached()
		}
		return gz
	}
	// A revalidation of a file that has changed since (after a deploy)
	// gets the new version compressed, as a first visit does.
	gz, err := s.gzCache.Gzipped(key, f)
	if err != nil {
		// Too large, busy, or changed while it was compressed
		// (ServeContent seeks back to the start): sent as it is.
		return nil
	}
	return gz
}

// gzipKey is the gzip cache's key of the file at rel as fi describes it.
func gzipKey(rel string, fi fs.FileInfo) compress.FileKey {
	key := compress.FileKey{Path: rel, Size: fi.Size(), ModNanos: fi.ModTime().UnixNano()}
	_, key.ChangeNanos = fileid.Of(fi)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		key.Dev, key.Ino = uint64(st.Dev), st.Ino
	}
	return key
}

// notModified reports whether http.ServeContent will answer r with 304 for
// a file with this ETag (strong, as etag makes it) and modification time.
// It asks ServeContent itself, on an empty file: a reading of its own
// (If-None-Match split on commas) matched a tag that ServeContent never
// reaches, after an entry it stops at, and the file went out whole and
// uncompressed under the gzipped copy's tag.
func notModified(r *http.Request, etag string, mod time.Time) bool {
	if r.Header.Get("If-None-Match") == "" && r.Header.Get("If-Modified-Since") == "" {
		return false
	}
	w := &statusOnly{header: http.Header{"Etag": {etag}}}
	http.ServeContent(w, r, "", mod, strings.NewReader(""))
	return w.status == http.StatusNotModified
}

// statusOnly is a ResponseWriter that keeps only the status written.
type statusOnly struct {
	header http.Header
	status int
}

func (w *statusOnly) Header() http.Header         { return w.header }
func (w *statusOnly) Write(p []byte) (int, error) { return len(p), nil }
func (w *statusOnly) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

// compressibleFile reports whether a file of the site with extension ext,
// typed ctype, may go out gzipped, as a static file or an error page. An
// .svgz is a gzip stream already, typed image/svg+xml as nginx types it:
// gzipped again it would cost CPU, and a browser that unpacks one layer
// finds no image. The response writer is told to leave it too, or it would
// compress it on the way out.
func (s *Server) compressibleFile(w http.ResponseWriter, ext, ctype string) bool {
	if !s.cfg.Compress || !compress.Compressible(ctype) {
		return false
	}
	if strings.EqualFold(ext, ".svgz") {
		compress.SkipCompression(w)
		return false
	}
	return true
}

// relaxIfModifiedSince rewrites an If-Modified-Since date that
// http.ParseTime refuses but nginx reads as the IMF-fixdate ServeContent
// knows: old Internet Explorer's "; length=N" after the date, and "UTC"
// for "GMT". Left as it was, the header was ignored and the whole file sent
// again where nginx answered 304. Other zones are left alone: nginx reads
// any as GMT, which would be a wrong date.
func relaxIfModifiedSince(h http.Header) {
	v := h.Get("If-Modified-Since")
	if v == "" {
		return
	}
	if _, err := http.ParseTime(v); err == nil {
		return
	}
	date, _, _ := strings.Cut(v, ";")
	date = strings.TrimSpace(date)
	if d, ok := strings.CutSuffix(date, " UTC"); ok {
		date = d + " GMT"
	}
	if t, err := http.ParseTime(date); err == nil {
		h.Set("If-Modified-Since", t.UTC().Format(http.TimeFormat))
	}
}

// rangeRefusal gives every 416 of http.ServeContent for a file of size
// bytes the Content-Range that tells the client the file's length (RFC
// 9110 15.5.17), as nginx does. ServeContent sends it for a range past
// the end, but not for one that does not parse ("bytes=abc", "bytes=9-5"),
// and a client that could have asked again for what exists is left
// without the length to ask for.
type rangeRefusal struct {
	http.ResponseWriter
	size int64
}

func (w rangeRefusal) WriteHeader(code int) {
	if h := w.Header(); code == http.StatusRequestedRangeNotSatisfiable && len(h["Content-Range"]) == 0 {
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(w.size, 10))
	}
	w.ResponseWriter.WriteHeader(code)
}

// ReadFrom keeps sendfile.
func (w rangeRefusal) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

func (w rangeRefusal) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// encodedCopy sends a compressed copy of a static file (precompressed on
// disk, or cached) through http.ServeContent, for its 304s, HEAD and
// ranges, with the headers that ServeContent leaves out or gets wrong once
// there is a Content-Encoding: the copy's Content-Length on a 200 (it
// knows the length but sends it chunked), and no Accept-Ranges for a
// cached copy, which is only ever sent whole (a Range request gets ranges
// of the file itself, uncompressed: cachedGzip); and no Content-Encoding
// on an answer that is not the copy.
type encodedCopy struct {
	http.ResponseWriter
	size  int64
	whole bool
}

// ReadFrom keeps sendfile for a precompressed copy on disk.
func (w encodedCopy) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

func (w encodedCopy) WriteHeader(code int) {
	h := w.Header()
	if w.whole {
		h.Del("Accept-Ranges")
	}
	switch code {
	case http.StatusOK:
		h.Set("Content-Length", strconv.FormatInt(w.size, 10))
	case http.StatusPartialContent, http.StatusNotModified:
	default:
		// Not the copy: a 412 for an If-Match or If-Unmodified-Since
		// it fails, which ServeContent sends empty with the headers
		// set so far. No body is no gzip stream to undo.
		h.Del("Content-Encoding")
	}
	w.ResponseWriter.WriteHeader(code)
}

// precompressedUnder reports whether SESSIONGATE_PRECOMPRESSED lets the
// file at urlPath be sent as a copy found next to it: under a listed
// directory, and not under SESSIONGATE_NO_PHP_PATHS, which names the
// directories users upload to. There an uploaded x.svg.gz would be sent in
// place of the x.svg the app accepted, unchecked, as image/svg+xml.
func (s *Server) precompressedUnder(urlPath string) bool {
	if len(s.precompressedDirs) == 0 {
		return false
	}
	// As a directory too: "/static" is under "/static/".
	p := path.Clean("/"+urlPath) + "/"
	for _, d := range s.precompressedDirs {
		if strings.HasPrefix(p, d) {
			return !s.router.UnderNoPHPPath(p)
		}
	}
	return false
}

// dropZeroSuffixes turns each suffix range of zero bytes ("-0") of a Range
// header's specs into one that starts past the end of the file. A zero
// suffix selects nothing (RFC 9110 14.1.1), but ServeContent answers it
// with an empty 206 and an impossible Content-Range ("bytes 15-14/15");
// past the end, it leaves the spec out as unsatisfiable, and answers 416
// when nothing else is asked for, as nginx does.
func dropZeroSuffixes(specs string, size int64) string {
	if !strings.Contains(specs, "-0") {
		return specs
	}
	parts := strings.Split(specs, ",")
	for i, p := range parts {
		t := strings.TrimSpace(p)
		if len(t) > 1 && t[0] == '-' && strings.Trim(t[1:], "0") == "" {
			parts[i] = strconv.FormatInt(size, 10) + "-"
		}
	}
	return strings.Join(parts, ",")
}

// webTypes are the types of nginx's own mime.types (1.22, as Debian 12
// ships it), every extension of it, with these exceptions: .js is
// text/javascript (RFC 9239), and .bmp image/bmp (its registered type);
// and types nginx lacks for files a site serves: .mjs (a module script
// browsers refuse as application/octet-stream), .map, .webmanifest, .csv,
// .ttf, .otf. Why a table of our own: package mime reads the host's
// /etc/mime.types, and without one (a scratch image, an older distroless)
// its built-in list has no .txt, .ico or .woff2, which would then go out
// as application/octet-stream: fonts refused, icons missing. Hosts also
// disagree with nginx and each other: Debian's table makes HLS segments
// (.ts) text/vnd.trolltech.linguist, text a browser displays and the
// gateway would gzip, and .svgz image/svg+xml-compressed, which no
// browser renders, and maps .webm to audio/webm. nginx ships its table,
// so the site looks the same on any host, and so does the gateway; the
// host's table answers only for extensions nginx does not know.
var webTypes = map[string]string{
	".html": "text/html", ".htm": "text/html", ".shtml": "text/html", ".css": "text/css",
	".js": "text/javascript", ".mjs": "text/javascript",
	".json": "application/json", ".map": "application/json",
	".webmanifest": "application/manifest+json", ".xml": "text/xml",
	".rss": "application/rss+xml", ".atom": "application/atom+xml",
	".txt": "text/plain", ".csv": "text/csv", ".mml": "text/mathml",
	".jad": "text/vnd.sun.j2me.app-descriptor", ".wml": "text/vnd.wap.wml", ".htc": "text/x-component",
	".svg": "image/svg+xml", ".svgz": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg",
	".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
	".avif": "image/avif", ".ico": "image/x-icon", ".bmp": "image/bmp",
	".tif": "image/tiff", ".tiff": "image/tiff", ".wbmp": "image/vnd.wap.wbmp", ".jng": "image/x-jng",
	".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf",
	".otf": "font/otf", ".eot": "application/vnd.ms-fontobject",
	".wasm": "application/wasm", ".pdf": "application/pdf",
	".jar": "application/java-archive", ".war": "application/java-archive", ".ear": "application/java-archive",
	".hqx": "application/mac-binhex40", ".doc": "application/msword",
	".ps": "application/postscript", ".eps": "application/postscript", ".ai": "application/postscript",
	".rtf": "application/rtf", ".m3u8": "application/vnd.apple.mpegurl",
	".kml": "application/vnd.google-earth.kml+xml", ".kmz": "application/vnd.google-earth.kmz",
	".xls": "application/vnd.ms-excel", ".ppt": "application/vnd.ms-powerpoint",
	".odg": "application/vnd.oasis.opendocument.graphics", ".odp": "application/vnd.oasis.opendocument.presentation",
	".ods": "application/vnd.oasis.opendocument.spreadsheet", ".odt": "application/vnd.oasis.opendocument.text",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".wmlc": "application/vnd.wap.wmlc", ".7z": "application/x-7z-compressed", ".cco": "application/x-cocoa",
	".jardiff": "application/x-java-archive-diff", ".jnlp": "application/x-java-jnlp-file",
	".run": "application/x-makeself", ".pl": "application/x-perl", ".pm": "application/x-perl",
	".prc": "application/x-pilot", ".pdb": "application/x-pilot", ".rar": "application/x-rar-compressed",
	".rpm": "application/x-redhat-package-manager", ".sea": "application/x-sea",
	".swf": "application/x-shockwave-flash", ".sit": "application/x-stuffit",
	".tcl": "application/x-tcl", ".tk": "application/x-tcl",
	".der": "application/x-x509-ca-cert", ".pem": "application/x-x509-ca-cert", ".crt": "application/x-x509-ca-cert",
	".xpi": "application/x-xpinstall", ".xhtml": "application/xhtml+xml", ".xspf": "application/xspf+xml",
	".zip": "application/zip",
	".bin": "application/octet-stream", ".exe": "application/octet-stream", ".dll": "application/octet-stream",
	".deb": "application/octet-stream", ".dmg": "application/octet-stream", ".iso": "application/octet-stream",
	".img": "application/octet-stream", ".msi": "application/octet-stream", ".msp": "application/octet-stream",
	".msm": "application/octet-stream",
	".mid": "audio/midi", ".midi": "audio/midi", ".kar": "audio/midi",
	".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".m4a": "audio/x-m4a", ".ra": "audio/x-realaudio",
	".3gpp": "video/3gpp", ".3gp": "video/3gpp", ".ts": "video/mp2t", ".mp4": "video/mp4",
	".mpeg": "video/mpeg", ".mpg": "video/mpeg", ".mov": "video/quicktime", ".webm": "video/webm",
	".flv": "video/x-flv", ".m4v": "video/x-m4v", ".mng": "video/x-mng",
	".asx": "video/x-ms-asf", ".asf": "video/x-ms-asf", ".wmv": "video/x-ms-wmv", ".avi": "video/x-msvideo",
}

// contentType is the Content-Type of a static file with extension ext:
// webTypes, then the host's table (byHost, mime.TypeByExtension), then
// application/octet-stream. Never a charset: package mime adds
// "; charset=utf-8" to text types, which is dropped. Nor, from the host's
// table, a type browsers render as a document (rendersScripts): Debian's
// names about a hundred extensions nginx does not know with XML types
// (.xht, .rdf, .xsl, .smil...), and an upload that an app's blacklist let
// through would run its scripts on the site's origin, where nginx sends
// it as application/octet-stream, a download.
func contentType(ext string, byHost func(string) string) string {
	if t, ok := webTypes[strings.ToLower(ext)]; ok {
		return t
	}
	t, _, _ := strings.Cut(byHost(ext), ";")
	t = strings.TrimSpace(t)
	if t == "" || rendersScripts(strings.ToLower(t)) {
		return "application/octet-stream"
	}
	return t
}

// rendersScripts reports whether browsers render a response of media type
// t as a document that may run scripts: HTML, and XML of any kind (text/xml,
// application/xml, text/xsl, every +xml type), where elements of the XHTML
// namespace run as in HTML.
func rendersScripts(t string) bool {
	switch t {
	case "text/html", "text/xml", "application/xml", "text/xsl":
		return true
	}
	return strings.HasSuffix(t, "+xml") || strings.Contains(t, "html")
}

// etag is nginx's validator, byte for byte ("mtime-size", both in hex,
// the mtime in seconds): cheap, stable across restarts, and the same on
// every server of a load balancer that holds the same files (replicas of
// one container image, one shared volume), so a browser revalidating on
// another replica still gets 304; being nginx's own, it also does so for
// what browsers cached behind nginx before the move, and while a rollout
// puts nginx and the gateway behind one balancer. Like nginx's, it misses
// a rewrite within the same second to the same size, as Last-Modified
// does. A file whose mtime is a fixed epoch (before 1990: the Nix store's
// 1970-01-01T00:00:01, builds with SOURCE_DATE_EPOCH=0) keeps that mtime
// for new content, and a browser revalidating the old copy got 304 and kept
// it (NixOS patches nginx for this): its ETag adds the status change time
// and inode, which a new release always moves and no tool can set back.
// It is strong, as nginx's is, because a weak one never matches If-Range
// or If-Match: browsers resume a download with If-Range and the ETag, and
// would get the whole file again.
func etag(fi fs.FileInfo) string {
	b := make([]byte, 0, 72)
	b = append(b, '"')
	b = strconv.AppendInt(b, fi.ModTime().Unix(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.Size(), 16)
	if fi.ModTime().Before(fixedEpochBefore) {
		if ino, ctime := fileid.Of(fi); ctime != 0 {
			b = append(b, '-')
			b = strconv.AppendInt(b, ctime, 16)
			b = append(b, '-')
			b = strconv.AppendUint(b, ino, 16)
		}
	}
	b = append(b, '"')
	return string(b)
}

// fixedEpochBefore: an mtime before it is a build's fixed epoch, not the
// time the content was made (etag).
var fixedEpochBefore = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)

// maxRanges is the most ranges one Range header may ask for, Apache's
// MaxRanges default; a Range with more is ignored (the whole file, 200),
// as Apache and nginx's max_ranges do. http.ServeContent sets no bound of
// its own: it only refuses ranges that add up to more than the file, which
// many one-byte ranges never do, and each range costs a multipart part
// (250,000 of them: 3.4 s of CPU for one request).
const maxRanges = 200
