// Package compress gzips responses on their way to the client, as nginx's
// gzip module does for a shop that turned it on for its text types: pages,
// stylesheets and scripts are mostly text that shrinks to a fifth, and
// nothing behind the gateway compresses them by itself (php-fpm's output
// and gunicorn's are plain), and keeps gzipped copies of static files
// (Cache). Its Accepted also serves the server's choice of a precompressed
// copy on disk (gzip_static, brotli_static).
package compress

import (
	"net/http"
	"strconv"
	"strings"
)

// Encodings is the set of content codings a client accepts, from its
// Accept-Encoding header.
type Encodings uint8

const (
	Gzip Encodings = 1 << iota
	Brotli
)

// Accepted reads the request's Accept-Encoding (RFC 9110 section 12.5.3):
// a coding counts when it is named with a q-value above zero, or when "*"
// is and the coding is not named at all. "x-gzip" is gzip. A coding named
// twice counts as its first mention says.
func Accepted(h http.Header) Encodings {
	values := h["Accept-Encoding"] // canonical in a server's request
	if len(values) == 0 {
		return 0
	}
	var named, ok Encodings
	star, starOK := false, false
	for _, v := range values {
		for len(v) > 0 {
			var item string
			item, v, _ = strings.Cut(v, ",")
			coding, params, _ := strings.Cut(item, ";")
			coding = strings.TrimSpace(coding)
			var e Encodings
			switch {
			case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
				e = Gzip
			case strings.EqualFold(coding, "br"):
				e = Brotli
			case coding == "*":
				if !star {
					star, starOK = true, positiveQ(params)
				}
				continue
			default:
				continue
			}
			if named&e != 0 {
				continue
			}
			named |= e
			if positiveQ(params) {
				ok |= e
			}
		}
	}
	if starOK {
		ok |= (Gzip | Brotli) &^ named
	}
	return ok
}

// positiveQ reports whether an Accept-Encoding item's parameters (what
// follows its first ";") leave it acceptable: no q, or a q above zero. A q
// that does not parse is taken as absent, as most servers do.
func positiveQ(params string) bool {
	for len(params) > 0 {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, value, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return true
		}
		return q > 0
	}
	return true
}

// Compressible reports whether a response of this Content-Type is worth
// compressing: text, and the structured text types of the web. Images,
// audio, video, fonts in WOFF/WOFF2 and archives are compressed already
// (or, for server-sent events, must reach the client event by event
// without a compressor's state in between).
func Compressible(contentType string) bool {
	t, _, _ := strings.Cut(contentType, ";")
	t = strings.ToLower(strings.TrimSpace(t))
	if t == "" {
		return false
	}
	if strings.HasPrefix(t, "text/") {
		return t != "text/event-stream"
	}
	if strings.HasSuffix(t, "+json") || strings.HasSuffix(t, "+xml") {
		return true
	}
	switch t {
	case "application/json", "application/javascript", "application/x-javascript",
		"application/ecmascript", "application/xml", "application/xhtml+xml",
		"application/wasm", "application/x-ndjson", "application/graphql-response+json",
		"image/svg+xml", "image/x-icon", "image/vnd.microsoft.icon", "image/bmp",
		"font/ttf", "font/otf", "font/collection", "application/vnd.ms-fontobject",
		"application/x-font-ttf", "application/x-font-otf":
		return true
	}
	return false
}

// varyAcceptEncoding is shared by the responses that have no Vary of their
// own: most pages, on a path where each allocation counts. Sharing is safe
// because nothing changes a header value in place, and an append to a slice
// of capacity one copies it.
var varyAcceptEncoding = []string{"Accept-Encoding"}

// AddVary adds token to the response's Vary header unless a Vary value
// already names it (or is "*").
func AddVary(h http.Header, token string) {
	vary := h["Vary"]
	if len(vary) == 0 && token == "Accept-Encoding" {
		h["Vary"] = varyAcceptEncoding[:1:1]
		return
	}
	for _, v := range vary {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.EqualFold(t, token) {
				return
			}
		}
	}
	h.Add("Vary", token)
}

// WeakETag turns a strong entity tag into a weak one: a compressed body is
// not byte for byte the file or page the app's tag stands for, and a
// compressor's output may differ between versions, so the tag may only
// serve If-None-Match, not If-Range or If-Match (nginx does the same;
// StrongIfMatch gives an If-Match the app's tag back). A
// value that is not a quoted tag (an md5 without its quotes, which PHP
// apps often send) cannot be marked weak, and clients take it for a
// strong one: it is dropped, as nginx drops it.
func WeakETag(h http.Header) {
	v := h.Get("ETag")
	switch {
	case v == "" || strings.HasPrefix(v, "W/"):
	case strings.HasPrefix(v, `"`):
		h.Set("ETag", "W/"+v)
	default:
		h.Del("ETag")
	}
}

// StrongIfMatch turns the weak tags of a request's If-Match into the
// strong tags they were made from: WeakETag marks the app's tag weak on a
// compressed response, and a weak tag never matches If-Match (RFC 9110
// section 13.1.1), so an app with optimistic locking (Django's @etag,
// sabre/dav) refused with 412 every update carrying the tag the client
// had read, where a server that does not compress the type lets it
// through. The compression is the gateway's, not a change of the
// resource: the tag still names what the app sent. A value that is not a
// list of entity tags ("*", a bare word) is left as it is. A weak tag the
// app gave out itself is made strong too, since nothing tells it from one
// the gateway weakened: an app that compares as RFC 9110 asks refuses it
// either way (its current tag is weak, and a weak tag never matches), but
// one that compares the field as text with its own W/ tag now refuses
// what it let through.
func StrongIfMatch(h http.Header) {
	vals, ok := h["If-Match"]
	if !ok {
		return
	}
	for i, v := range vals {
		if s, ok := strongTags(v); ok {
			vals[i] = s
		}
	}
}

// strongTags rewrites a list of entity tags with each W/ dropped; ok is
// false when v is not such a list or holds no weak tag.
func strongTags(v string) (string, bool) {
	var tags []string
	weak := false
	for rest := v; ; {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			break
		}
		if t, ok := strings.CutPrefix(rest, "W/"); ok {
			weak, rest = true, t
		}
		if !strings.HasPrefix(rest, `"`) {
			return "", false
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return "", false
		}
		tags = append(tags, rest[:end+2])
		rest = rest[end+2:]
		if rest != "" && rest[0] != ',' && rest[0] != ' ' && rest[0] != '\t' {
			return "", false
		}
	}
	if !weak {
		return "", false
	}
	return strings.Join(tags, ", "), true
}
