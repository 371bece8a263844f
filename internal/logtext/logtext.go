// Package logtext measures text as the gateway's log handlers write it
// (slog's JSON and text handlers, SESSIONGATE_LOG_FORMAT), so that a value
// a client or an app chose (a path, PHP's stderr) can be cut to a bound
// that holds for the line as written, escapes included: log pipelines
// split lines longer than theirs (Docker's json-file driver at 16 KiB,
// journald at 48 KiB) into fragments that are no longer JSON.
package logtext

import (
	"unicode"
	"unicode/utf8"
)

// Fit returns the length n of the longest prefix of s, ending at a
// character boundary, that written out takes at most max bytes, and the
// bytes that prefix takes written out.
func Fit(s string, max int) (n, written int) {
	for i, r := range s {
		w := width(r)
		if written+w > max {
			return i, written
		}
		written += w
	}
	return len(s), written
}

// MaxValue is how many bytes, written out, a value a client chose (a path,
// an error naming one) may take in a log line before Clip cuts it: the
// access log's bound, shared by every line about a request.
const MaxValue = 4096

// Clip returns s cut, at a character boundary and with "..." after the
// cut, where written out it would take more than max bytes (Fit).
func Clip(s string, max int) string {
	if len(s) <= max/6 {
		return s // however escaped
	}
	if n, _ := Fit(s, max); n < len(s) {
		return s[:n] + "..."
	}
	return s
}

// ClipList returns the leading items of list that, written out as a list
// of strings (their quotes and the commas between them included), take at
// most max bytes, with the item that would pass the bound cut (with "...")
// in its place when some of it fits, and none after it. list is returned
// as it is when it fits whole. Names an app or its clients chose (session
// keys) can be many: the caller logs len(list) beside the result, so that
// a reader knows how many were left out.
func ClipList(list []string, max int) []string {
	written := 2 // the brackets
	for i, s := range list {
		around := 2 // its quotes
		if i > 0 {
			around++ // the comma before it
		}
		room := max - written - around
		if n, w := Fit(s, room); n == len(s) && room >= 0 {
			written += w + around
			continue
		}
		clipped := list[:i:i] // appended to: a copy, list left alone
		if n, _ := Fit(s, room-len("...")); n > 0 {
			clipped = append(clipped, s[:n]+"...")
		}
		return clipped
	}
	return list
}

// width is the most bytes rune r takes in a log line, as the JSON or the
// text handler writes it: a quote, a backslash, \n, \r and \t two (\"),
// another control character, an invalid byte, U+2028, U+2029 or an
// unprintable character up to 6 (\u0001, \ufffd, \u00ad), and an
// unprintable one past U+FFFF 10 in the text handler (strconv.Quote's
// \U000f0000).
func width(r rune) int {
	switch {
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r > 0xFFFF && !unicode.IsPrint(r):
		return 10
	case r == utf8.RuneError || r == '\u2028' || r == '\u2029' || !unicode.IsPrint(r):
		return 6
	}
	return utf8.RuneLen(r)
}
