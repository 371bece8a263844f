package fcgi

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/internal/httpfield"
)

func TestParseCGIHeader(t *testing.T) {
	long := strings.Repeat("x", 256<<10)
	tests := []struct {
		name   string
		in     string
		status int
		header http.Header
		bad    bool
	}{
		{name: "plain", in: "Content-Type: text/html\r\n\r\n", status: 200,
			header: http.Header{"Content-Type": {"text/html"}}},
		{name: "status removed", in: "Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\n", status: 404,
			header: http.Header{"Content-Type": {"text/html"}}},
		{name: "status code only", in: "Status: 503\n\n", status: 503, header: http.Header{}},
		{name: "location gives 302", in: "Location: /login\r\n\r\n", status: 302,
			header: http.Header{"Location": {"/login"}}},
		{name: "location with status", in: "Status: 301 Moved Permanently\r\nLocation: /new\r\n\r\n", status: 301,
			header: http.Header{"Location": {"/new"}}},
		{name: "repeated header kept", in: "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n", status: 200,
			header: http.Header{"Set-Cookie": {"a=1", "b=2"}}},
		// header('Content-Type: application/json', false) after another
		// Content-Type: the last one is the type, as behind nginx, where
		// both reached the client and each client picked its own.
		{name: "last Content-Type wins", in: "Content-Type: text/html; charset=UTF-8\r\ncontent-type: application/json\r\nX-A: 1\r\n\r\n", status: 200,
			header: http.Header{"Content-Type": {"application/json"}, "X-A": {"1"}}},
		{name: "folded line", in: "X-Long: part one\r\n  part two\r\n\tpart three\r\n\r\n", status: 200,
			header: http.Header{"X-Long": {"part one part two part three"}}},
		{name: "LF only and canonical keys", in: "content-type: a\nx-powered-by: PHP\n\n", status: 200,
			header: http.Header{"Content-Type": {"a"}, "X-Powered-By": {"PHP"}}},
		{name: "empty block", in: "\r\n", status: 200, header: http.Header{}},
		{name: "empty value", in: "X-Empty:\r\n\r\n", status: 200, header: http.Header{"X-Empty": {""}}},
		{name: "256 KiB line", in: "X-Big: " + long + "\r\n\r\n", status: 200, header: http.Header{"X-Big": {long}}},
		{name: "no colon", in: "garbage\r\n\r\n", bad: true},
		{name: "space in name", in: "Bad Name: x\r\n\r\n", bad: true},
		{name: "empty name", in: ": x\r\n\r\n", bad: true},
		{name: "continuation first", in: " x\r\n\r\n", bad: true},
		{name: "bad status", in: "Status: abc\r\n\r\n", bad: true},
		{name: "status 1xx", in: "Status: 100 Continue\r\n\r\n", bad: true},
		{name: "status 600 passes like nginx", in: "Status: 600 Custom\r\n\r\n", status: 600, header: http.Header{}},
		{name: "status 999", in: "Status: 999\r\n\r\n", status: 999, header: http.Header{}},
		{name: "status 099", in: "Status: 099\r\n\r\n", bad: true},
		{name: "status four digits", in: "Status: 1000\r\n\r\n", bad: true},
		{name: "two statuses", in: "Status: 200\r\nStatus: 404\r\n\r\n", bad: true},
		// PHP's header() refuses only CR, LF and NUL: other control
		// characters (a filename from an upload in Content-Disposition)
		// become spaces, as RFC 9110 5.5 has recipients do with CR and LF,
		// rather than costing the page a 502.
		{name: "control characters PHP allows", in: "Content-Disposition: attachment; filename=\"a\x01b\x1bc\x7fd.txt\"\r\nX-Kept: 1\r\n\r\n", status: 200,
			header: http.Header{"Content-Disposition": {"attachment; filename=\"a b c d.txt\""}, "X-Kept": {"1"}}},
		{name: "NUL in value", in: "X: a\x00b\r\n\r\n", bad: true},
		{name: "CR in value", in: "X: a\rb\r\n\r\n", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			end := findHeaderEnd([]byte(tc.in), 0)
			if end != len(tc.in) {
				t.Fatalf("findHeaderEnd = %d, want %d", end, len(tc.in))
			}
			status, h, _, err := parseCGIHeader([]byte(tc.in[:end]), "")
			if tc.bad {
				if !errors.Is(err, errBadHeader) {
					t.Fatalf("err = %v, want errBadHeader", err)
				}
				if StatusOf(upstreamError("parse", "", err)) != 502 {
					t.Fatal("malformed header must map to 502")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Errorf("status = %d, want %d", status, tc.status)
			}
			if len(h) != len(tc.header) {
				t.Errorf("header = %v, want %v", h, tc.header)
			}
			for k, want := range tc.header {
				if got := h[k]; strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("%s = %.80q, want %.80q", k, got, want)
				}
			}
		})
	}
}

// The terminator is found wherever the chunks split it.
func TestFindHeaderEndSplit(t *testing.T) {
	for _, in := range []string{"A: b\r\n\r\nbody", "A: b\n\nbody", "A: b\n\r\nbody", "\r\nbody", "\nbody"} {
		want := strings.Index(in, "body")
		for cut := 0; cut <= len(in); cut++ {
			for cut2 := cut; cut2 <= len(in); cut2++ {
				got := findHeaderEnd([]byte(in[:cut]), 0)
				if got < 0 {
					got = findHeaderEnd([]byte(in[:cut2]), cut)
				}
				if got < 0 {
					got = findHeaderEnd([]byte(in), cut2)
				}
				if got != want {
					t.Fatalf("%q cut at %d,%d: end %d, want %d", in, cut, cut2, got, want)
				}
			}
		}
	}
	if got := findHeaderEnd([]byte("A: b\r\nC: d\r\n"), 0); got != -1 {
		t.Fatalf("incomplete header: %d", got)
	}
}

// FuzzParseCGIHeader: the end of the header block is found the same way
// whatever records it arrives in; a block that parses has a final status,
// canonical valid names and values free of control characters, and writing
// it back as CGI lines parses to the same status and header.
func FuzzParseCGIHeader(f *testing.F) {
	f.Add([]byte("Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\nbody"), uint8(3))
	f.Add([]byte("X-Long: part one\r\n  part two\r\n\tpart three\n\n"), uint8(1))
	f.Add([]byte("Location: /a\nSet-Cookie: a=1\nSet-Cookie: b=2\n\n"), uint8(0))
	f.Add([]byte("\r\n"), uint8(7))
	f.Add([]byte("X: \t \r\n \r\nStatus: 1000\r\n\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		want := findHeaderEnd(data, 0)
		got, from := -1, 0
		for n := int(step) + 1; got < 0 && from < len(data); {
			to := min(from+n, len(data))
			got = findHeaderEnd(data[:to], from)
			from = to
		}
		if got != want {
			t.Fatalf("%q: end %d fed in steps of %d, %d at once", data, got, int(step)+1, want)
		}
		if want < 0 {
			return
		}
		status, h, _, err := parseCGIHeader(data[:want], "")
		if err != nil {
			if !errors.Is(err, errBadHeader) {
				t.Fatalf("%q: error %v is not errBadHeader", data, err)
			}
			return
		}
		if status < 200 || status > 999 {
			t.Fatalf("%q: status %d", data, status)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "Status: %d\r\n", status)
		for k, vs := range h {
			if k == "Status" || !httpfield.ValidName(k) || k != http.CanonicalHeaderKey(k) {
				t.Fatalf("%q: header name %q", data, k)
			}
			for _, v := range vs {
				if !httpfield.ValidValue(v) || strings.ContainsAny(v, "\r\n\x00") || v != string(trimSpace([]byte(v))) {
					t.Fatalf("%q: value %q of %s", data, v, k)
				}
				fmt.Fprintf(&b, "%s: %s\r\n", k, v)
			}
		}
		b.WriteString("\r\n")
		status2, h2, _, err := parseCGIHeader([]byte(b.String()), "")
		if err != nil || status2 != status || !reflect.DeepEqual(h2, h) {
			t.Fatalf("%q: %d %q rendered as %q parses to %d %q, %v", data, status, h, b.String(), status2, h2, err)
		}
	})
}

// The marker comes on every PHP response the session bridge sees: taking
// it out of the header block must cost no allocation.
func TestParseCGIHeaderMarkerAllocatesNothing(t *testing.T) {
	plain := []byte("Content-Type: text/html; charset=UTF-8\r\n\r\n")
	marked := []byte("X-Mark: 1\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n")
	without := testing.AllocsPerRun(100, func() { parseCGIHeader(plain, "X-Mark") })
	with := testing.AllocsPerRun(100, func() {
		if _, h, ok, _ := parseCGIHeader(marked, "X-Mark"); !ok || len(h) != 1 {
			t.Fatal("marker not taken out")
		}
	})
	if with != without {
		t.Fatalf("%v allocations with the marker, %v without", with, without)
	}
}
