package logtext

import (
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

func TestFit(t *testing.T) {
	for _, c := range []struct {
		s          string
		max        int
		n, written int
	}{
		{"abc", 10, 3, 3},
		{"abc", 2, 2, 2},
		{"éé", 3, 2, 2},           // not inside the second é
		{"a\x01b", 6, 1, 1},       // \u0001
		{"a\xffb", 7, 2, 7},       // \ufffd
		{"\"\\", 3, 1, 2},         // quote and backslash: \" and \\
		{"a\nb\tc", 6, 4, 6},      // \n and \t
		{"\x7f", 3, 0, 0},         // DEL: the text handler's \x7f
		{"x\u2028", 7, 4, 7},      // escaped by the JSON handler
		{"\u00ad", 5, 0, 0},       // soft hyphen: the text handler's \u00ad
		{"a\U000f0000", 10, 1, 1}, // private use: the text handler's \U000f0000
		{"a\U000f0000", 11, 5, 11},
		{"\U0001F600", 4, 4, 4}, // an emoji is written as it is
	} {
		if n, w := Fit(c.s, c.max); n != c.n || w != c.written {
			t.Errorf("Fit(%q, %d) = %d, %d; want %d, %d", c.s, c.max, n, w, c.n, c.written)
		}
	}
}

// TestClipList: a list of names stays within its bound written out, in
// the JSON handler and in the text handler, keeping whole the names that
// fit and cutting the one that passes the bound.
func TestClipList(t *testing.T) {
	for _, c := range []struct {
		list []string
		max  int
		want []string
	}{
		{nil, 10, nil},
		{[]string{"a", "b"}, 9, []string{"a", "b"}},                // ["a","b"]
		{[]string{"a", "b"}, 8, []string{"a"}},                     // no room for "b" nor for "..."
		{[]string{"a", "bcdefgh"}, 12, []string{"a", "b..."}},      // ["a","b..."]
		{[]string{"abcdefghij"}, 10, []string{"abc..."}},           // a single long name
		{[]string{"\"\"\"\"", "b"}, 16, []string{"\"\"\"\"", "b"}}, // escaped quotes count twice
		{[]string{"\"\"\"\"", "b"}, 15, []string{"\"\"\"\""}},
	} {
		got := ClipList(c.list, c.max)
		if len(got) != len(c.want) {
			t.Errorf("ClipList(%q, %d) = %q, want %q", c.list, c.max, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("ClipList(%q, %d) = %q, want %q", c.list, c.max, got, c.want)
				break
			}
		}
	}

	// Many long names, each written out whole, in both handlers' lines.
	var many []string
	for i := range 300 {
		many = append(many, strings.Repeat("k\"", 50)+strconv.Itoa(i))
	}
	clipped := ClipList(many, MaxValue)
	if len(clipped) == 0 || len(clipped) == len(many) {
		t.Fatalf("%d names of %d kept", len(clipped), len(many))
	}
	for _, h := range []func(io.Writer) slog.Handler{
		func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
		func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
	} {
		var line, empty strings.Builder
		slog.New(h(&line)).Warn("m", "keys", clipped)
		slog.New(h(&empty)).Warn("m", "keys", []string{})
		if n := line.Len() - empty.Len(); n > MaxValue {
			t.Errorf("the names take %d bytes written out, over %d: %s", n, MaxValue, line.String())
		}
	}
}
